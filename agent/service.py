"""AgentService: logs and exec of this node's pods, served on
node_ip:--agent-port. The control plane's ResourceService.PodLogs/PodExec
proxy to it (pkctl logs / pkctl exec).

Errors are ApiError wire strings (kubectl's wording), so pkctl prints them
as it prints any API error.

Concurrency: each RPC is its own task; a followed log or an exec holds one
runtime stream (a dedicated thread in DockerRuntime) for its lifetime and
releases it when the client goes away (cancellation closes the stream).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator

import grpc

from agent.runtime.base import (
    LABEL_CONTAINER,
    LABEL_NODE,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    ContainerNotFound,
    ContainerState,
    CreateError,
    Runtime,
)
from pkapi.errors import ApiError
from pkapi.v1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)


def _attempt(st: ContainerState) -> int:
    try:
        return int(st.labels.get("io.pocketkube.container.attempt", "0"))
    except ValueError:
        return 0


class AgentServicer(api_pb2_grpc.AgentServiceServicer):
    def __init__(self, node_name: str, runtime: Runtime, pods: Any = None) -> None:
        self.node_name = node_name
        self.runtime = runtime
        # The PodManager (its informer knows the pods' container names).
        self.pods = pods

    async def _container(self, namespace: str, pod: str, container: str, previous: bool) -> ContainerState:
        namespace = namespace or "default"
        states = await self.runtime.list_containers(
            {LABEL_NODE: self.node_name, LABEL_POD_NAMESPACE: namespace, LABEL_POD_NAME: pod}
        )
        names: list[str] = []
        cached = self.pods.informer.get(namespace, pod) if self.pods is not None else None
        if cached is not None:
            names = [c.name for c in cached.spec.containers]
            uid = cached.metadata.uid
            states = [s for s in states if s.labels.get("io.pocketkube.pod.uid") == uid]
        else:
            names = sorted({s.labels.get(LABEL_CONTAINER, "") for s in states})
        if not names:
            raise ApiError("NotFound", f'pods "{pod}" not found')
        if not container:
            if len(names) > 1:
                raise ApiError(
                    "BadRequest",
                    f"a container name must be specified for pod {pod}, choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise ApiError("BadRequest", f"container {container} is not valid for pod {pod}")
        mine = sorted((s for s in states if s.labels.get(LABEL_CONTAINER) == container), key=_attempt, reverse=True)
        if previous:
            if len(mine) < 2:
                raise ApiError("BadRequest", f'previous terminated container "{container}" in pod "{pod}" not found')
            return mine[1]
        if not mine:
            raise ApiError(
                "BadRequest", f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
            )
        return mine[0]

    async def Logs(self, request: api_pb2.LogsRequest, context: Any) -> AsyncIterator[api_pb2.LogChunk]:
        try:
            st = await self._container(request.namespace, request.pod, request.container, request.previous)
            tail = request.tail_lines if request.HasField("tail_lines") else None
            since = time.time() - request.since_seconds if request.HasField("since_seconds") else None
            async for chunk in self.runtime.logs(
                st.id, follow=request.follow and not request.previous, tail=tail, timestamps=request.timestamps, since=since
            ):
                yield api_pb2.LogChunk(data=chunk)
        except ApiError as e:
            await context.abort(grpc.StatusCode[e.grpc_code], e.wire())
        except ContainerNotFound as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, ApiError("NotFound", str(e)).wire())

    async def Exec(
        self, request_iterator: AsyncIterator[api_pb2.ExecRequest], context: Any
    ) -> AsyncIterator[api_pb2.ExecResponse]:
        try:
            first = await request_iterator.__anext__()
        except StopAsyncIteration:
            return
        pump: asyncio.Task[None] | None = None
        session: Any = None
        try:
            if first.WhichOneof("msg") != "start":
                raise ApiError("BadRequest", "the first message of an exec stream must be start")
            s = first.start
            if not s.command:
                raise ApiError("BadRequest", "you must specify at least one command for the container")
            st = await self._container(s.namespace, s.pod, s.container, False)
            if not st.running:
                raise ApiError("BadRequest", f"container {st.labels.get(LABEL_CONTAINER, '')} is not running")
            session = await self.runtime.exec_stream(st.id, list(s.command), s.stdin, s.tty)

            async def pump_stdin() -> None:
                try:
                    async for req in request_iterator:
                        kind = req.WhichOneof("msg")
                        if kind == "stdin" and s.stdin:
                            await session.write(req.stdin)
                        elif kind == "stdin_close":
                            break
                finally:
                    if s.stdin:
                        await session.close_stdin()

            pump = asyncio.create_task(pump_stdin())
            async for stream, data in session.output():
                if stream == 2:
                    yield api_pb2.ExecResponse(stderr=data)
                else:
                    yield api_pb2.ExecResponse(stdout=data)
            yield api_pb2.ExecResponse(exit_code=await session.exit_code())
        except ApiError as e:
            await context.abort(grpc.StatusCode[e.grpc_code], e.wire())
        except (ContainerNotFound, CreateError) as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, ApiError("BadRequest", str(e)).wire())
        finally:
            if pump is not None:
                pump.cancel()
            if session is not None:
                await session.close()


async def serve(address: str, servicer: AgentServicer) -> tuple[grpc.aio.Server, int]:
    """Start the AgentService on `address` ("ip:port", port 0 = free); returns
    the server and the bound port."""
    server = grpc.aio.server()
    api_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpc's "Failed to bind"
        port = 0
    if port == 0:
        raise OSError(
            f"cannot listen on {address}: --node-ip must be an address of this machine and --agent-port free"
        )
    await server.start()
    return server, port
