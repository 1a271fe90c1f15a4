"""`python -m controlplane.controllers`: the controller manager (leader
election, controllers, scheduler) as its own process, like
kube-controller-manager + kube-scheduler.

pk-controlplane starts it as a supervised child (controlplane.main) so the
controllers and the scheduler use a second CPU core instead of sharing the
API server's event loop; it talks to the API over gRPC at --api-address
like any client, and takes the parent's whole configuration as JSON
(--config-json, a ControlPlaneConfig as a dict).

Lifetime: SIGTERM or SIGINT cancels the manager (a leader resigns on the
way out) and exits 0. The parent starts us under `setpriv --pdeathsig
TERM`; in addition a watcher notices the parent's death (our parent PID
changes) and stops us, for systems without setpriv(1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from typing import Any

from controlplane.config import ControlPlaneConfig

log = logging.getLogger("pk-controllers")

PARENT_POLL = 0.5


def config_from_json(text: str) -> ControlPlaneConfig:
    """A ControlPlaneConfig from json.dumps(dataclasses.asdict(config));
    unknown keys are ignored (a newer parent), missing ones keep defaults."""
    raw = json.loads(text)
    c = ControlPlaneConfig()
    names = {f.name for f in dataclasses.fields(c)}
    for k, v in raw.items():
        if k in names:
            setattr(c, k, v)
    c.service_node_port_range = tuple(c.service_node_port_range)  # type: ignore[assignment]
    c.etcd_servers = list(c.etcd_servers)
    return c


def config_to_json(config: ControlPlaneConfig) -> str:
    return json.dumps(dataclasses.asdict(config))


async def _parent_watch(parent: int) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_POLL)
    log.warning("parent process %d is gone: stopping", parent)


async def run(config: ControlPlaneConfig, api_address: str, parent: int) -> None:
    from controlplane.controllers import manager
    from pkapi.gctune import tune_gc

    tune_gc()  # the informer caches are large and live long

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    work = loop.create_task(manager.run(config, api_address), name="controller-manager")
    waits = {work, loop.create_task(stop.wait())}
    if parent > 1:
        waits.add(loop.create_task(_parent_watch(parent)))
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in waits:
            t.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    if work in done and not work.cancelled() and work.exception() is not None:
        raise work.exception()  # type: ignore[misc]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="pk-controllers", description="PocketKube controllers and scheduler "
                                "(started by pk-controlplane).")
    p.add_argument("--api-address", required=True, help="the API server's gRPC address")
    p.add_argument("--config-json", required=True, help="the control plane's configuration as JSON")
    p.add_argument("--parent-pid", type=int, default=0, help="stop when this process is no longer our parent")
    a = p.parse_args(argv)
    config = config_from_json(a.config_json)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(run(config, a.api_address, a.parent_pid))
    except KeyboardInterrupt:
        pass
    except Exception as e:
        log.error("controllers stopped: %r", e, exc_info=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
