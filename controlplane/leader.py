"""Leader election on an etcd lease, in the vocabulary of etcd's
clientv3/concurrency package.

    session = Session(store, ttl=3)        # a lease kept alive in the background
    election = Election(session, "/pocketkube/leader/controllers")
    await election.campaign(identity)      # returns once we lead
    ...                                    # session.done is set if the lease is lost
    await election.resign()

How it works: campaign() creates the election key with the session's lease
(create fails while another holder's key exists); a loser watches the key
and tries again as soon as it is deleted (resign) or vanishes with its
lease (the holder died: etcd expires the lease after `ttl` seconds). So at
most one process holds the key at a time, and another takes over within
about ttl seconds of a leader's death.

Safety against a stale leader: the session renews its lease every ttl/3
and considers the lease lost when no renewal succeeded for ttl - ttl/3
seconds of its own monotonic clock (sooner than etcd can expire it), or when
etcd says the lease is gone. Then `session.done` is set and the caller must
stop leader-only work at once.

Fencing a paused leader (what is and is not guaranteed): a leader whose
process was paused (SIGSTOP, a VM freeze) past its lease may wake up with
work queued. `session.check()` raises LeaseLost once no renewal succeeded
for the same `ttl - ttl/3` seconds of the monotonic clock (which runs on
while a process is stopped), so the controllers' ClusterClient, built with
`write_guard=session.check`, refuses every write a woken leader attempts
before its keepalive loop has even run. Not covered: a write whose check
passed just before the pause and whose bytes leave after it (the check is
local; etcd itself does not compare the election key on controller
writes), and creates carry no precondition. Updates the controllers send
with the resourceVersion they read conflict if the new leader changed the
object meanwhile.

Concurrency: one Session and Election per process, used from one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Callable

from controlplane.store.base import KeyExistsError, Store

log = logging.getLogger(__name__)

ELECTION_PREFIX = "/pocketkube/leader/"


class LeaseLost(Exception):
    """A write was attempted after the leader's lease may have expired."""


class Session:
    """A lease kept alive until close() or until it is lost (then `done` is set)."""

    def __init__(self, store: Store, ttl: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self.ttl = max(1, int(ttl))
        self.lease = 0
        self.done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_ok = 0.0

    async def start(self) -> Session:
        self.lease = await self.store.grant_lease(self.ttl)
        self._last_ok = self.clock()
        self._task = asyncio.get_running_loop().create_task(self._keepalive(), name="leader-session")
        return self

    @property
    def alive(self) -> bool:
        return self.lease != 0 and not self.done.is_set()

    @property
    def deadline(self) -> float:
        """Seconds after the last renewal that the lease counts as lost
        (before etcd can expire it)."""
        return self.ttl - self.ttl / 3

    def check(self) -> None:
        """Raise LeaseLost unless the lease was renewed within `deadline`
        seconds (and not lost): the write guard of a leader's client."""
        stale = self.clock() - self._last_ok
        if self.done.is_set() or not self.lease or stale > self.deadline:
            self.done.set()
            raise LeaseLost(f"leader lease lost (last renewal {stale:.1f}s ago, limit {self.deadline:.1f}s): "
                            "write refused")

    async def _keepalive(self) -> None:
        interval = self.ttl / 3
        deadline = self.deadline  # give up before etcd expires the lease
        try:
            while True:
                await asyncio.sleep(interval)
                # etcd counts the lease from when it gets the renewal: the
                # time before sending is the safe side of that
                sent = self.clock()
                try:
                    ok = await asyncio.wait_for(self.store.keepalive(self.lease), interval)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    log.warning("leader session: keepalive failed: %s", err)
                    ok = None
                if ok:
                    self._last_ok = sent
                elif ok is False:
                    log.warning("leader session: lease %x expired", self.lease)
                    break
                if self.clock() - self._last_ok > deadline:
                    log.warning("leader session: no renewal for %.1fs; lease considered lost",
                                self.clock() - self._last_ok)
                    break
        finally:
            self.done.set()

    async def close(self) -> None:
        """Stop renewing and revoke the lease (its keys vanish at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self.lease:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.store.revoke(self.lease), 2)
        self.done.set()


class Election:
    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.key = name if name.startswith("/") else ELECTION_PREFIX + name
        self.identity = ""
        self._rev = 0

    async def leader(self) -> str | None:
        """The current leader's identity, or None."""
        kv = await self.session.store.get(self.key)
        return kv.value.decode() if kv is not None else None

    async def campaign(self, identity: str) -> None:
        """Block until this session holds the election key."""
        store = self.session.store
        value = identity.encode()
        while True:
            if not self.session.alive:
                raise RuntimeError("leader session lost before winning the election")
            try:
                self._rev = await store.create(self.key, value, lease=self.session.lease)
                self.identity = identity
                log.info("elected leader as %s", identity)
                return
            except KeyExistsError:
                pass
            kv = await store.get(self.key)
            if kv is None:
                continue
            if kv.lease == self.session.lease:  # our own key from an earlier attempt
                self._rev = kv.mod_revision
                self.identity = identity
                return
            await self._wait_deleted(kv.mod_revision)

    async def _wait_deleted(self, revision: int) -> None:
        """Until the key held at `revision` is deleted (or expires). A watch
        error is answered by re-checking, never by assuming leadership."""
        store = self.session.store
        try:
            async for ev in store.watch(self.key, revision + 1):
                if ev.key == self.key and ev.type == "DELETE":
                    return
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.info("election watch: %s; re-checking", err)
            await asyncio.sleep(0.2)

    async def observe(self) -> Any:
        """Async iterator of leader identities as they change (None: no leader)."""
        store = self.session.store
        last: str | None = "\0"
        while True:
            kv = await store.get(self.key)
            cur = kv.value.decode() if kv is not None else None
            if cur != last:
                last = cur
                yield cur
            start = (kv.mod_revision if kv is not None else await store.current_revision()) + 1
            try:
                async for _ev in store.watch(self.key, start):
                    break
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    async def resign(self) -> None:
        """Give up leadership (only if we still hold the key)."""
        store = self.session.store
        kv = await store.get(self.key)
        if kv is not None and kv.lease == self.session.lease:
            with contextlib.suppress(Exception):
                await store.delete(self.key, kv.mod_revision)
        self.identity = ""
