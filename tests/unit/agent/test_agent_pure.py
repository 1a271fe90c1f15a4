"""The agent's pure decision code: back-off, status, container specs, probe
thresholds, port allocation, DNS/env hooks, flags."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from agent.config import AgentConfig
from agent.hooks import PodHooks
from agent.main import UsageError, parse_args
from agent.pods import spec as podspec
from agent.pods.backoff import Backoff
from agent.pods.ports import PortAllocator
from agent.pods.probes import ProbeTracker, resolve_port, timing
from agent.pods.status import ContainerView, container_status, phase, pod_status, qos_class
from agent.runtime.base import ContainerState, PortBinding
from pkapi import intstr, meta
from pkapi.v1 import core_pb2


def mkpod(**spec: object) -> core_pb2.Pod:
    d = {
        "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "pocketkube/hello:1"}], **spec},
    }
    p = meta.from_dict(d, core_pb2.Pod)
    assert isinstance(p, core_pb2.Pod)
    return p


T0 = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def running(cid: str = "abc", attempt: int = 0) -> ContainerState:
    return ContainerState(cid, "n", {"io.pocketkube.container.attempt": str(attempt)}, "img", status="running", started_at=T0)


def exited(code: int, cid: str = "abc") -> ContainerState:
    return ContainerState(
        cid, "n", {}, "img", status="exited", exit_code=code, started_at=T0, finished_at=T0 + dt.timedelta(seconds=3)
    )


# ------------------------------------------------------------------ backoff


def test_backoff_first_restart_immediate_then_doubling_to_cap() -> None:
    b = Backoff(1.0, 5.0)
    delays = []
    for i in range(6):
        b.failed(now=100.0 * i)
        delays.append(b.delay)
    assert delays == [0.0, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert b.waiting(500.0 + 4.9) and not b.waiting(505.0)


def test_backoff_kubernetes_preset_and_reset_after_long_run() -> None:
    b = Backoff(10.0, 300.0, reset_after=600)
    for _ in range(3):
        b.failed(0.0)
    assert b.delay == 20.0
    b.failed(0.0, ran_for=601)
    assert b.delay == 0.0


def test_backoff_not_first_immediate_for_pulls() -> None:
    b = Backoff(1.0, 300.0, first_immediate=False)
    b.failed(10.0)
    assert (b.delay, b.until) == (1.0, 11.0)
    b.failed(11.0)
    assert b.delay == 2.0
    b.reset()
    assert not b.waiting(11.0)


# ------------------------------------------------------------------- status


def test_container_status_running_ready() -> None:
    cs = container_status(ContainerView("c", "img", running(), ready=True, started=True))
    assert cs.state.HasField("running") and cs.ready and cs.started
    assert cs.container_id == "docker://abc"


def test_container_status_crash_loop_has_last_state() -> None:
    v = ContainerView("c", "img", exited(2), restart_count=3, waiting_reason="CrashLoopBackOff", waiting_message="back-off 4s")
    cs = container_status(v)
    assert cs.state.waiting.reason == "CrashLoopBackOff" and cs.state.waiting.message == "back-off 4s"
    assert cs.last_state.terminated.exit_code == 2 and cs.last_state.terminated.reason == "Error"
    assert cs.restart_count == 3 and not cs.ready


def test_container_status_terminated_when_done_and_signal() -> None:
    cs = container_status(ContainerView("c", "img", exited(0), done=True))
    assert cs.state.terminated.reason == "Completed"
    cs = container_status(ContainerView("c", "img", exited(137), done=True))
    assert cs.state.terminated.signal == 9 and cs.state.terminated.reason == "Error"


def test_container_status_creating_and_previous() -> None:
    cs = container_status(ContainerView("c", "img"))
    assert cs.state.waiting.reason == "ContainerCreating"
    cs = container_status(ContainerView("c", "img", running("new", 1), previous=exited(1, "old"), restart_count=1))
    assert cs.last_state.terminated.container_id == "docker://old"


@pytest.mark.parametrize(
    ("policy", "codes", "want"),
    [
        ("Never", [0, 0], "Succeeded"),
        ("Never", [0, 1], "Failed"),
        ("OnFailure", [0], "Succeeded"),
    ],
)
def test_phase_terminal(policy: str, codes: list[int], want: str) -> None:
    views = [ContainerView(f"c{i}", "i", exited(c), done=True) for i, c in enumerate(codes)]
    assert phase(core_pb2.PodSpec(restart_policy=policy), views) == want


def test_phase_pending_until_every_container_ran() -> None:
    spec = core_pb2.PodSpec()
    assert phase(spec, []) == "Pending"
    assert phase(spec, [ContainerView("a", "i", running()), ContainerView("b", "i", waiting_reason="ErrImagePull")]) == "Pending"
    assert phase(spec, [ContainerView("a", "i", running()), ContainerView("b", "i", running())]) == "Running"
    crash = ContainerView("a", "i", exited(1), waiting_reason="CrashLoopBackOff")
    assert phase(spec, [crash]) == "Running"


def test_pod_status_conditions_ports_and_stable_timestamps() -> None:
    pod = mkpod()
    pod.spec.containers[0].ports.add(container_port=8080, name="http")
    views = [ContainerView("c", "img", running(), ready=True, started=True)]
    b = {"c": [PortBinding(8080, "TCP", "10.0.0.5", 40001)]}
    st = pod_status(pod, views, "10.0.0.5", b)
    assert st.phase == "Running" and st.host_ip == st.pod_ip == "10.0.0.5"
    assert {c.type: c.status for c in st.conditions} == {
        "Initialized": "True", "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"
    }
    [pm] = st.port_mappings
    assert (pm.name, pm.container_port, pm.host_ip, pm.host_port) == ("http", 8080, "10.0.0.5", 40001)
    pod.status.CopyFrom(st)
    assert pod_status(pod, views, "10.0.0.5", b) == st  # nothing changed: identical, no write
    views[0].ready = False
    st2 = pod_status(pod, views, "10.0.0.5", b)
    r = meta.condition(st2.conditions, "Ready")
    assert r is not None and r.status == "False" and r.reason == "ContainersNotReady"
    assert r.message == "containers with unready status: [c]"


def test_pod_conditions_move_their_transition_time_only_when_they_flip() -> None:
    pod = mkpod()
    views = [ContainerView("c", "img", running(), ready=False, started=True)]
    pod.status.CopyFrom(pod_status(pod, views, "10.0.0.5", {}))
    long_ago = 1_600_000_000
    for c in pod.status.conditions:
        c.last_transition_time.seconds = long_ago
    two = [ContainerView("c", "img", running(), ready=False), ContainerView("d", "img", running(), ready=False)]
    pod.spec.containers.add(name="d", image="img")
    st = pod_status(pod, two, "10.0.0.5", {})  # still not ready, another message
    r = meta.condition(st.conditions, "Ready")
    assert r is not None and r.message == "containers with unready status: [c d]"
    assert r.last_transition_time.seconds == long_ago
    assert meta.condition(st.conditions, "PodScheduled").last_transition_time.seconds == long_ago  # type: ignore[union-attr]
    pod.status.CopyFrom(st)
    for v in two:
        v.ready = True
    st = pod_status(pod, two, "10.0.0.5", {})  # flips to True: now, and no reason left
    r = meta.condition(st.conditions, "Ready")
    assert r is not None and r.status == "True" and (r.reason, r.message) == ("", "")
    assert r.last_transition_time.seconds > long_ago
    assert [c.type for c in st.conditions] == ["Initialized", "Ready", "ContainersReady", "PodScheduled"]


def test_qos_class() -> None:
    assert qos_class(mkpod().spec) == "BestEffort"
    p = mkpod()
    p.spec.containers[0].resources.limits["cpu"].CopyFrom(intstr.make("1"))
    p.spec.containers[0].resources.limits["memory"].CopyFrom(intstr.make("1Gi"))
    assert qos_class(p.spec) == "Guaranteed"
    p.spec.containers[0].resources.requests["cpu"].CopyFrom(intstr.make("500m"))
    assert qos_class(p.spec) == "Burstable"


# --------------------------------------------------------------------- spec


def test_expand() -> None:
    env = {"A": "1", "B": "x"}
    assert podspec.expand("$(A)-$(B)-$(C)-$$(A)", env) == "1-x-$(C)-$(A)"


def test_container_config_env_labels_ports_limits() -> None:
    pod = mkpod()
    c = pod.spec.containers[0]
    c.command.extend(["sh", "-c"])
    c.args.append("echo $(GREETING)")
    c.env.add(name="GREETING", value="hi $(POD_NAME)")
    e = c.env.add(name="IP")
    e.value_from.field_ref.field_path = "status.hostIP"
    e = c.env.add(name="APP")
    e.value_from.field_ref.field_path = "metadata.labels['app']"
    c.resources.limits["cpu"].CopyFrom(intstr.make("250m"))
    c.resources.limits["memory"].CopyFrom(intstr.make("64Mi"))
    c.ports.add(container_port=80, name="http")
    bind = [PortBinding(80, "TCP", "10.0.0.5", 40002)]
    cfg = podspec.container_config(pod, c, 2, "n1", "10.0.0.5", bind, {"SVC_SERVICE_HOST": "10.96.0.1"},
                                 (["10.0.0.5"], ["a"], ["ndots:5"]))
    assert cfg.name == "pk_c_web_prod_u-1_2"
    assert cfg.env["POD_NAME"] == "web" and cfg.env["POD_NAMESPACE"] == "prod" and cfg.env["NODE_NAME"] == "n1"
    assert cfg.env["GREETING"] == "hi web" and cfg.env["IP"] == "10.0.0.5" and cfg.env["APP"] == "web"
    assert cfg.env["SVC_SERVICE_HOST"] == "10.96.0.1"
    assert cfg.command == ["sh", "-c"] and cfg.args == ["echo hi web"]
    assert (cfg.cpu_nanos, cfg.memory_bytes) == (250_000_000, 64 * 2**20)
    assert cfg.labels["io.pocketkube.node"] == "n1" and cfg.labels["io.pocketkube.pod.uid"] == "u-1"
    assert cfg.labels["io.pocketkube.container.attempt"] == "2"
    assert podspec.parse_ports_label(cfg.labels["io.pocketkube.ports"]) == bind
    assert cfg.hostname == "web" and cfg.dns_servers == ["10.0.0.5"]
    assert cfg.dns_search == ["a"] and cfg.dns_options == ["ndots:5"]


def test_parse_ports_label_tolerates_garbage() -> None:
    assert podspec.parse_ports_label("not json") == []
    assert podspec.parse_ports_label("") == []


# ------------------------------------------------------------------- probes


def test_probe_tracker_thresholds() -> None:
    t = ProbeTracker(success_threshold=2, failure_threshold=3, result=False)
    assert not t.record(True) and t.record(True) and t.result
    assert not t.record(False) and not t.record(False) and t.record(False) and not t.result
    assert not t.record(True) and not t.record(False)  # a success resets the failure count


def test_probe_timing_defaults_and_ports() -> None:
    assert timing(core_pb2.Probe()) == (0.0, 10.0, 1.0, 1, 3)
    c = core_pb2.Container(name="c")
    c.ports.add(container_port=8080, name="http")
    assert resolve_port(intstr.make("http"), c) == 8080
    assert resolve_port(intstr.make(9000), c) == 9000
    assert resolve_port(intstr.make("nope"), c) == 0


# -------------------------------------------------------------------- ports


def test_port_allocator_skips_ports_bound_by_others() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    busy.listen()
    a = PortAllocator("127.0.0.1", port, port)
    try:
        with pytest.raises(RuntimeError, match="no free host port"):
            a.allocate("TCP")
    finally:
        busy.close()
    assert a.allocate("TCP") == port


def test_port_allocator_unique_and_release() -> None:
    a = PortAllocator("127.0.0.1", 50000, 50002, check_bind=False)
    assert sorted(a.allocate("TCP") for _ in range(3)) == [50000, 50001, 50002]
    with pytest.raises(RuntimeError, match="no free host port in 50000-50002"):
        a.allocate("TCP")
    a.release(50001, "tcp")
    assert a.allocate("TCP", avoid=set()) == 50001


def test_port_allocator_reserve() -> None:
    a = PortAllocator("127.0.0.1", 50000, 50001, check_bind=False)
    a.reserve(50000, "TCP")
    assert a.allocate("TCP") == 50001
    assert a.allocate("UDP") in (50000, 50001)  # protocols are separate spaces


# -------------------------------------------------------------------- hooks


def test_dns_cluster_first_only_when_cluster_dns_runs() -> None:
    h = PodHooks(nameserver="10.0.0.5")
    pod = mkpod()
    assert h.dns(pod) == ([], [], [])
    h.cluster_dns = True
    assert h.dns(pod) == (["10.0.0.5"], ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                          ["ndots:5"])
    assert h.dns(mkpod(dnsPolicy="Default")) == ([], [], [])


def test_env_providers_and_service_links_off() -> None:
    h = PodHooks()
    h.env_providers.append(lambda pod: {"WEB_SERVICE_HOST": "10.96.0.10"})
    h.env_providers.append(lambda pod: 1 / 0)  # type: ignore[arg-type,return-value]  # a broken provider is skipped
    assert h.extra_env(mkpod()) == {"WEB_SERVICE_HOST": "10.96.0.10"}
    assert h.extra_env(mkpod(enableServiceLinks=False)) == {}


# -------------------------------------------------------------------- flags


def test_parse_args() -> None:
    cfg = parse_args(["--node-name", "n1", "--labels", "zone=a,disk=ssd", "--host-port-range", "41000-41010",
                      "--preset", "kubernetes", "--agent-port", "0"])
    assert cfg.node_name == "n1" and cfg.labels == {"zone": "a", "disk": "ssd"}
    assert cfg.host_port_range == (41000, 41010)
    assert (cfg.heartbeat_interval, cfg.backoff_initial, cfg.backoff_cap) == (10.0, 10.0, 300.0)
    assert parse_args([]).backoff_initial == 1.0
    assert isinstance(cfg, AgentConfig)


@pytest.mark.parametrize(
    ("argv", "msg"),
    [
        (["--labels", "novalue"], "is not of the form key=value"),
        (["--host-port-range", "9-1"], "1 <= FIRST <= LAST <= 65535"),
        (["--host-port-range", "abc"], "must be FIRST-LAST"),
        (["--node-ip", "not-an-ip"], "must be an IPv4 address"),
        (["--heartbeat-interval", "0"], "must be > 0"),
        (["--preset", "fast"], "invalid choice"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_parse_args_errors(argv: list[str], msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        parse_args(argv)


# ------------------------------------------------------- docker inspect data


def test_docker_inspect_parsing() -> None:
    from agent.runtime.docker_runtime import _parse_time, _state_from_inspect

    assert _parse_time("0001-01-01T00:00:00Z") is None and _parse_time("") is None
    t = _parse_time("2026-11-28T15:20:01.123456789Z")
    assert t == dt.datetime(2026, 11, 28, 15, 20, 1, 123456, tzinfo=dt.UTC)
    st = _state_from_inspect(
        {
            "Id": "abc",
            "Name": "/pk_c_web_default_u_0",
            "Image": "sha256:1",
            "Config": {"Image": "pocketkube/hello:1", "Labels": {"io.pocketkube.node": "n1"}},
            "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True, "StartedAt": "2026-11-28T15:20:01Z",
                      "FinishedAt": "2026-11-28T15:20:05.5Z", "Error": ""},
            "NetworkSettings": {"IPAddress": "", "Networks": {"bridge": {"IPAddress": "172.17.0.9"}}},
        }
    )
    assert (st.name, st.exit_code, st.oom_killed, st.ip, st.exited, st.running) == (
        "pk_c_web_default_u_0", 137, True, "172.17.0.9", True, False)
    assert st.finished_at is not None and st.finished_at.microsecond == 500000
    cs = container_status(ContainerView("c", "img", st, done=True))
    assert cs.state.terminated.reason == "OOMKilled" and cs.state.terminated.signal == 9


def test_dns_config_options_replace_the_policys_by_name() -> None:
    """dnsConfig adds nameservers and searches after the policy's; an
    option of the same name as the policy's (ndots) replaces it."""
    h = PodHooks(nameserver="10.0.0.5")
    h.cluster_dns = True
    pod = mkpod(dnsConfig={"nameservers": ["10.0.0.9"], "searches": ["corp.example"],
                           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    assert h.dns(pod) == (["10.0.0.5", "10.0.0.9"],
                          ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"],
                          ["ndots:2", "edns0"])
    none = mkpod(dnsPolicy="None", dnsConfig={"nameservers": ["127.0.0.1"], "options": [{"name": "rotate"}]})
    assert h.dns(none) == (["127.0.0.1"], [], ["rotate"])
