"""pods/exec over WebSocket (kubectl >= 1.30, the Python client's stream()):
the subprotocols v5.channel.k8s.io and v4.channel.k8s.io, bridged to the
node agent's Exec stream (the one the gRPC PodExec RPC uses).

Every WebSocket message is binary and its first byte a channel: 0 stdin
(client to server), 1 stdout, 2 stderr, 3 the final Status, 4 terminal
resize (ignored: the agent's exec has no resize), 255 close (v5: [255, 0]
closes stdin). The last message is the Status on channel 3: Success, or
Failure/NonZeroExitCode with the exit code as a cause, which kubectl turns
into `command terminated with exit code N` and its own exit code N.

SPDY (kubectl's fallback, and its only protocol before 1.30) is not served:
such a request gets a 400 Status saying so. Checks (pod, container, phase,
command) come before the upgrade, so a mistake is a Status either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import grpc
from aiohttp import WSMsgType, web

from controlplane.apiserver.http.logs import AgentStub, container_of
from controlplane.apiserver.http.paths import Target
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.server import agent_error
from pkapi.errors import ApiError, bad_request
from pkapi.v1 import api_pb2

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def _flag(q: Any, name: str) -> bool:
    return str(q.get(name, "")).lower() in ("true", "1")


def exit_status(code: int) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command, exit status {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "reason": "InternalError", "message": message}


async def serve(request: web.Request, registry: Registry, agents: AgentStub | None, t: Target) -> web.StreamResponse:
    if agents is None:
        raise ApiError("ServiceUnavailable", "exec is not served by this API server")
    q = request.query
    command = q.getall("command", [])
    if not command:
        raise bad_request("you must specify at least 1 command")
    pod: Any = await registry.get("pods", t.namespace, t.name)
    container = container_of(pod, q.get("container", ""))
    if pod.status.phase in ("Succeeded", "Failed"):
        raise bad_request(f"cannot exec into a container in a completed pod; current phase is {pod.status.phase}")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    if not ws.can_prepare(request).ok:
        raise bad_request("exec is served over WebSocket only (subprotocols v5.channel.k8s.io, v4.channel.k8s.io); "
                          "SPDY is not supported: use kubectl 1.30 or later without "
                          "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false")
    stdin = _flag(q, "stdin")
    start = api_pb2.ExecStart(namespace=pod.metadata.namespace, pod=pod.metadata.name, container=container,
                              command=command, stdin=stdin, tty=_flag(q, "tty"))
    stub = await agents(t.namespace, t.name)
    await ws.prepare(request)
    call = stub.Exec()
    closed_stdin = False

    async def pump_in() -> None:
        nonlocal closed_stdin
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, data = msg.data[0], msg.data[1:]
            if ch == STDIN and stdin and not closed_stdin and data:
                await call.write(api_pb2.ExecRequest(stdin=bytes(data)))
            elif ch == CLOSE and data[:1] == bytes([STDIN]) and not closed_stdin:
                closed_stdin = True
                await call.write(api_pb2.ExecRequest(stdin_close=True))
        # the client went away: nothing more to send
        if not closed_stdin:
            with contextlib.suppress(Exception):
                await call.done_writing()

    pumper: asyncio.Task[None] | None = None
    try:
        await call.write(api_pb2.ExecRequest(start=start))
        if not stdin:
            closed_stdin = True
            await call.write(api_pb2.ExecRequest(stdin_close=True))
        pumper = asyncio.get_running_loop().create_task(pump_in())
        final: dict[str, Any] = failure("the exec stream ended without an exit code")
        async for r in call:
            which = r.WhichOneof("msg")
            if which == "stdout":
                await ws.send_bytes(bytes([STDOUT]) + r.stdout)
            elif which == "stderr":
                await ws.send_bytes(bytes([STDERR]) + r.stderr)
            elif which == "exit_code":
                final = exit_status(r.exit_code)
                break
        await ws.send_bytes(bytes([ERROR]) + json.dumps(final).encode())
    except grpc.aio.AioRpcError as e:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(bytes([ERROR]) + json.dumps(failure(agent_error(e).message)).encode())
    except (ConnectionError, RuntimeError):
        pass  # the client went away
    finally:
        if pumper is not None:
            pumper.cancel()
            await asyncio.gather(pumper, return_exceptions=True)
        call.cancel()
        await ws.close()
    return ws
