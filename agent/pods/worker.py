"""PodWorker: converges one pod's containers to its spec.

Concurrency and ordering: one worker (one asyncio task) per pod UID; only it
creates, starts, stops or removes that pod's containers, so no two actions
on a pod ever interleave. Different pods' workers run concurrently. A worker
is level-triggered: whatever woke it (a watch event, a container event, a
probe flipping, a back-off timer, the periodic resync), it re-reads the
containers from the runtime and acts on what is, not on what happened.
A sync that raises is logged and retried after a second.

One sync:
  pod gone or deletionTimestamp -> terminate: SIGTERM, SIGKILL after the
      grace period, remove containers, confirm with a delete at grace 0
  per container: running -> probes; liveness/startup failed -> stop it
                 exited  -> restartPolicy + back-off (CrashLoopBackOff)
                 missing -> image (ErrImagePull / ImagePullBackOff), ports,
                            create, start
  status (pure, status.py) -> UpdateStatus if it changed
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from agent.pods import spec as podspec
from agent.pods.backoff import Backoff
from agent.pods.probes import ProbeRunner
from agent.pods.status import ContainerView, pod_status
from agent.runtime.base import (
    LABEL_ATTEMPT,
    LABEL_CONTAINER,
    LABEL_NODE,
    LABEL_POD_UID,
    LABEL_PORTS,
    ContainerNotFound,
    ContainerState,
    CreateError,
    ImageNotFound,
    ImagePullError,
    PortBinding,
    PortInUse,
    RuntimeUnavailable,
)
from pkapi import meta
from pkapi.client.cluster import ServerUnreachable
from pkapi.errors import ApiError, is_not_found
from pkapi.v1 import core_pb2

if TYPE_CHECKING:
    from agent.pods.manager import PodManager

log = logging.getLogger(__name__)

DEFAULT_GRACE = 30


def attempt_of(st: ContainerState) -> int:
    try:
        return int(st.labels.get(LABEL_ATTEMPT, "0"))
    except ValueError:
        return 0


def should_restart(policy: str, exit_code: int) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


def grace_seconds(pod: core_pb2.Pod | None) -> int:
    if pod is None:
        return 0
    if pod.metadata.HasField("deletion_grace_period_seconds"):
        return max(0, pod.metadata.deletion_grace_period_seconds)
    if pod.spec.HasField("termination_grace_period_seconds"):
        return max(0, pod.spec.termination_grace_period_seconds)
    return DEFAULT_GRACE


class _Probes:
    """The probe runners of one container (by container id)."""

    def __init__(self) -> None:
        self.startup: ProbeRunner | None = None
        self.readiness: ProbeRunner | None = None
        self.liveness: ProbeRunner | None = None
        self.others_started = False
        # Set when liveness or startup decided the container must restart.
        self.kill_reason = ""

    def all(self) -> list[ProbeRunner]:
        return [p for p in (self.startup, self.readiness, self.liveness) if p is not None]

    def stop(self) -> None:
        for p in self.all():
            p.stop()


class PodWorker:
    def __init__(self, manager: PodManager, uid: str, pod: core_pb2.Pod) -> None:
        self.m = manager
        self.uid = uid
        self.pod: core_pb2.Pod | None = pod
        self.key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        self.wake = asyncio.Event()
        self.wake.set()
        self.next_wake: float | None = None
        self.crash_backoff: dict[str, Backoff] = {}
        self.pull_backoff: dict[str, Backoff] = {}
        self.pull_failed_at: dict[str, tuple[float, str]] = {}
        self.seen_exits: set[str] = set()
        self.backoff_reported: set[str] = set()
        self.probes: dict[str, _Probes] = {}
        self.bindings: dict[str, list[PortBinding]] = {}
        self.create_errors: dict[str, tuple[str, str]] = {}
        self.last_written: core_pb2.PodStatus | None = None
        self.last_written_rv = 0
        self.first_seen = time.monotonic()
        # Containers running before this worker existed (adopted after an
        # agent restart): their readiness starts from the last reported value.
        self.adopted: set[str] | None = None
        self.task: asyncio.Task[None] | None = None
        # Set by the manager when admitting the pod would exceed --max-pods:
        # the pod is failed (OutOfpods) and never run, as a kubelet does.
        self.rejected = ""

    # -------------------------------------------------------------- loop

    def schedule(self, delay: float) -> None:
        at = time.monotonic() + max(0.0, delay)
        if self.next_wake is None or at < self.next_wake:
            self.next_wake = at

    def poke(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        try:
            while True:
                timeout = None if self.next_wake is None else max(0.0, self.next_wake - time.monotonic())
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except TimeoutError:
                    pass
                self.wake.clear()
                self.next_wake = None
                try:
                    if await self.sync():
                        return
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - retried; the agent must stay up
                    if isinstance(err, ServerUnreachable):
                        log.info("pod %s: control plane unreachable (%s); will retry", self.key, err)
                    elif isinstance(err, RuntimeUnavailable):
                        log.warning("pod %s: container engine unreachable (%s); will retry", self.key, err)
                    else:
                        log.exception("pod %s: sync failed; retrying", self.key)
                    self.schedule(1.0)
        finally:
            for p in self.probes.values():
                p.stop()

    # -------------------------------------------------------------- sync

    async def sync(self) -> bool:
        """One convergence pass; True when the pod is finished (terminated and
        confirmed) and the worker may end."""
        rt = self.m.runtime
        states = await rt.list_containers({LABEL_NODE: self.m.node_name, LABEL_POD_UID: self.uid})
        by_name: dict[str, list[ContainerState]] = {}
        for st in states:
            by_name.setdefault(st.labels.get(LABEL_CONTAINER, ""), []).append(st)
        for lst in by_name.values():
            lst.sort(key=attempt_of, reverse=True)
        if self.adopted is None:
            self.adopted = {st.id for st in states if st.running}
        pod = self.pod
        if pod is None or pod.metadata.HasField("deletion_timestamp"):
            return await self.terminate(pod, states)
        if self.rejected and not states:
            await self.write_rejected(pod)
            return False
        views = []
        for c in pod.spec.containers:
            views.append(await self.sync_container(pod, c, by_name.get(c.name, [])))
        await self.write_status(pod, views)
        return False

    async def sync_container(self, pod: core_pb2.Pod, c: core_pb2.Container, states: list[ContainerState]) -> ContainerView:
        rt = self.m.runtime
        for old in states[2:]:  # keep the current and the previous run only
            await rt.remove(old.id)
        cur = states[0] if states else None
        prev = states[1] if len(states) > 1 else None
        if cur is not None and not self.bindings.get(c.name):
            self.bindings[c.name] = podspec.parse_ports_label(cur.labels.get(LABEL_PORTS, ""))
        attempt = attempt_of(cur) if cur is not None else 0
        view = ContainerView(c.name, c.image, cur, prev, restart_count=attempt)
        policy = pod.spec.restart_policy or "Always"
        now = time.monotonic()

        if cur is not None and cur.status == "created":
            # Created but never started (the agent stopped in between): redo.
            await rt.remove(cur.id)
            cur = view.current = None
            next_attempt = attempt
        elif cur is not None and cur.running:
            probes = self.ensure_probes(pod, c, cur)
            if not probes.kill_reason:
                view.started = probes.startup is None or probes.startup.result
                ready = probes.readiness.result if probes.readiness is not None else True
                view.ready = view.started and ready
                return view
            self.m.event(pod, "Normal", "Killing", probes.kill_reason, c.name)
            await rt.stop(cur.id, self.probe_grace(pod, c))
            try:
                cur = view.current = await rt.inspect(cur.id)
            except ContainerNotFound:
                return view
            now = time.monotonic()
        if cur is not None and cur.running:
            return view  # the stop did not take yet; the die event wakes us

        if cur is not None and cur.exited:
            self.stop_probes(cur.id)
            restart = should_restart(policy, cur.exit_code)
            if cur.id not in self.seen_exits:
                self.seen_exits.add(cur.id)
                if restart:
                    ran = 0.0
                    if cur.started_at and cur.finished_at:
                        ran = (cur.finished_at - cur.started_at).total_seconds()
                    self.backoff(self.crash_backoff, c.name).failed(now, ran)
            if not restart:
                view.done = True
                return view
            bo = self.backoff(self.crash_backoff, c.name)
            if bo.waiting(now):
                md = pod.metadata
                view.waiting_reason = "CrashLoopBackOff"
                view.waiting_message = (
                    f"back-off {bo.delay:g}s restarting failed container={c.name} pod={md.name}_{md.namespace}({md.uid})"
                )
                if cur.id not in self.backoff_reported:
                    self.backoff_reported.add(cur.id)
                    self.m.event(pod, "Warning", "BackOff", f"Back-off restarting failed container {c.name} in pod "
                                 f"{md.name}_{md.namespace}({md.uid})", c.name)
                self.schedule(bo.until - now)
                return view
            next_attempt = attempt + 1
        elif cur is None:
            next_attempt = attempt
        else:
            return view  # paused/removing...: look again soon
        # ---- (re)create
        if not await self.ensure_image(pod, c, view):
            return view
        err = self.create_errors.get(c.name)
        if err is not None and self.backoff(self.crash_backoff, c.name).waiting(now):
            view.waiting_reason, view.waiting_message = err
            return view
        try:
            new = await self.start_container(pod, c, next_attempt)
        except (CreateError, ImageNotFound) as e:
            reason = "CreateContainerError" if isinstance(e, ImageNotFound) else "RunContainerError"
            self.create_errors[c.name] = (reason, str(e))
            bo = self.backoff(self.crash_backoff, c.name)
            bo.failed(time.monotonic())
            self.schedule(max(bo.until - time.monotonic(), 1.0))
            self.m.event(pod, "Warning", "Failed", f"Error: {e}", c.name)
            view.waiting_reason, view.waiting_message = reason, str(e)
            return view
        self.create_errors.pop(c.name, None)
        if cur is not None and prev is not None:
            await rt.remove(prev.id)
        view.previous = cur if cur is not None else prev
        view.current = new
        view.restart_count = next_attempt
        view.waiting_reason = view.waiting_message = ""
        if new.running:
            probes = self.ensure_probes(pod, c, new)
            view.started = probes.startup is None
            view.ready = view.started and probes.readiness is None
        return view

    def backoff(self, table: dict[str, Backoff], name: str, first_immediate: bool = True) -> Backoff:
        b = table.get(name)
        if b is None:
            cfg = self.m.config
            b = table[name] = Backoff(cfg.backoff_initial, cfg.backoff_cap, first_immediate=first_immediate)
        return b

    # ------------------------------------------------------------- image

    async def ensure_image(self, pod: core_pb2.Pod, c: core_pb2.Container, view: ContainerView) -> bool:
        """True when the image is present (pulling it if needed). Policy note:
        a lab has no registry, so an image already present is used as is even
        with imagePullPolicy Always (Kubernetes would pull); Never never
        pulls; a missing image is pulled (ErrImagePull, then ImagePullBackOff
        with back-off while it keeps failing)."""
        rt = self.m.runtime
        image = c.image
        present = await rt.image_id(image)
        if present:
            self.pull_failed_at.pop(c.name, None)
            self.m.event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine', c.name)
            return True
        policy = c.image_pull_policy or "IfNotPresent"
        if policy == "Never":
            view.waiting_reason = "ErrImageNeverPull"
            view.waiting_message = f'Container image "{image}" is not present with pull policy of Never'
            self.m.event(pod, "Warning", "ErrImageNeverPull", view.waiting_message, c.name)
            self.schedule(self.m.config.resync_interval)
            return False
        bo = self.backoff(self.pull_backoff, c.name, first_immediate=False)
        now = time.monotonic()
        failed = self.pull_failed_at.get(c.name)
        if failed is not None and bo.waiting(now):
            at, msg = failed
            if now - at < min(1.0, bo.delay / 2):
                view.waiting_reason, view.waiting_message = "ErrImagePull", msg
                self.schedule(min(1.0, bo.delay / 2) - (now - at))
            else:
                view.waiting_reason = "ImagePullBackOff"
                view.waiting_message = f'Back-off pulling image "{image}": ErrImagePull: {msg}'
                self.m.event(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', c.name)
                self.schedule(bo.until - now)
            return False
        self.m.event(pod, "Normal", "Pulling", f'Pulling image "{image}"', c.name)
        t0 = time.monotonic()
        try:
            await rt.pull(image)
        except ImagePullError as e:
            msg = str(e)
            now = time.monotonic()
            bo.failed(now)
            self.pull_failed_at[c.name] = (now, msg)
            self.m.event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {msg}', c.name)
            self.m.event(pod, "Warning", "Failed", "Error: ErrImagePull", c.name)
            view.waiting_reason, view.waiting_message = "ErrImagePull", msg
            self.schedule(min(1.0, bo.delay / 2))
            return False
        bo.reset()
        self.pull_failed_at.pop(c.name, None)
        self.m.event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {time.monotonic() - t0:.3f}s', c.name)
        return True

    # ------------------------------------------------------------ create

    def _allocate(self, c: core_pb2.Container, avoid: set[int]) -> list[PortBinding]:
        out = []
        for p in c.ports:
            proto = (p.protocol or "TCP").upper()
            port = p.host_port or self.m.ports.allocate(proto, avoid)
            out.append(PortBinding(p.container_port, proto, self.m.node_ip, port))
        return out

    def _release(self, bindings: list[PortBinding]) -> None:
        for b in bindings:
            self.m.ports.release(b.host_port, b.protocol)

    async def start_container(self, pod: core_pb2.Pod, c: core_pb2.Container, attempt: int) -> ContainerState:
        # Deleted pods' teardowns wait meanwhile: they slow a start down in
        # the engine (agent/pods/teardown.py).
        with self.m.teardown.starting():
            return await self._start_container(pod, c, attempt)

    async def _start_container(self, pod: core_pb2.Pod, c: core_pb2.Container, attempt: int) -> ContainerState:
        rt = self.m.runtime
        bindings = self.bindings.get(c.name)
        if bindings is None or len(bindings) != len(c.ports):
            bindings = self.bindings[c.name] = self._allocate(c, set())
        last_err: Exception | None = None
        for _ in range(5):
            cfg = podspec.container_config(
                pod,
                c,
                attempt,
                self.m.node_name,
                self.m.node_ip,
                bindings,
                self.m.hooks.extra_env(pod),
                self.m.hooks.dns(pod),
            )
            try:
                cid = await rt.create(cfg)
            except CreateError as e:
                if "already in use" in str(e):
                    # A leftover of ours with this exact name: replace it.
                    await rt.remove(cfg.name)
                    last_err = e
                    continue
                raise
            self.m.event(pod, "Normal", "Created", f"Created container {c.name}", c.name)
            try:
                await rt.start(cid)
            except PortInUse as e:
                # Someone else took a port between our check and Docker's bind.
                await rt.remove(cid)
                taken = {b.host_port for b in bindings}
                self._release(bindings)
                bindings = self.bindings[c.name] = self._allocate(c, taken)
                last_err = e
                continue
            except CreateError:
                await rt.remove(cid)
                raise
            self.m.event(pod, "Normal", "Started", f"Started container {c.name}", c.name)
            return await rt.inspect(cid)
        raise CreateError(str(last_err))

    # ------------------------------------------------------------ probes

    def probe_grace(self, pod: core_pb2.Pod, c: core_pb2.Container) -> int:
        for p in (c.liveness_probe, c.startup_probe):
            if p.HasField("termination_grace_period_seconds"):
                return p.termination_grace_period_seconds
        if pod.spec.HasField("termination_grace_period_seconds"):
            return pod.spec.termination_grace_period_seconds
        return DEFAULT_GRACE

    def target(self, c_name: str, cid: str) -> Any:
        def resolve(port: int) -> tuple[str, int]:
            for b in self.bindings.get(c_name, []):
                if b.container_port == port and b.protocol == "TCP":
                    return b.host_ip, b.host_port
            return self.m.container_ips.get(cid, "127.0.0.1"), port

        return resolve

    def ensure_probes(self, pod: core_pb2.Pod, c: core_pb2.Container, cur: ContainerState) -> _Probes:
        probes = self.probes.get(cur.id)
        if probes is None:
            probes = self.probes[cur.id] = _Probes()
            if cur.ip:
                self.m.container_ips[cur.id] = cur.ip
            adopted = self.adopted is not None and cur.id in self.adopted
            was_ready = False
            if adopted:
                for cs in pod.status.container_statuses:
                    if cs.name == c.name and cs.container_id.endswith(cur.id):
                        was_ready = cs.ready
            tgt = self.target(c.name, cur.id)

            def runner(kind: str, probe: core_pb2.Probe, initial: bool) -> ProbeRunner:
                def on_failure(msg: str) -> None:
                    self.m.event(pod, "Warning", "Unhealthy", f"{kind} probe failed: {msg}", c.name)
                    if kind == "Startup" and probes is not None and probes.startup is not None:
                        t = probes.startup.tracker
                        if t.failures + 1 >= max(1, t.failure_threshold) and not t.result:
                            probes.kill_reason = f"Container {c.name} failed startup probe, will be restarted"
                            self.poke()

                def on_change() -> None:
                    assert probes is not None
                    if kind == "Liveness" and probes.liveness is not None and not probes.liveness.result:
                        probes.kill_reason = f"Container {c.name} failed liveness probe, will be restarted"
                    if kind == "Startup" and probes.startup is not None and probes.startup.result:
                        self._start_others(probes)
                    self.poke()

                return ProbeRunner(kind, probe, c, cur.id, self.m.runtime, tgt, initial, on_change, on_failure)

            if c.HasField("startup_probe") and not adopted:
                probes.startup = runner("Startup", c.startup_probe, False)
            if c.HasField("readiness_probe"):
                probes.readiness = runner("Readiness", c.readiness_probe, was_ready)
            if c.HasField("liveness_probe"):
                probes.liveness = runner("Liveness", c.liveness_probe, True)
            if probes.startup is not None:
                probes.startup.start()
            else:
                self._start_others(probes)
        return probes

    @staticmethod
    def _start_others(probes: _Probes) -> None:
        if probes.others_started:
            return
        probes.others_started = True
        for p in (probes.readiness, probes.liveness):
            if p is not None:
                p.start()

    def stop_probes(self, cid: str) -> None:
        p = self.probes.pop(cid, None)
        if p is not None:
            p.stop()
        self.m.container_ips.pop(cid, None)

    # ------------------------------------------------------------ status

    async def write_status(self, pod: core_pb2.Pod, views: list[ContainerView]) -> None:
        new = pod_status(pod, views, self.m.node_ip, self.bindings)
        if new == pod.status:
            return
        rv = int(pod.metadata.resource_version or 0)
        if self.last_written is not None and new == self.last_written and rv <= self.last_written_rv:
            return  # our own write, not yet seen through the watch
        body = meta.copy(pod)
        body.metadata.resource_version = ""
        body.status.CopyFrom(new)
        try:
            out = await self.m.client.update_status(body)
        except ApiError as e:
            if is_not_found(e):
                return  # deleted meanwhile: the watch tells us
            raise
        self.last_written = new
        self.last_written_rv = int(out.metadata.resource_version or 0)

    async def write_rejected(self, pod: core_pb2.Pod) -> None:
        if pod.status.phase == "Failed" and pod.status.reason == "OutOfpods":
            return
        body = meta.copy(pod)
        body.metadata.resource_version = ""
        body.status.Clear()
        body.status.phase = "Failed"
        body.status.reason = "OutOfpods"
        body.status.message = self.rejected
        body.status.host_ip = self.m.node_ip
        try:
            await self.m.client.update_status(body)
        except ApiError as e:
            if not is_not_found(e):
                raise
        self.m.event(pod, "Warning", "OutOfpods", self.rejected)

    # --------------------------------------------------------- terminate

    async def _stop_all(self, running: list[ContainerState], grace: int) -> None:
        """Stop the containers within `grace` seconds. While they stop, a
        shorter grace period (a second delete, or a force delete: the pod is
        gone) kills them at once, as a kubelet does."""
        rt = self.m.runtime
        if not running:
            return
        # Through the manager's TeardownGate: a burst of deletions must not
        # hold up other pods' starts in the engine (agent/pods/teardown.py).
        gate = self.m.teardown
        stops = asyncio.gather(*(gate.run(rt.stop(s.id, grace)) for s in running))
        killed = False
        try:
            while not stops.done():
                self.wake.clear()
                waker = asyncio.ensure_future(self.wake.wait())
                futs: set[asyncio.Future[Any]] = {stops, waker}
                try:
                    await asyncio.wait(futs, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waker.cancel()
                if stops.done() or killed:
                    continue
                if self.pod is None or grace_seconds(self.pod) < grace:
                    killed = True
                    log.info("pod %s: deletion grace shortened; killing its containers now", self.key)
                    await asyncio.gather(*(self._kill(s.id) for s in running))
            await stops
        finally:
            if not stops.done():
                stops.cancel()

    async def _kill(self, cid: str) -> None:
        """Kill one container whose graceful stop is under way. Gone already
        (it exited and was removed) is the outcome wanted; any other error is
        logged, not hidden, and the graceful stop still bounds the wait."""
        try:
            await self.m.teardown.run(self.m.runtime.stop(cid, 0))
        except ContainerNotFound:
            pass
        except Exception as err:  # noqa: BLE001 - the running stop still ends it within the grace
            log.warning("pod %s: killing container %s failed (%s); waiting for the graceful stop", self.key, cid[:12], err)

    async def terminate(self, pod: core_pb2.Pod | None, states: list[ContainerState]) -> bool:
        rt = self.m.runtime
        for cid in list(self.probes):
            self.stop_probes(cid)
        grace = grace_seconds(pod)
        running = [s for s in states if s.running]
        if pod is not None:
            for s in running:
                self.m.event(pod, "Normal", "Killing", f"Stopping container {s.labels.get(LABEL_CONTAINER, '')}",
                             s.labels.get(LABEL_CONTAINER, ""))
        await self._stop_all(running, grace)
        await asyncio.gather(*(self.m.teardown.run(rt.remove(s.id)) for s in states))
        for bindings in self.bindings.values():
            self._release(bindings)
        self.bindings.clear()
        if pod is not None:
            md = pod.metadata
            try:
                await self.m.client.delete("pods", md.namespace, md.name, grace_period_seconds=0, uid=md.uid)
            except ApiError as e:
                if e.reason not in ("NotFound", "Conflict", "PreconditionFailed"):
                    raise
            log.info("pod %s terminated (grace %ss)", self.key, grace)
        else:
            log.info("pod %s removed: gone from the API", self.key)
        return True
