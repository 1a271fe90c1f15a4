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

What to do with each container is decided by pure functions (decide.py:
decide, decide_image) over the runtime's view and the container's
ContainerRecord (record.py); this module executes the decision. A worker
sees the node only through its PodContext (context.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent.clock import within
from agent.pods import spec as podspec
from agent.pods.context import PodContext
from agent.pods.decide import (
    DEFAULT_GRACE,
    Create,
    Done,
    Keep,
    ProbeFacts,
    Pull,
    Stop,
    UseImage,
    Wait,
    attempt_of,
    decide,
    decide_image,
    probe_grace,
    should_restart,
)
from agent.pods.probes import ContainerProbes, ProbeRunner
from agent.pods.record import ContainerRecord
from agent.pods.status import ContainerView, pod_status
from agent.runtime.base import (
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
from pkapi.errors import ApiError, has_reason, is_conflict, is_not_found
from pkapi.v1 import core_pb2

log = logging.getLogger(__name__)


def grace_seconds(pod: core_pb2.Pod | None) -> int:
    if pod is None:
        return 0
    if pod.metadata.HasField("deletion_grace_period_seconds"):
        return max(0, pod.metadata.deletion_grace_period_seconds)
    if pod.spec.HasField("termination_grace_period_seconds"):
        return max(0, pod.spec.termination_grace_period_seconds)
    return DEFAULT_GRACE


class PodWorker:
    def __init__(self, ctx: PodContext, uid: str, pod: core_pb2.Pod) -> None:
        self.ctx = ctx
        self.uid = uid
        self.pod: core_pb2.Pod | None = pod
        self.key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        self.wake = asyncio.Event()
        self.wake.set()
        self.next_wake: float | None = None
        # One record per container name (back-offs, bindings, probes...).
        self.records: dict[str, ContainerRecord] = {}
        self.last_written: core_pb2.PodStatus | None = None
        self.last_written_rv = 0
        # Containers running before this worker existed (adopted after an
        # agent restart): their readiness starts from the last reported value.
        self.adopted: set[str] | None = None
        self.task: asyncio.Task[None] | None = None
        # Set by the manager when admitting the pod would exceed --max-pods:
        # the pod is failed (OutOfpods) and never run, as a kubelet does.
        self.rejected = ""

    def record(self, name: str) -> ContainerRecord:
        rec = self.records.get(name)
        if rec is None:
            t = self.ctx.timing
            rec = self.records[name] = ContainerRecord.new(t.backoff_initial, t.backoff_cap, t.pull_backoff_initial)
        return rec

    # -------------------------------------------------------------- loop

    def schedule(self, delay: float) -> None:
        at = self.ctx.clock.now() + max(0.0, delay)
        if self.next_wake is None or at < self.next_wake:
            self.next_wake = at

    def poke(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        clock = self.ctx.clock
        try:
            while True:
                timeout = None if self.next_wake is None else max(0.0, self.next_wake - clock.now())
                woken = asyncio.ensure_future(self.wake.wait())
                try:
                    await within(clock, woken, timeout)
                finally:
                    woken.cancel()
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
            for rec in self.records.values():
                for p in rec.probes.values():
                    p.stop()

    # -------------------------------------------------------------- sync

    async def sync(self) -> bool:
        """One convergence pass; True when the pod is finished (terminated and
        confirmed) and the worker may end."""
        rt = self.ctx.runtime
        states = await rt.list_containers({LABEL_NODE: self.ctx.node_name, LABEL_POD_UID: self.uid})
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

    def _observe(self, pod: core_pb2.Pod, c: core_pb2.Container, rec: ContainerRecord, cur: ContainerState | None) -> ProbeFacts | None:
        """Bring the record up to date with the newest run before deciding:
        probes for a running one, the exit of an exited one counted."""
        if cur is None:
            return None
        if cur.running:
            probes = self.ensure_probes(pod, c, cur)
            started = probes.startup is None or probes.startup.result
            ready = probes.readiness.result if probes.readiness is not None else True
            return ProbeFacts(started, started and ready, probes.kill_reason)
        if cur.exited:
            rec.stop_probes(cur.id)
            rec.observe_exit(cur, should_restart(pod.spec.restart_policy or "Always", cur.exit_code), self.ctx.clock.now())
        return None

    async def sync_container(self, pod: core_pb2.Pod, c: core_pb2.Container, runs: list[ContainerState]) -> ContainerView:
        rt = self.ctx.runtime
        rec = self.record(c.name)
        cur = runs[0] if runs else None
        prev = runs[1] if len(runs) > 1 else None
        if cur is not None and not rec.bindings:
            rec.bindings = podspec.parse_ports_label(cur.labels.get(LABEL_PORTS, ""))
        view = ContainerView(c.name, c.image, cur, prev, restart_count=attempt_of(cur) if cur is not None else 0)
        probe = self._observe(pod, c, rec, cur)
        action = decide(pod, c, runs, rec, probe, self.ctx.clock.now())
        for cid in action.remove:
            await rt.remove(cid)
        if cur is not None and cur.id in action.remove:
            cur = view.current = None  # created but never started: made again
        if isinstance(action, Stop):
            assert cur is not None
            self.ctx.event(pod, "Normal", "Killing", action.reason, c.name)
            await rt.stop(cur.id, probe_grace(pod, c))
            try:
                cur = view.current = await rt.inspect(cur.id)
            except ContainerNotFound:
                return view
            if cur.running:
                return view  # the stop did not take yet; the die event wakes us
            self._observe(pod, c, rec, cur)
            action = decide(pod, c, [cur] + runs[1:2], rec, None, self.ctx.clock.now())
        if isinstance(action, Keep):
            view.started, view.ready = action.started, action.ready
            return view
        if isinstance(action, Done):
            view.done = True
            return view
        if isinstance(action, Wait):
            self._wait(pod, c, rec, view, action)
            return view
        assert isinstance(action, Create), action
        return await self._create(pod, c, rec, view, action, prev)

    def _wait(self, pod: core_pb2.Pod, c: core_pb2.Container, rec: ContainerRecord, view: ContainerView, w: Wait) -> None:
        view.waiting_reason, view.waiting_message = w.reason, w.message
        for ev in w.events:
            self.ctx.event(pod, ev.type, ev.reason, ev.message, c.name)
        if w.report_once:
            rec.backoff_reported.add(w.report_once)
        if w.until is not None:
            self.schedule(w.until - self.ctx.clock.now())

    async def _create(
        self,
        pod: core_pb2.Pod,
        c: core_pb2.Container,
        rec: ContainerRecord,
        view: ContainerView,
        action: Create,
        prev: ContainerState | None,
    ) -> ContainerView:
        if not await self.ensure_image(pod, c, rec, view):
            return view
        try:
            new = await self.start_container(pod, c, rec, action.attempt)
        except (CreateError, ImageNotFound) as e:
            reason = "CreateContainerError" if isinstance(e, ImageNotFound) else "RunContainerError"
            now = self.ctx.clock.now()
            rec.create_failed(now, reason, str(e))
            self.schedule(max(rec.crash.until - now, 1.0))
            self.ctx.event(pod, "Warning", "Failed", f"Error: {e}", c.name)
            view.waiting_reason, view.waiting_message = reason, str(e)
            return view
        rec.create_error = None
        if action.replaces:
            await self.ctx.runtime.remove(action.replaces)
        view.previous = view.current if view.current is not None else prev
        view.current = new
        view.restart_count = action.attempt
        view.waiting_reason = view.waiting_message = ""
        if new.running:
            probes = self.ensure_probes(pod, c, new)
            view.started = probes.startup is None
            view.ready = view.started and probes.readiness is None
        return view

    # ------------------------------------------------------------- image

    async def ensure_image(self, pod: core_pb2.Pod, c: core_pb2.Container, rec: ContainerRecord, view: ContainerView) -> bool:
        """True when the image is present (pulling it if decide_image says so)."""
        rt, clock = self.ctx.runtime, self.ctx.clock
        image = c.image
        present = bool(await rt.image_id(image))
        local = present and c.image_pull_policy == "Always" and await rt.pulls_locally(image)
        step = decide_image(c, present, rec, clock.now(), self.ctx.timing.resync_interval, local)
        if isinstance(step, UseImage):
            rec.pull_failure = None
            for ev in step.events:
                self.ctx.event(pod, ev.type, ev.reason, ev.message, c.name)
            return True
        if isinstance(step, Wait):
            self._wait(pod, c, rec, view, step)
            return False
        assert isinstance(step, Pull), step
        self.ctx.event(pod, "Normal", "Pulling", f'Pulling image "{image}"', c.name)
        t0 = clock.now()
        try:
            await rt.pull(image)
        except ImagePullError as e:
            msg = str(e)
            rec.pull_failed(clock.now(), msg)
            self.ctx.event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {msg}', c.name)
            self.ctx.event(pod, "Warning", "Failed", "Error: ErrImagePull", c.name)
            view.waiting_reason, view.waiting_message = "ErrImagePull", msg
            self.schedule(min(1.0, rec.pull.delay / 2))
            return False
        rec.pull_succeeded()
        self.ctx.event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {clock.now() - t0:.3f}s', c.name)
        return True

    # ------------------------------------------------------------ create

    def _allocate(self, c: core_pb2.Container, avoid: set[int]) -> list[PortBinding]:
        out = []
        for p in c.ports:
            proto = (p.protocol or "TCP").upper()
            port = p.host_port or self.ctx.ports.allocate(proto, avoid)
            out.append(PortBinding(p.container_port, proto, self.ctx.node_ip, port))
        return out

    def _release(self, bindings: list[PortBinding]) -> None:
        for b in bindings:
            self.ctx.ports.release(b.host_port, b.protocol)

    async def start_container(self, pod: core_pb2.Pod, c: core_pb2.Container, rec: ContainerRecord, attempt: int) -> ContainerState:
        # Deleted pods' teardowns wait meanwhile: they slow a start down in
        # the engine (agent/pods/teardown.py).
        with self.ctx.teardown.starting():
            return await self._start_container(pod, c, rec, attempt)

    async def _start_container(self, pod: core_pb2.Pod, c: core_pb2.Container, rec: ContainerRecord, attempt: int) -> ContainerState:
        ctx = self.ctx
        rt = ctx.runtime
        bindings = rec.bindings
        if bindings is None or len(bindings) != len(c.ports):
            bindings = rec.bindings = self._allocate(c, set())
        last_err: Exception | None = None
        for _ in range(5):
            cfg = podspec.container_config(
                pod,
                c,
                attempt,
                ctx.node_name,
                ctx.node_ip,
                bindings,
                ctx.hooks.extra_env(pod),
                ctx.hooks.dns(pod),
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
            ctx.event(pod, "Normal", "Created", f"Created container {c.name}", c.name)
            try:
                await rt.start(cid)
            except PortInUse as e:
                # Someone else took a port between our check and Docker's bind.
                await rt.remove(cid)
                taken = {b.host_port for b in bindings}
                self._release(bindings)
                bindings = rec.bindings = self._allocate(c, taken)
                last_err = e
                continue
            except CreateError:
                await rt.remove(cid)
                raise
            ctx.event(pod, "Normal", "Started", f"Started container {c.name}", c.name)
            return await rt.inspect(cid)
        raise CreateError(str(last_err))

    # ------------------------------------------------------------ probes

    def target(self, rec: ContainerRecord, cid: str) -> Any:
        def resolve(port: int) -> tuple[str, int]:
            for b in rec.bindings or []:
                if b.container_port == port and b.protocol == "TCP":
                    return b.host_ip, b.host_port
            probes = rec.probes.get(cid)
            return (probes.ip if probes is not None and probes.ip else "127.0.0.1"), port

        return resolve

    def ensure_probes(self, pod: core_pb2.Pod, c: core_pb2.Container, cur: ContainerState) -> ContainerProbes:
        rec = self.record(c.name)
        probes = rec.probes.get(cur.id)
        if probes is None:
            probes = rec.probes[cur.id] = ContainerProbes(cur.ip)
            adopted = self.adopted is not None and cur.id in self.adopted
            was_ready = False
            if adopted:
                for cs in pod.status.container_statuses:
                    if cs.name == c.name and cs.container_id.endswith(cur.id):
                        was_ready = cs.ready
            tgt = self.target(rec, cur.id)

            def runner(kind: str, probe: core_pb2.Probe, initial: bool) -> ProbeRunner:
                def on_failure(msg: str) -> None:
                    self.ctx.event(pod, "Warning", "Unhealthy", f"{kind} probe failed: {msg}", c.name)
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

                return ProbeRunner(kind, probe, c, cur.id, self.ctx.runtime, tgt, initial, on_change, on_failure)

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
    def _start_others(probes: ContainerProbes) -> None:
        if probes.others_started:
            return
        probes.others_started = True
        for p in (probes.readiness, probes.liveness):
            if p is not None:
                p.start()

    # ------------------------------------------------------------ status

    async def write_status(self, pod: core_pb2.Pod, views: list[ContainerView]) -> None:
        bindings = {name: rec.bindings for name, rec in self.records.items() if rec.bindings is not None}
        new = pod_status(pod, views, self.ctx.node_ip, bindings)
        if new == pod.status:
            return
        rv = int(pod.metadata.resource_version or 0)
        if self.last_written is not None and new == self.last_written and rv <= self.last_written_rv:
            return  # our own write, not yet seen through the watch
        body = meta.copy(pod)
        body.metadata.resource_version = ""
        body.status.CopyFrom(new)
        try:
            out = await self.ctx.client.update_status(body)
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
        body.status.host_ip = self.ctx.node_ip
        try:
            await self.ctx.client.update_status(body)
        except ApiError as e:
            if not is_not_found(e):
                raise
        self.ctx.event(pod, "Warning", "OutOfpods", self.rejected)

    # --------------------------------------------------------- terminate

    async def _stop_all(self, running: list[ContainerState], grace: int) -> None:
        """Stop the containers within `grace` seconds. While they stop, a
        shorter grace period (a second delete, or a force delete: the pod is
        gone) kills them at once, as a kubelet does."""
        rt = self.ctx.runtime
        if not running:
            return
        # Through the manager's TeardownGate: a burst of deletions must not
        # hold up other pods' starts in the engine (agent/pods/teardown.py).
        gate = self.ctx.teardown
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
            await self.ctx.teardown.run(self.ctx.runtime.stop(cid, 0))
        except ContainerNotFound:
            pass
        except Exception as err:  # noqa: BLE001 - the running stop still ends it within the grace
            log.warning("pod %s: killing container %s failed (%s); waiting for the graceful stop", self.key, cid[:12], err)

    async def terminate(self, pod: core_pb2.Pod | None, states: list[ContainerState]) -> bool:
        rt = self.ctx.runtime
        for rec in self.records.values():
            rec.stop_all_probes()
        grace = grace_seconds(pod)
        running = [s for s in states if s.running]
        if pod is not None:
            for s in running:
                self.ctx.event(pod, "Normal", "Killing", f"Stopping container {s.labels.get(LABEL_CONTAINER, '')}",
                             s.labels.get(LABEL_CONTAINER, ""))
        await self._stop_all(running, grace)
        await asyncio.gather(*(self.ctx.teardown.run(rt.remove(s.id)) for s in states))
        for rec in self.records.values():
            if rec.bindings:
                self._release(rec.bindings)
            rec.bindings = None
        if pod is not None:
            md = pod.metadata
            try:
                await self.ctx.client.delete("pods", md.namespace, md.name, grace_period_seconds=0, uid=md.uid)
            except ApiError as e:
                # gone, or re-created under another uid: nothing left to confirm
                if not (is_not_found(e) or is_conflict(e) or has_reason(e, "PreconditionFailed")):
                    raise
            log.info("pod %s terminated (grace %ss)", self.key, grace)
        else:
            log.info("pod %s removed: gone from the API", self.key)
        return True
