"""pkctl exec: run a command in a container, streaming stdin/stdout/stderr,
and exit with the command's exit code (as kubectl).

ResourceService.PodExec is a bidirectional stream the control plane proxies
to the pod's node agent: the first message names the pod, container and
command; then stdin chunks (with -i) and a final stdin_close. The agent
answers with stdout/stderr chunks and, last, the exit code.

Concurrency: stdin is read by a daemon thread (a blocked read of a terminal
must not keep the process alive after the command ended) that hands chunks
to the event loop; one task writes them to the stream while the main task
prints what comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from typing import Any, Iterator

import click
import grpc

from cli import util
from cli.logs import pick_container, resolve_pod
from pkapi.v1 import api_pb2


def _stdin_reader(loop: asyncio.AbstractEventLoop, q: asyncio.Queue[bytes | None]) -> None:
    stream = util.binary_stream("stdin")
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        fd = -1
    try:
        while True:
            data = os.read(fd, 65536) if fd >= 0 else stream.read(65536)
            loop.call_soon_threadsafe(q.put_nowait, data or None)
            if not data:
                return
    except (OSError, ValueError, RuntimeError):
        # stdin closed under us, or the loop is gone because exec ended.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(q.put_nowait, None)


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    """Put the local terminal in raw mode for -t (keys go to the remote
    shell as typed), and always restore it."""
    if not enabled:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _isatty() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return False


@click.command("exec", help="""Run a command in a container.

\b
  pkctl exec web-5d8f7c-abcde -- ls -l /
  pkctl exec -i deploy/web -- sh -c 'cat > /tmp/x'
  pkctl exec -it web-5d8f7c-abcde -c app -- sh""")
@click.argument("pod")
@click.argument("cmd", nargs=-1, required=False, metavar="-- COMMAND [ARGS]...")
@click.option("-c", "--container", default=None, help="The container (default: the only or first one).")
@click.option("-i", "--stdin", "stdin_", is_flag=True, help="Pass stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal (with -i, for interactive shells).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the command's own output.")
@click.pass_context
def command(ctx: click.Context, pod: str, cmd: tuple[str, ...], container: str | None, stdin_: bool, tty: bool,
            quiet: bool) -> None:
    async def main() -> int:
        if not cmd:
            util.fail("you must specify at least one command for the container")
        use_tty = tty
        if tty and not (stdin_ and _isatty()):
            if not quiet:
                util.err("Unable to use a TTY - input is not a terminal or the right kind of file")
            use_tty = False
        stdout = util.binary_stream("stdout")
        stderr = util.binary_stream("stderr")
        async with util.client(ctx) as c:
            p = await resolve_pod(c, ctx, pod, "exec")
            cname = pick_container(p, container)
            call: Any = c.resources.PodExec(timeout=None)
            loop = asyncio.get_running_loop()
            q: asyncio.Queue[bytes | None] = asyncio.Queue()

            async def pump_stdin() -> None:
                threading.Thread(target=_stdin_reader, args=(loop, q), daemon=True, name="pkctl-stdin").start()
                while True:
                    data = await q.get()
                    if data is None:
                        await call.write(api_pb2.ExecRequest(stdin_close=True))
                        await call.done_writing()
                        return
                    await call.write(api_pb2.ExecRequest(stdin=data))

            code = 0
            pump: asyncio.Task[None] | None = None
            try:
                await call.write(api_pb2.ExecRequest(start=api_pb2.ExecStart(
                    namespace=p.metadata.namespace, pod=p.metadata.name,  # type: ignore[attr-defined]
                    container=cname, command=list(cmd), stdin=stdin_, tty=use_tty)))
                if stdin_:
                    pump = asyncio.create_task(pump_stdin())
                else:
                    await call.done_writing()
                with raw_terminal(use_tty):
                    while True:
                        resp = await call.read()
                        if resp is grpc.aio.EOF:
                            break
                        which = resp.WhichOneof("msg")
                        if which == "stdout":
                            stdout.write(resp.stdout)
                            stdout.flush()
                        elif which == "stderr":
                            stderr.write(resp.stderr)
                            stderr.flush()
                        elif which == "exit_code":
                            code = resp.exit_code
            except grpc.aio.AioRpcError as e:
                raise util.convert_rpc_error(e, c.address) from None
            finally:
                if pump is not None:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError, grpc.aio.UsageError):
                        await pump
                call.cancel()
        return code

    code = util.run(main())
    if code:
        if not quiet:
            util.err(f"command terminated with exit code {code}")
        ctx.exit(code)
