"""The controller manager: leader election, then every controller and the
scheduler, as gRPC clients of the API server.

    run(config, api_address)
      └ leader election (controlplane.leader: Session + Election on etcd)
          └ while leading: one ClusterClient, SharedInformers, and one task
            per entry of CONTROLLERS (plus the scheduler); on losing the
            lease every one of them is cancelled before campaigning again.

CONTROLLERS is an explicit list: a new controller is one line here. Each
entry is a factory `new(client, config, informers)` returning something
with a `name` and `async run()` (a controllers.base.Controller, as the
scheduler is, or a periodic loop such as nodelifecycle and eventttl); they
all share one cache per resource through `informers` (10,000 pods cached
once).

Without --leader-elect (or with the in-memory store, which no other
process can share) the controllers run at once and forever.

Concurrency: everything runs on the control plane's one event loop, in a
TaskGroup per term of leadership; a crashing controller ends the term
(logged), we resign so another control plane may lead, and campaign again
after a short pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable, Protocol

from controlplane.config import ControlPlaneConfig
from controlplane.controllers import deployment, endpoints, eventttl, gc, loadbalancer, nodelifecycle, replicaset
from controlplane.controllers.base import SharedInformers
from controlplane.leader import Election, Session
from controlplane.scheduler import scheduler
from pkapi.client.cluster import ClusterClient

log = logging.getLogger(__name__)

ELECTION = "controllers"


class Runnable(Protocol):
    name: str

    async def run(self) -> None: ...


Factory = Callable[[ClusterClient, ControlPlaneConfig, SharedInformers], Runnable]

# (name, factory). Order does not matter: every controller waits for its caches.
CONTROLLERS: list[tuple[str, Factory]] = [
    ("replicaset", replicaset.new),
    ("deployment", deployment.new),
    ("scheduler", scheduler.new),
    ("nodelifecycle", nodelifecycle.new),
    ("garbagecollector", gc.new),
    ("eventttl", eventttl.new),
    ("endpoints", endpoints.EndpointsController),
    ("loadbalancer", loadbalancer.LoadBalancerController),
]


async def run_controllers(config: ControlPlaneConfig, api_address: str,
                          controllers: list[tuple[str, Factory]] | None = None,
                          write_guard: Callable[[], None] | None = None) -> None:
    """Run every controller until cancelled (or one fails). write_guard
    (a leader's Session.check) is called before every write."""
    client = ClusterClient(api_address, timeout=30.0, write_guard=write_guard)
    informers = SharedInformers(client)
    try:
        built = [(name, f(client, config, informers)) for name, f in (controllers or CONTROLLERS)]
        async with asyncio.TaskGroup() as tg:
            informers.start(tg)
            for name, ctrl in built:
                tg.create_task(ctrl.run(), name=f"controller-{name}")
            log.info("controllers running: %s", ", ".join(n for n, _ in built))
    finally:
        await client.close()


def _election_store(config: ControlPlaneConfig) -> Any | None:
    if not config.leader_elect or config.etcd_servers in ([], ["memory://"]):
        return None
    from controlplane.store.etcd import EtcdStore

    # Fail fast: a leader that cannot reach etcd must notice within its lease.
    ttl = max(1, config.leader_lease_seconds)
    return EtcdStore(config.etcd_servers, retry_timeout=ttl / 2, op_timeout=max(ttl / 3, 0.5))


async def run(config: ControlPlaneConfig, api_address: str) -> None:
    """Leader election + controllers; returns only when cancelled."""
    store = _election_store(config)
    if store is None:
        await run_controllers(config, api_address)
        return
    identity = config.identity or "pk-controlplane"
    try:
        while True:
            session: Session | None = None
            try:
                session = await Session(store, config.leader_lease_seconds).start()
                election = Election(session, ELECTION)
                await election.campaign(identity)
                await _lead(config, api_address, session, election)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("leader election: %s; campaigning again", err)
                await asyncio.sleep(0.5)
            finally:
                if session is not None:
                    await session.close()
    finally:
        with contextlib.suppress(Exception):
            await store.close()


async def _lead(config: ControlPlaneConfig, api_address: str, session: Session, election: Election) -> None:
    log.info("%s is the leader: starting controllers", election.identity)
    work = asyncio.get_running_loop().create_task(run_controllers(config, api_address, write_guard=session.check),
                                                  name="controllers-term")
    lost = asyncio.get_running_loop().create_task(session.done.wait(), name="leader-lost")
    try:
        done, _ = await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (work, lost):
            t.cancel()
        await asyncio.gather(work, lost, return_exceptions=True)
    if lost in done:
        log.warning("lost leadership: controllers stopped")
        return
    exc = work.exception() if not work.cancelled() else None
    log.error("controllers stopped: %r; resigning", exc)
    with contextlib.suppress(Exception):
        await election.resign()
    await asyncio.sleep(1.0)
