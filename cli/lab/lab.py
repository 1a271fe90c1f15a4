"""The one-machine lab: bring up, inspect, break and remove a PocketKube
cluster whose nodes are network namespaces of this machine.

    host namespace: etcd (127.0.0.1), pk-controlplane (10.231.K.1:6444 gRPC, :6443 HTTPS)
    node namespace pklabK-node-i: dockerd, pk-agent

Where things live (K = the lab's index, see plan.py):
  /var/lib/pocketkube/lab/<name>/     lab.json, logs, etcd data, each node's
                                      engine data-root   ($PK_LAB_STATE_ROOT)
  /run/pocketkube/lab/<name>/         PID files, sockets, exec-roots
                                      ($PK_LAB_RUN_ROOT)

Ordering guarantees of `up`: the record is written first (so `down` can
always clean up), then the containment routes (net.py) before any interface
or process exists, then the network, then etcd and the control plane, the
node engines (in parallel, one thread per node), images, agents last. Every
step checks what exists and only adds what is missing, so `up` resumes a
half-built lab and a second `up` of a running lab changes nothing.

`down` removes in reverse, by PID, namespace, link, route and mount, and
reports whatever it could not remove (exit 1), so a test can assert that
nothing is left.

Single-threaded apart from the per-node worker threads of `up` and `down`;
concurrent pkctl processes changing the same lab are not supported.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import psutil

from cli.lab import engine, flags, mounts, net, procs, registry, state
from cli.lab.plan import MAX_LABS, LabPlan, NodePlan, PlanError, free_index, make_plan

Say = Callable[[str], None]
T = TypeVar("T")


class LabError(RuntimeError):
    """A user-facing failure; str() is the message (pkctl prints `error: …`)."""


REQUIRED_TOOLS = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "dockerd": "docker.io",
    "etcd": "etcd-server",
    "umount": "mount",
    "docker-registry": "docker-registry",
    "socat": "socat",
}


def require_root(verb: str) -> None:
    if os.geteuid() != 0:
        raise LabError(
            f"`pkctl lab {verb}` must run as root: it creates network namespaces, a bridge, veth links "
            "and routes, and runs a dockerd per node. Run it as root, e.g. `sudo pkctl lab "
            f"{verb}` (with the virtualenv's pkctl: `sudo .venv/bin/pkctl lab {verb}`)."
        )


def require_tools() -> None:
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in REQUIRED_TOOLS.items() if not _which(tool)]
    if missing:
        raise LabError(f"missing programs: {', '.join(missing)}; install them with `make setup` (as root)")


def _which(name: str) -> str | None:
    # the virtualenv's own scripts first (pkctl may run as .venv/bin/pkctl without activation)
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin")


def binary(name: str) -> str:
    path = _which(name)
    if not path:
        raise LabError(f"{name} not found; install PocketKube into this environment (`make setup`)")
    return path


def default_images_dir() -> str:
    """$PK_LAB_IMAGES, else the checkout's images/out (where `make images`
    writes), found beside this package or above the working directory."""
    if os.environ.get("PK_LAB_IMAGES"):
        return os.environ["PK_LAB_IMAGES"]
    candidates = [Path(__file__).resolve().parents[2] / "images" / "out"]
    cwd = Path.cwd().resolve()
    candidates += [d / "images" / "out" for d in (cwd, *cwd.parents)]
    for c in candidates:
        if c.is_dir():
            return str(c)
    return str(candidates[0])


# ------------------------------------------------------------ components


def etcd_pidfile(plan: LabPlan) -> str:
    """The first etcd member's PID file (a lab of one: its only one)."""
    return plan.etcd_members[0].pidfile


def controlplane_pidfile(plan: LabPlan) -> str:
    """The first control plane's PID file (a lab of one: its only one)."""
    return plan.controlplanes[0].pidfile


def agent_pidfile(node: NodePlan) -> str:
    return f"{node.run_dir}/agent.pid"


def log_path(plan: LabPlan, component: str) -> str:
    """controlplane | etcd (cp-i | etcd-i in an HA lab) | registry | NODE |
    NODE/agent | NODE/dockerd -> its log file."""
    for part in plan.servers:
        if component == part.name:
            return part.log
    if component == "registry":
        return f"{plan.state_dir}/logs/registry.log"
    node_name, _, what = component.partition("/")
    node = plan.node(node_name)
    what = what or "agent"
    if what == "agent":
        return f"{node.state_dir}/agent.log"
    if what == "dockerd":
        return engine.dockerd_log(node)
    parts = ", ".join(p.name for p in plan.servers)
    raise PlanError(f'unknown component "{component}": use {parts}, registry, NODE/agent or NODE/dockerd')


def components(plan: LabPlan) -> list[str]:
    out = [p.name for p in plan.servers] + ["registry"]
    for n in plan.nodes:
        out += [f"{n.name}/agent", f"{n.name}/dockerd"]
    return out


def etcd_endpoints(plan: LabPlan, rec: state.LabRecord) -> list[str]:
    """Every etcd member's client URL (loopback)."""
    return [f"http://127.0.0.1:{rec.member_ports(i)[0]}" for i in range(len(plan.etcd_members))]


def etcd_argv(plan: LabPlan, rec: state.LabRecord, index: int = 0) -> list[str]:
    """etcd member `index`'s command line (peers on loopback)."""
    m = plan.etcd_members[index]
    client_port, peer_port = rec.member_ports(index)
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    cluster = ",".join(f"{o.member}=http://127.0.0.1:{rec.member_ports(i)[1]}" for i, o in enumerate(plan.etcd_members))
    argv = [
        binary("etcd"),
        f"--name={m.member}",
        f"--data-dir={m.data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={cluster}",
        "--auto-compaction-retention=1h",
        "--log-level=warn",
    ]
    if len(plan.etcd_members) > 1:
        argv.append(f"--initial-cluster-token=pklab-{plan.name}")
    return argv


def controlplane_values(plan: LabPlan, rec: state.LabRecord, index: int = 0) -> dict[str, str]:
    cp = plan.controlplanes[index]
    return {
        "listen": cp.server,
        "http_listen": cp.https_server,
        "etcd_servers": ",".join(etcd_endpoints(plan, rec)),
        "data_dir": cp.data_dir,
        "service_cidr": plan.service_cidr,
        "lb_pool": plan.lb_pool,
        "preset": plan.preset,
    }


def agent_values(plan: LabPlan, node: NodePlan) -> dict[str, str]:
    return {
        "node_name": node.name,
        "node_ip": node.ip,
        "docker_host": node.docker_host,
        "server": plan.server,
        "data_dir": f"{node.state_dir}/agent",
        "preset": plan.preset,
        # The node's cluster DNS answers cluster names only: the lab forwards
        # no query anywhere (nothing may leave this machine).
        "dns_upstreams": "none",
    }


def controlplane_argv(plan: LabPlan, rec: state.LabRecord, index: int = 0) -> list[str]:
    return [binary("pk-controlplane"), *flags.argv(flags.CONTROLPLANE_FLAGS, controlplane_values(plan, rec, index))]


def agent_argv(plan: LabPlan, node: NodePlan) -> list[str]:
    return [binary("pk-agent"), *flags.argv(flags.AGENT_FLAGS, agent_values(plan, node))]


def start_agent(plan: LabPlan, node: NodePlan) -> None:
    procs.start(agent_argv(plan, node), log_path(plan, f"{node.name}/agent"), agent_pidfile(node), netns=node.netns)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ waits


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.1,
             failed: Callable[[], str | None] | None = None) -> None:
    """Poll check() until true; raise LabError naming what was awaited at the
    deadline, or at once when failed() returns a reason."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if failed is not None:
            reason = failed()
            if reason:
                raise LabError(f"{what}: {reason}")
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def etcd_healthy(rec: state.LabRecord, index: int | None = None) -> bool:
    """Member `index` (None: every member) answers /health with true."""
    members = range(max(1, rec.control_planes)) if index is None else [index]
    for i in members:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{rec.member_ports(i)[0]}/health", timeout=1) as r:
                if b'"true"' not in r.read():
                    return False
        except OSError:
            return False
    return True


async def _api_version(server: str) -> bool:
    from pkapi.client.cluster import ClusterClient

    async with ClusterClient(server, timeout=1.0) as c:
        try:
            await c.version()
            return True
        except Exception:  # noqa: BLE001 - not answering yet
            return False


def api_ready(server: str) -> bool:
    return asyncio.run(_api_version(server))


async def _node_conditions(server: str) -> dict[str, str]:
    from pkapi.client.cluster import ClusterClient

    async with ClusterClient(server, timeout=2.0) as c:
        nodes, _ = await c.list("nodes")
    out = {}
    for n in nodes:
        ready = "Unknown"
        for cond in n.status.conditions:  # type: ignore[attr-defined]
            if cond.type == "Ready":
                ready = "Ready" if cond.status == "True" else "NotReady"
        out[n.metadata.name] = ready  # type: ignore[attr-defined]
    return out


async def _pods_per_node(server: str) -> dict[str, int]:
    from pkapi.client.cluster import ClusterClient

    async with ClusterClient(server, timeout=2.0) as c:
        pods, _ = await c.list("pods")
    out: dict[str, int] = {}
    for p in pods:
        node = p.spec.node_name  # type: ignore[attr-defined]
        if node and not p.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
            out[node] = out.get(node, 0) + 1
    return out


def pods_per_node(server: str) -> dict[str, int] | None:
    try:
        return asyncio.run(_pods_per_node(server))
    except Exception:  # noqa: BLE001 - status reports what it can
        return None


def node_conditions(server: str) -> dict[str, str] | None:
    """Node name -> Ready/NotReady/Unknown, or None if the API does not answer."""
    try:
        return asyncio.run(_node_conditions(server))
    except Exception:  # noqa: BLE001 - the API may be down: status still reports the rest
        return None


# --------------------------------------------------------------------- up


@dataclass
class UpOptions:
    name: str = "lab"
    nodes: int | None = None
    preset: str = "lab"
    service_cidr: str = "10.96.0.0/16"
    lb_pool: str | None = None
    images_dir: str | None = None
    control_planes: int | None = None
    write_config: bool = True
    # infrastructure only (network, engines, images): for the lab's own tests
    cluster: bool = True
    timeout: float = 90.0


def _record_for_up(opts: UpOptions) -> tuple[state.LabRecord, bool]:
    rec = state.load(opts.name)
    if rec is not None:
        if opts.nodes is not None and opts.nodes != rec.nodes:
            raise LabError(
                f'lab "{opts.name}" exists with {rec.nodes} nodes; remove it first (`pkctl lab down --name {opts.name}`) '
                f"to bring it up with {opts.nodes}"
            )
        if opts.control_planes is not None and opts.control_planes != rec.control_planes:
            raise LabError(
                f'lab "{opts.name}" exists with {rec.control_planes} control plane(s); remove it first '
                f"(`pkctl lab down --name {opts.name}`) to bring it up with {opts.control_planes}"
            )
        return rec, False
    used = {r.index for r in state.all_labs()}
    # an interface of that name that no lab of ours records (another tool's, or
    # a lab whose state was deleted by hand): skip its index
    used |= {i for i in range(MAX_LABS) if i not in used and
             (net.link_exists(f"pklab{i}") or net.subnet_in_use(f"10.231.{i}.0/24"))}
    index = free_index(used)
    etcd_ports_file = Path(state.state_root()) / opts.name / "etcd" / "pk-ports"
    client_port = peer_port = 0
    if etcd_ports_file.exists():  # data kept by `down --keep-data`: same member, same ports
        try:
            client_port, peer_port = (int(x) for x in etcd_ports_file.read_text().split())
        except ValueError:
            pass
    rec = state.LabRecord(
        name=opts.name,
        index=index,
        nodes=3 if opts.nodes is None else opts.nodes,
        preset=opts.preset,
        service_cidr=opts.service_cidr,
        lb_pool="" if opts.lb_pool is None else opts.lb_pool,
        etcd_client_port=client_port or _free_port(),
        etcd_peer_port=peer_port or _free_port(),
        state_root=state.state_root(),
        run_root=state.run_root(),
        created=time.time(),
        control_planes=opts.control_planes or 1,
    )
    if rec.control_planes > 1:
        rec.etcd_ports = _member_ports(Path(state.state_root()) / opts.name / "etcd", rec.control_planes)
    # validate everything before anything is written
    plan = make_plan(rec.name, rec.index, rec.nodes, rec.preset, rec.service_cidr, opts.lb_pool, rec.state_root,
                     rec.run_root, rec.control_planes)
    rec.lb_pool = plan.lb_pool
    return rec, True


def _member_ports(etcd_dir: Path, n: int) -> list[list[int]]:
    """(client, peer) ports of n etcd members: those kept beside data kept
    by `down --keep-data`, else free ones."""
    out = []
    for i in range(1, n + 1):
        kept = etcd_dir / f"etcd-{i}" / "pk-ports"
        try:
            client, peer = (int(x) for x in kept.read_text().split())
            out.append([client, peer])
        except (OSError, ValueError):
            out.append([_free_port(), _free_port()])
    return out


def is_up(plan: LabPlan, cluster: bool = True) -> bool:
    if not net.link_exists(plan.uplink):
        return False
    for n in plan.nodes:
        if not net.netns_exists(n.netns) or not procs.alive(engine.dockerd_pidfile(n)):
            return False
        if cluster and not procs.alive(agent_pidfile(n)):
            return False
    if cluster and not all(procs.alive(p.pidfile) for p in plan.servers):
        return False
    return registry.alive(plan) and all(procs.alive(registry.forwarder_pidfile(plan, n)) for n in plan.nodes)


def up(opts: UpOptions, say: Say = print) -> LabPlan:
    # bad options fail first, before anything is looked at or changed
    make_plan(opts.name, 0, 3 if opts.nodes is None else opts.nodes, opts.preset, opts.service_cidr, opts.lb_pool,
              control_planes=opts.control_planes or 1)
    require_root("up")
    require_tools()
    t0 = time.monotonic()
    with state.locked():  # the index is chosen and recorded by one pkctl at a time
        rec, new = _record_for_up(opts)
        plan = rec.plan()
        if not new and is_up(plan, opts.cluster):
            say(f'lab "{plan.name}" is already up ({len(plan.nodes)} nodes, control plane at {plan.server}); '
                f"`pkctl lab status` shows it, `pkctl lab down` removes it")
            return plan
        images_dir = opts.images_dir or default_images_dir()
        tags = sorted(engine.build_hashes(Path(images_dir) / "images.tar"))
        if not tags:
            raise LabError(f"no images in {images_dir}: build them first with `make images` (or set PK_LAB_IMAGES)")
        if opts.cluster:
            for name in ("pk-controlplane", "pk-agent"):
                binary(name)
        state.save(rec)
    Path(plan.state_dir, "logs").mkdir(parents=True, exist_ok=True)
    Path(plan.run_dir).mkdir(parents=True, exist_ok=True)
    verb = "creating" if new else "resuming"
    count = f"{len(plan.nodes)} node" + ("s" if len(plan.nodes) != 1 else "")
    say(f'{verb} lab "{plan.name}": {count} on {plan.subnet}, preset {plan.preset}')

    step = _Steps(say, t0)
    # 1. containment before anything can send a packet
    net.install_containment(plan)
    net.create_switch(plan)
    for n in plan.nodes:
        net.create_node(plan, n)
    step.done(f"network: {plan.uplink} {plan.gateway}/{plan.prefixlen}, {count} (network namespaces); "
              f"{plan.service_cidr} and {plan.lb_pool} kept on this machine")

    # 2. etcd and the control plane (host namespace), engines (node namespaces)
    if opts.cluster:
        for i in range(len(plan.etcd_members)):
            start_etcd_member(plan, rec, i)
    for n in plan.nodes:
        if not procs.alive(engine.dockerd_pidfile(n)):
            engine.start(n, engine.daemon_config(plan))
    registry.start(plan)
    if opts.cluster:
        wait_for("etcd to answer /health", lambda: etcd_healthy(rec), 30, failed=lambda: _etcd_died(plan))
        for i in range(len(plan.controlplanes)):
            start_controlplane_process(plan, rec, i)
        etcd_at = ", ".join(e.removeprefix("http://") for e in etcd_endpoints(plan, rec))
        step.done(f"etcd on {etcd_at}, control plane starting on {plan.server}")

    wait_for(f"the registry to answer at {plan.registry}", lambda: registry.answers(plan), 30,
             failed=lambda: None if registry.alive(plan) else
             f"docker-registry exited; see `pkctl lab logs registry`:\n{engine.tail(registry.log_path(plan))}")
    with ThreadPoolExecutor(max_workers=len(plan.nodes)) as pool:
        ready = pool.map(lambda n: engine.wait_ready(n, timeout=60), plan.nodes)
        pushed = _registry_call(lambda: registry.push(plan, tags))
        step.done(f"registry {plan.registry} ({plan.registry_dir}): "
                  + (f"pushed {', '.join(pushed)}" if pushed else "images already there"))
        list(ready)
        step.done(f"{len(plan.nodes)} Docker Engines answering")
        list(pool.map(lambda n: _registry_call(lambda: _pull(plan, n, tags)), plan.nodes))
    step.done(f"every node pulled {', '.join(tags)} from the registry")

    if opts.cluster:
        for cp in plan.controlplanes:
            wait_for(f"the control plane to answer at {cp.server}", lambda cp=cp: api_ready(cp.server), 30,  # type: ignore[misc]
                     failed=lambda cp=cp: None if procs.alive(cp.pidfile) else  # type: ignore[misc]
                     f"pk-controlplane exited; see `pkctl lab logs {cp.name}`:\n{engine.tail(cp.log)}")
        for n in plan.nodes:
            if not procs.alive(agent_pidfile(n)):
                start_agent(plan, n)
        if opts.write_config:
            write_pkctl_config(plan)
            merge_kubeconfig(plan)
        _wait_nodes_ready(plan, opts.timeout, say)
        step.done(f"{len(plan.nodes)} nodes Ready")
    say(summary(plan, time.monotonic() - t0, opts.cluster))
    return plan


def _registry_call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except registry.RegistryError as err:
        raise LabError(str(err)) from None


def _pull(plan: LabPlan, node: NodePlan, tags: list[str]) -> None:
    c = engine.client(node, timeout=300)
    try:
        registry.pull_into(plan, c, tags)
    finally:
        c.close()


def _etcd_died(plan: LabPlan) -> str | None:
    for m in plan.etcd_members:
        if not procs.alive(m.pidfile):
            return f"etcd exited; see `pkctl lab logs {m.name}`:\n{engine.tail(m.log)}"
    return None


def start_etcd_member(plan: LabPlan, rec: state.LabRecord, index: int) -> bool:
    """Start etcd member `index` unless it runs; True if started."""
    m = plan.etcd_members[index]
    if procs.alive(m.pidfile):
        return False
    Path(m.data_dir).mkdir(parents=True, exist_ok=True)
    client, peer = rec.member_ports(index)
    # beside the data: `down --keep-data` then `up` brings the member back on its ports
    ports_file = Path(plan.etcd_dir, "pk-ports") if len(plan.etcd_members) == 1 else Path(m.data_dir, "pk-ports")
    ports_file.write_text(f"{client} {peer}\n")
    if len(plan.etcd_members) > 1:
        os.chmod(m.data_dir, 0o700)
    procs.start(etcd_argv(plan, rec, index), m.log, m.pidfile)
    return True


def start_controlplane_process(plan: LabPlan, rec: state.LabRecord, index: int) -> bool:
    """Start control plane `index` unless it runs; True if started. The
    control planes of an HA lab share one cluster CA (made once under
    <state>/pki and copied into each one's PKI directory before its first
    start), so one kubeconfig trusts them all."""
    cp = plan.controlplanes[index]
    if procs.alive(cp.pidfile):
        return False
    Path(cp.data_dir).mkdir(parents=True, exist_ok=True)
    if len(plan.controlplanes) > 1:
        from pkapi import pki

        ca_crt, ca_key = pki.ensure_ca(f"{plan.state_dir}/pki")
        own = Path(cp.data_dir, "pki")
        if not (own / pki.CA_CERT).exists():
            own.mkdir(parents=True, exist_ok=True)
            os.chmod(own, 0o700)
            (own / pki.CA_KEY).write_bytes(ca_key)
            os.chmod(own / pki.CA_KEY, 0o600)
            (own / pki.CA_CERT).write_bytes(ca_crt)
    procs.start(controlplane_argv(plan, rec, index), cp.log, cp.pidfile)
    return True


class _Steps:
    def __init__(self, say: Say, t0: float) -> None:
        self.say = say
        self.t0 = t0

    def done(self, text: str) -> None:
        self.say(f"  [{time.monotonic() - self.t0:5.1f}s] {text}")


def _wait_nodes_ready(plan: LabPlan, timeout: float, say: Say) -> None:
    want = [n.name for n in plan.nodes]
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        conds = node_conditions(plan.server) or {}
        ready = [n for n in want if conds.get(n) == "Ready"]
        line = f"  waiting for nodes: {len(ready)}/{len(want)} Ready"
        if line != last:
            say(line)
            last = line
        if len(ready) == len(want):
            return
        dead = [n.name for n in plan.nodes if not procs.alive(agent_pidfile(n))]
        if dead:
            node = plan.node(dead[0])
            raise LabError(
                f"pk-agent of {', '.join(dead)} exited; see `pkctl lab logs {dead[0]}/agent`:\n"
                f"{engine.tail(log_path(plan, node.name + '/agent'))}"
            )
        if time.monotonic() > deadline:
            missing = [n for n in want if n not in ready]
            raise LabError(
                f"timed out after {timeout:.0f} s waiting for nodes {', '.join(missing)} to be Ready "
                f"(seen: {conds or 'no answer from the API'}); see `pkctl lab logs NODE/agent`"
            )
        time.sleep(0.25)


def context_name(plan: LabPlan) -> str:
    return f"pocketkube-{plan.name}"


def lab_kubeconfig(plan: LabPlan) -> dict[str, Any]:
    """The lab's kubeconfig: the one its control plane wrote into its data
    directory (the HTTPS API, the cluster CA, the admin's credentials and
    the gRPC address), as context pocketkube-<lab>."""
    from pkapi import kubeconfig

    path = Path(plan.controlplane_dir) / "kubeconfig.yaml"
    try:
        cfg = kubeconfig.load(path)
        if not cfg:
            raise LabError(f"the control plane has not written {path} yet: is the lab up (`pkctl lab status`)?")
        out = kubeconfig.renamed(cfg, context_name(plan))
    except kubeconfig.KubeconfigError as e:
        raise LabError(f"{path}: {e}") from None
    # pkctl's gRPC address: every control plane of an HA lab (it fails over);
    # kubectl's https server stays the first one (kubectl takes one).
    for c in out["clusters"]:
        for ext in c["cluster"].get("extensions") or []:
            if ext.get("name") == kubeconfig.EXTENSION:
                ext.setdefault("extension", {})["server"] = plan.server
    return out


def merge_kubeconfig(plan: LabPlan) -> str:
    """Merge the lab's context into $KUBECONFIG (its first file) or
    ~/.kube/config and make it current, as kind does; the file it wrote."""
    from pkapi import kubeconfig

    path = kubeconfig.path()
    try:
        kubeconfig.save(path, kubeconfig.merge(kubeconfig.load(path), lab_kubeconfig(plan)))
    except (kubeconfig.KubeconfigError, OSError) as e:
        raise LabError(f"cannot merge the lab's context into {path}: {e}") from None
    return str(path)


def _forget_kubeconfig(plan: LabPlan) -> None:
    from pkapi import kubeconfig

    path = kubeconfig.path()
    try:
        cfg = kubeconfig.load(path)
        if any(c.get("name") == context_name(plan) for c in cfg.get("contexts") or [] if isinstance(c, dict)):
            kubeconfig.save(path, kubeconfig.remove(cfg, context_name(plan)))
    except Exception:  # noqa: BLE001 - an unreadable kubeconfig is not ours to fix
        pass


def write_pkctl_config(plan: LabPlan) -> str:
    from cli.config import config_path, write_config

    path = config_path()
    write_config(path, plan.server)
    return str(path)


def summary(plan: LabPlan, took: float, cluster: bool = True) -> str:
    from cli.config import config_path

    width = max(len(n.name) for n in plan.nodes)
    nodes = "\n".join(f"    {n.name:<{width}}  {n.ip:<13}  netns {n.netns}, engine {n.docker_host}" for n in plan.nodes)
    lines = [
        f'lab "{plan.name}" is up in {took:.1f} s',
        f"  control plane  {plan.server}" + (f"  (pkctl config: {config_path()})" if cluster else "  (not started)"),
        f"  nodes ({len(plan.nodes)}):",
        nodes,
        f"  services       ClusterIPs from {plan.service_cidr} (reachable inside the nodes), "
        f"LoadBalancer IPs from {plan.lb_pool}",
        f"  registry       {plan.registry} (push here from this machine; nodes pull the same names, "
        "and Docker Hub names such as nginx:latest come from it)",
        f"  state          {plan.state_dir}   logs: pkctl lab logs "
        f"{'|'.join(p.name for p in plan.servers)}|registry|NODE/agent|NODE/dockerd",
        "try:",
        "  pkctl get nodes -o wide",
        "  pkctl apply -f examples/web.yaml && pkctl rollout status deployment/my-web-app-deployment",
        "  pkctl get svc my-web-app-service            # its CLUSTER-IP, reachable inside the nodes:",
        "  pkctl lab exec node-1 -- curl -s http://CLUSTER-IP/",
        f"  pkctl lab exec node-1 -- busybox nslookup my-web-app-service.default.svc.cluster.local {plan.nodes[0].ip}",
        f"  pkctl lab kill-node {plan.nodes[-1].name} --hard; pkctl get pods -o wide -w",
        "  pkctl lab down",
    ]
    if plan.name != "lab":
        lines = [_with_name(ln, plan.name) for ln in lines]
    return "\n".join(lines)


def _with_name(line: str, name: str) -> str:
    """`  pkctl lab VERB ARGS` -> `  pkctl lab VERB --name NAME ARGS`."""
    if not line.startswith("  pkctl lab "):
        return line
    words = line.strip().split(" ")
    return "  " + " ".join(words[:3] + ["--name", name] + words[3:])


# ------------------------------------------------------------------- down


def down(name: str = "lab", keep_data: bool = False, say: Say = print) -> list[str]:
    """Remove the lab; returns what could not be removed (empty: nothing left)."""
    require_root("down")
    rec = state.load(name)
    if rec is None:
        say(f'no lab named "{name}" (nothing to remove)')
        return []
    plan = rec.plan()
    t0 = time.monotonic()
    # agents first (a dying engine must not be seen as pods failing), then the
    # control plane and etcd, then the engines with their containers
    for n in plan.nodes:
        procs.stop(agent_pidfile(n), hard=True)
    for cp in plan.controlplanes:
        procs.stop(cp.pidfile, grace=5)
    for m in plan.etcd_members:
        procs.stop(m.pidfile, grace=10)
    registry.stop(plan)
    with ThreadPoolExecutor(max_workers=len(plan.nodes)) as pool:
        list(pool.map(engine.hard_kill, plan.nodes))
    strays = stray_processes(plan)
    procs.kill_all(strays)

    left_mounts = mounts.unmount_all(plan.run_dir) + mounts.unmount_all(plan.state_dir)
    for path in agent_files_outside(plan):
        try:
            os.unlink(path)
        except OSError:
            pass
    for n in plan.nodes:
        net.remove_node(plan, n)
    net.remove_switch(plan)
    shared = any(r.name != rec.name and r.service_cidr == rec.service_cidr for r in state.all_labs(rec.state_root))
    net.remove_containment(plan, service_cidr_shared=shared)
    left = net.wait_gone(plan)
    left += [f"mount {m}" for m in left_mounts]
    left += [f"process {p.pid} ({' '.join(_cmd(p))[:80]})" for p in stray_processes(plan)]

    if not left_mounts:
        try:
            mounts.safe_rmtree(plan.run_dir)
            if keep_data:
                for child in Path(plan.state_dir).iterdir():
                    if child.name not in ("etcd", "registry"):
                        mounts.safe_rmtree(str(child)) if child.is_dir() and not child.is_symlink() else child.unlink()
            else:
                mounts.safe_rmtree(plan.state_dir)
        except (OSError, RuntimeError) as err:
            left.append(f"directory: {err}")
    _forget_config(plan)
    _forget_kubeconfig(plan)
    for d in (rec.run_root, rec.state_root):
        _rmdir_empty(d, levels=2)
    if not left:
        kept = f" (etcd data and images kept in {plan.etcd_dir}, {plan.registry_dir})" if keep_data else ""
        say(f'lab "{name}" removed in {time.monotonic() - t0:.1f} s: processes, namespaces, links, routes, '
            f"mounts and files{kept}")
    else:
        state.save(rec)  # keep the record: a later `down` retries
        say(f'lab "{name}" removed, but these remain:\n  ' + "\n  ".join(left))
    return left


def agent_files_outside(plan: LabPlan) -> list[str]:
    """Files the nodes' agents keep outside the lab's directories: the service
    proxy's share lock /run/pocketkube/proxy-<tag>-<netns inode>.lock. Keyed
    by the node's network namespace, so they are the lab's alone."""
    inodes = set()
    for n in plan.nodes:
        try:
            inodes.add(os.stat(n.netns_path).st_ino)
        except OSError:
            pass
    return sorted(str(p) for p in Path("/run/pocketkube").glob("proxy-*.lock")
                  if p.stem.rsplit("-", 1)[-1] in {str(i) for i in inodes})


def _rmdir_empty(path: str, levels: int) -> None:
    """Remove path and up to levels-1 of its parents while they are empty
    (/run/pocketkube/lab, /run/pocketkube): made by the lab, shared by labs."""
    p = Path(path)
    for _ in range(levels):
        try:
            p.rmdir()
        except OSError:
            return
        p = p.parent


def _cmd(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def stray_processes(plan: LabPlan) -> list[psutil.Process]:
    """Processes whose command line names one of the lab's own directories
    (a shim or docker-proxy whose parent died, an agent started by hand):
    the lab made them, so `down` ends them."""
    markers = (plan.run_dir + "/", plan.state_dir + "/")
    me = os.getpid()
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if p.pid == me:
            continue
        try:
            cmdline = p.info["cmdline"] or []
        except psutil.NoSuchProcess:
            continue
        if any(m in arg or arg == m[:-1] or arg.endswith("=" + m[:-1]) for arg in cmdline for m in markers):
            if procs.is_live(p):
                found.append(p)
    return found


def _forget_config(plan: LabPlan) -> None:
    from cli.config import config_path, read_config

    path = config_path()
    try:
        if read_config(path).server == plan.server:
            path.unlink()
    except Exception:  # noqa: BLE001 - an unreadable config is not ours to fix
        pass


# ------------------------------------------------------- status, breakage


def load_plan(name: str) -> tuple[state.LabRecord, LabPlan]:
    rec = state.load(name)
    if rec is None:
        flag = "" if name == "lab" else f" --name {name}"
        raise LabError(f'no lab named "{name}": bring one up with `pkctl lab up{flag}`')
    return rec, rec.plan()


# controlplane.leader's ELECTION_PREFIX + the controller manager's election
LEADER_KEY = "/pocketkube/leader/controllers"


def leader_identity(plan: LabPlan, rec: state.LabRecord) -> str | None:
    """The controllers' leader's election identity (HOST_PID), read from
    etcd's JSON gateway of whichever member answers; None if none does or
    nobody leads."""
    body = json.dumps({"key": base64.b64encode(LEADER_KEY.encode()).decode()}).encode()
    for endpoint in etcd_endpoints(plan, rec):
        try:
            req = urllib.request.Request(f"{endpoint}/v3/kv/range", data=body, method="POST")
            with urllib.request.urlopen(req, timeout=1) as r:
                kvs = json.load(r).get("kvs") or []
        except (OSError, ValueError):
            continue
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
    return None


def leader_name(plan: LabPlan, rec: state.LabRecord) -> str | None:
    """Which control plane leads (by the PID in its identity), or None."""
    ident = leader_identity(plan, rec)
    if not ident:
        return None
    pid = ident.rsplit("_", 1)[-1]
    for cp in plan.controlplanes:
        p = procs.read(cp.pidfile)
        if p is not None and str(p.pid) == pid:
            return cp.name
    return None


def status(name: str = "lab", say: Say = print, output: str = "") -> bool:
    """Print the lab's state (a table, or with output "json" one JSON
    object: controlplanes, leader, etcd, nodes); True if every part runs."""
    rec, plan = load_plan(name)
    api_up = any(procs.alive(cp.pidfile) for cp in plan.controlplanes)
    conds = node_conditions(plan.server) if api_up else None
    pods = (pods_per_node(plan.server) if conds is not None else None) or {}
    cps = [{"name": cp.name, "server": cp.server, "https": cp.https_server,
            "pid": _pid_of(cp.pidfile)} for cp in plan.controlplanes]
    members = [{"name": m.name, "member": m.member, "endpoint": ep, "pid": _pid_of(m.pidfile)}
               for m, ep in zip(plan.etcd_members, etcd_endpoints(plan, rec), strict=True)]
    leader = leader_name(plan, rec) if api_up else None
    healthy = all(c["pid"] for c in cps) and all(m["pid"] for m in members)
    reg = procs.read(registry.pidfile(plan))
    healthy = healthy and reg is not None and registry.alive(plan)
    components = [(str(m["name"]), str(m["endpoint"]).removeprefix("http://"), m["pid"]) for m in members]
    components += [(str(c["name"]), str(c["server"]), c["pid"]) for c in cps]
    components.append(("registry", f"{plan.registry} ({plan.gateway}:{plan.registry_port} on the lab network)",
                       reg.pid if reg else None))
    nodes = []
    for n in plan.nodes:
        if not net.netns_exists(n.netns):
            link = "missing"
        elif net.is_partitioned(plan, n):
            link = "partitioned"
        else:
            link = "up"
        dockerd, agent = _pid_of(engine.dockerd_pidfile(n)), _pid_of(agent_pidfile(n))
        nodes.append({"name": n.name, "ip": n.ip, "link": link, "dockerd": dockerd, "agent": agent,
                      "status": None if conds is None else conds.get(n.name, "not registered"),
                      "pods": None if conds is None else pods.get(n.name, 0)})
        healthy = healthy and link == "up" and bool(dockerd) and bool(agent)
    if output == "json":
        say(json.dumps({
            "name": plan.name, "preset": plan.preset, "network": plan.subnet, "uplink": plan.uplink,
            "stateDir": plan.state_dir, "server": plan.server, "registry": plan.registry,
            "components": [{"name": c, "address": a, "pid": pid} for c, a, pid in components],
            "controlplanes": cps, "leader": leader, "etcd": members, "nodes": nodes, "healthy": bool(healthy),
        }, indent=2))
        return bool(healthy)
    say(f'lab "{plan.name}"  preset {plan.preset}  network {plan.subnet} ({plan.uplink})  state {plan.state_dir}')
    rows: list[tuple[str, ...]] = [("COMPONENT", "ADDRESS", "PROCESS")]
    for c_name, address, pid in components:
        lead = "  (leader)" if len(cps) > 1 and c_name == leader else ""
        rows.append((c_name, address, _running(pid) + lead))
    say(_table(rows))
    say("")
    rows = [("NODE", "IP", "LINK", "DOCKERD", "AGENT", "STATUS", "PODS")]
    for d in nodes:
        rows.append((str(d["name"]), str(d["ip"]), str(d["link"]), _running(d["dockerd"]), _running(d["agent"]),
                     "-" if d["status"] is None else str(d["status"]), "-" if d["pods"] is None else str(d["pods"])))
    say(_table(rows))
    if conds is None and api_up:
        say("(the control plane does not answer: node status unknown)")
    return bool(healthy)


def _pid_of(pidfile: str) -> int | None:
    p = procs.read(pidfile)
    return p.pid if p else None


def _running(pid: object) -> str:
    return f"running (pid {pid})" if pid else "stopped"


def kill_controlplane(name: str, cp_name: str, say: Say = print) -> None:
    """SIGKILL one control plane (no graceful shutdown: its lease expires)."""
    require_root("kill-controlplane")
    _, plan = load_plan(name)
    cp = plan.controlplane(cp_name)
    killed = procs.stop(cp.pidfile, hard=True)
    say(f"{cp.name}: pk-controlplane " + ("killed" if killed else "was not running"))


def start_controlplane(name: str, cp_name: str, say: Say = print) -> None:
    require_root("start-controlplane")
    rec, plan = load_plan(name)
    cp = plan.controlplane(cp_name)
    index = plan.controlplanes.index(cp)
    if not start_controlplane_process(plan, rec, index):
        say(f"{cp.name}: already running")
        return
    wait_for(f"the control plane to answer at {cp.server}", lambda: api_ready(cp.server), 30,
             failed=lambda: None if procs.alive(cp.pidfile) else
             f"pk-controlplane exited; see `pkctl lab logs {cp.name}`:\n{engine.tail(cp.log)}")
    say(f"{cp.name}: started, serving on {cp.server}")


def kill_etcd(name: str, member: str, say: Say = print) -> None:
    """SIGKILL one etcd member."""
    require_root("kill-etcd")
    _, plan = load_plan(name)
    m = plan.etcd_member(member)
    killed = procs.stop(m.pidfile, hard=True)
    say(f"{m.name}: etcd " + ("killed" if killed else "was not running"))


def start_etcd(name: str, member: str, say: Say = print) -> None:
    require_root("start-etcd")
    rec, plan = load_plan(name)
    m = plan.etcd_member(member)
    index = plan.etcd_members.index(m)
    if not start_etcd_member(plan, rec, index):
        say(f"{m.name}: already running")
        return
    wait_for(f"etcd member {m.name} to answer /health", lambda: etcd_healthy(rec, index), 30,
             failed=lambda: None if procs.alive(m.pidfile) else
             f"etcd exited; see `pkctl lab logs {m.name}`:\n{engine.tail(m.log)}")
    say(f"{m.name}: started on {etcd_endpoints(plan, rec)[index].removeprefix('http://')}")


def _table(rows: Iterable[tuple[str, ...]]) -> str:
    rows = list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def kill_node(name: str, node_name: str, hard: bool = False, say: Say = print) -> None:
    require_root("kill-node")
    _, plan = load_plan(name)
    node = plan.node(node_name)
    agent = procs.stop(agent_pidfile(node), hard=True)
    if not hard:
        say(f"{node.name}: pk-agent " + ("killed" if agent else "was not running") +
            "; its containers keep running (as when a kubelet dies)")
        return
    n = engine.hard_kill(node) + int(procs.stop(registry.forwarder_pidfile(plan, node), hard=True))
    dropped = net.drop_extra_addresses(node)
    extra = f"; dropped its LoadBalancer address{'es' if len(dropped) > 1 else ''} {', '.join(dropped)}" if dropped else ""
    say(f"{node.name}: killed pk-agent, dockerd and every container ({n + int(agent)} processes){extra}: the node is gone")


def start_node(name: str, node_name: str, say: Say = print) -> None:
    require_root("start-node")
    _, plan = load_plan(name)
    node = plan.node(node_name)
    if not net.netns_exists(node.netns):
        net.create_node(plan, node)
    started = []
    if not procs.alive(engine.dockerd_pidfile(node)):
        engine.start(node, engine.daemon_config(plan))
        engine.wait_ready(node)
        started.append("dockerd")
    if not procs.alive(registry.forwarder_pidfile(plan, node)):
        registry.start_node_forwarder(plan, node)
    if not procs.alive(agent_pidfile(node)):
        start_agent(plan, node)
        started.append("pk-agent")
    say(f"{node.name}: started {' and '.join(started)}" if started else f"{node.name}: already running")


def partition(name: str, node_name: str, cut: bool, say: Say = print) -> None:
    require_root("partition" if cut else "heal")
    _, plan = load_plan(name)
    node = plan.node(node_name)
    net.set_partitioned(plan, node, cut)
    say(f"{node.name}: link cut (partitioned from the lab network)" if cut else f"{node.name}: link restored")


def exec_argv(name: str, node_name: str, cmd: list[str]) -> list[str]:
    _, plan = load_plan(name)
    node = plan.node(node_name)
    if not cmd:
        cmd = [os.environ.get("SHELL", "/bin/sh")]
    env_docker = f"DOCKER_HOST={node.docker_host}"
    return ["nsenter", f"--net={node.netns_path}", "--", "env", env_docker, *cmd]


def follow(path: str, lines: int, say: Callable[[str], None]) -> None:
    """Print the last lines of path, then follow it until interrupted."""
    with open(path, "rb") as f:
        say(engine.tail(path, lines))
        f.seek(0, os.SEEK_END)
        while True:
            chunk = f.readline()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            else:
                time.sleep(0.2)

