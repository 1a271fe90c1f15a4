"""GET pods/<name>/log: the container's log as text/plain, streamed in
chunks from the pod's node agent (the AgentService the gRPC PodLogs RPC
uses), until the log ends or, with follow=true, until the client goes away.

Query: container (the only container by default), follow, tailLines,
sinceSeconds, timestamps, previous, limitBytes (the stream is cut after
that many bytes).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import grpc
from aiohttp import web

from controlplane.apiserver.http.paths import Target
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.server import agent_error
from pkapi.errors import ApiError, bad_request
from pkapi.v1 import api_pb2

AgentStub = Callable[[str, str], Awaitable[Any]]


def _flag(q: Any, name: str) -> bool:
    return str(q.get(name, "")).lower() in ("true", "1")


def _number(q: Any, name: str, minimum: int) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return None
    try:
        n = int(v)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{v}" is not an integer') from None
    if n < minimum:
        raise ApiError("Invalid", f'PodLogOptions "" is invalid: {name}: Invalid value: {n}: must be greater '
                                  f"than or equal to {minimum}")
    return n


def container_of(pod: Any, container: str) -> str:
    """The container a pods/log or pods/exec request names: the only one
    when it names none; BadRequest in kube-apiserver's words otherwise."""
    names = [c.name for c in pod.spec.containers]
    if not container:
        if len(names) != 1:
            raise bad_request(f"a container name must be specified for pod {pod.metadata.name}, choose one of: "
                              f"[{' '.join(names)}]")
        return str(names[0])
    if container not in names:
        raise bad_request(f"container {container} is not valid for pod {pod.metadata.name}")
    return container


def request_of(pod: Any, q: Any) -> api_pb2.LogsRequest:
    container = container_of(pod, q.get("container", ""))
    req = api_pb2.LogsRequest(namespace=pod.metadata.namespace, pod=pod.metadata.name, container=container,
                              follow=_flag(q, "follow"), previous=_flag(q, "previous"),
                              timestamps=_flag(q, "timestamps"))
    tail = _number(q, "tailLines", 0)
    if tail is not None:
        req.tail_lines = tail
    since = _number(q, "sinceSeconds", 1)
    if since is not None:
        req.since_seconds = since
    return req


async def serve(request: web.Request, registry: Registry, agents: AgentStub | None, t: Target) -> web.StreamResponse:
    if agents is None:
        raise ApiError("ServiceUnavailable", "pod logs are not served by this API server")
    pod = await registry.get("pods", t.namespace, t.name)
    req = request_of(pod, request.query)
    limit = _number(request.query, "limitBytes", 1)
    stub = await agents(t.namespace, t.name)
    call = stub.Logs(req)
    resp: web.StreamResponse | None = None
    sent = 0
    try:
        async for chunk in call:
            data = chunk.data
            if limit is not None:
                data = data[: limit - sent]
            if resp is None:
                resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
            if data:
                await resp.write(data)
                sent += len(data)
            if limit is not None and sent >= limit:
                break
    except grpc.aio.AioRpcError as e:
        if resp is None:
            raise agent_error(e) from None
    finally:
        call.cancel()
    if resp is None:  # an empty log
        return web.Response(status=200, body=b"", content_type="text/plain")
    await resp.write_eof()
    return resp
