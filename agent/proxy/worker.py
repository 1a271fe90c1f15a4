"""The entry point of an extra proxy worker process, sharing the listening
ports (SO_REUSEPORT); procs.py starts and stops them.

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

A worker dies with its parent (PR_SET_PDEATHSIG, procs.py) and on SIGTERM.

    python -m agent.proxy.worker --server ADDR --node-name N --node-ip IP
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

from agent.proxy.proxier import Proxier
from agent.proxy.watch import ServiceWatch
from pkapi.client.cluster import ClusterClient

log = logging.getLogger(__name__)


async def _main(args: Any) -> None:
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
