"""Extra proxy worker processes sharing the listening ports (SO_REUSEPORT).

One asyncio process forwards on one core. With pk-agent --proxy-workers=N the
agent's proxy starts N-1 of these children; each watches Services and
Endpoints itself and binds the same addresses with SO_REUSEPORT, so the
kernel spreads new connections over all N processes. The agent's own
proxier alone manages addresses (ip addr); a worker whose bind fails
because an address is not there yet retries every second.

Services with sessionAffinity ClientIP are served by the agent's process
only: the kernel spreads connections by the whole 4-tuple, so a client's
connections would reach different workers, each with its own affinity
table.

A worker dies with its parent (PR_SET_PDEATHSIG) and on SIGTERM.

    python -m agent.proxy.worker --server ADDR --node-name N --node-ip IP
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
from typing import Any

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(server: str, node_name: str, node_ip: str, count: int) -> list[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "agent.proxy.worker", "--server", server, "--node-name", node_name,
           "--node-ip", node_ip]
    return [subprocess.Popen(cmd, preexec_fn=_die_with_parent) for _ in range(count)]  # noqa: PLW1509


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def _main(args: Any) -> None:
    from agent.proxy.proxier import Proxier
    from agent.proxy.watch import ServiceWatch
    from pkapi.client.cluster import ClusterClient

    client = ClusterClient(args.server)
    watch = ServiceWatch(client)
    watch.start()
    proxier = Proxier(watch, args.node_name, args.node_ip, manage_addresses=False, affinity=False)
    try:
        await proxier.run()
    finally:
        watch.stop()
        await client.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--node-name", required=True)
    ap.add_argument("--node-ip", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s {args.node_name} proxy-worker "
                        f"{os.getpid()} %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
