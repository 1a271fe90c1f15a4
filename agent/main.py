"""pk-agent: flags -> AgentConfig -> run(config).

run() wires the parts in one TaskGroup on one event loop:

    NodeRegistrar   register the Node, heartbeat (node.py)
    PodManager      watch this node's pods, one PodWorker each (pods/)
    AgentService    logs/exec for pkctl, via the control plane (service.py)
    node services   the service proxy and cluster DNS (services.py)

Stopping the agent (SIGTERM/SIGINT) leaves the pods' containers running, as
a kubelet does: a restarted agent adopts them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from agent import __version__, services
from agent import config as cfgparse
from agent.config import PRESETS, AgentConfig
from agent.hooks import NodeContext, PodHooks
from agent.node import NodeRegistrar
from agent.pods.manager import PodManager
from agent.runtime.base import Runtime
from agent.service import AgentServicer, serve
from pkapi.client.cluster import ClusterClient
from pkapi.client.events import EventRecorder

log = logging.getLogger("pk-agent")


async def _register_when_ready(ctx: NodeContext, registrar: NodeRegistrar) -> None:
    # The Node turns Ready with its first registration/heartbeat: only once
    # the service proxy's first sync is done (NodePort listeners exist).
    await services.wait_ready(ctx)
    await registrar.run()


class UsageError(Exception):
    pass


def _parse_labels(s: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in s.split(","))):
        k, eq, v = part.partition("=")
        if not eq or not k:
            raise UsageError(f'invalid value "{s}" for --labels: "{part}" is not of the form key=value')
        out[k] = v
    return out


def _parse_range(s: str) -> tuple[int, int]:
    a, dash, b = s.partition("-")
    try:
        first, last = int(a), int(b if dash else a)
    except ValueError:
        raise UsageError(f'invalid value "{s}" for --host-port-range: must be FIRST-LAST, e.g. 40000-44999') from None
    if not (1 <= first <= last <= 65535):
        raise UsageError(f'invalid value "{s}" for --host-port-range: must be 1 <= FIRST <= LAST <= 65535')
    return first, last


# Node-service flags whose default comes from an environment variable (the
# way they were set before they were flags; kept for compatibility).
_ENV_FLAGS: dict[str, str] = {
    "proxy_workers": "PK_PROXY_WORKERS",
    "dns_upstreams": "PK_DNS_UPSTREAMS",
    "dns_port": "PK_DNS_PORT",
    "dns_bridge": "PK_DNS_BRIDGE",
    "node_services": "PK_NODE_SERVICES",
}


def _from_flag_or_env(a: argparse.Namespace, dest: str, parse: Callable[[str], Any], default: str) -> Any:
    """The flag's value, else its environment variable's, else default;
    parsed, or a UsageError naming where the bad value came from."""
    env = _ENV_FLAGS[dest]
    flag = "--" + dest.replace("_", "-")
    raw, source = getattr(a, dest), ""
    if raw is None:
        raw, source = os.environ.get(env), f" (from ${env})"
    if raw is None:
        raw = default
    try:
        return parse(raw)
    except ValueError as err:
        raise UsageError(f'invalid value "{raw}" for {flag}{source}: {err}') from None


def parse_args(argv: list[str] | None = None) -> AgentConfig:
    p = argparse.ArgumentParser(prog="pk-agent", description="PocketKube node agent (kubelet)")
    p.add_argument("--server", default="127.0.0.1:6444", help="control plane address host:port, or several "
                   "comma-separated IPv4 HOST:PORT (the agent fails over between them)")
    p.add_argument("--node-name", default=socket.gethostname(), help="this node's name (default: hostname)")
    p.add_argument("--node-ip", default="127.0.0.1", help="address pods' ports are published on")
    p.add_argument("--docker-host", default="unix:///var/run/docker.sock", help="Docker Engine address")
    p.add_argument("--preset", choices=sorted(PRESETS), default="lab", help="timing defaults (lab or kubernetes)")
    p.add_argument("--heartbeat-interval", type=float, default=None, help="seconds between heartbeats")
    p.add_argument("--labels", default="", help="node labels k=v,k2=v2")
    p.add_argument("--data-dir", default="/var/lib/pocketkube/agent")
    p.add_argument("--host-port-range", default="40000-44999", help="host ports for containerPorts")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--agent-port", type=int, default=10250, help="AgentService port on the node IP (0: any free)")
    p.add_argument("--resync-interval", type=float, default=10.0)
    p.add_argument("--max-parallel-teardowns", type=int, default=2, metavar="N",
                   help="container stops/removals of deleted pods in flight at once; more makes mass deletions "
                        "faster and delays new pods' starts (default: 2)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--node-services", action=argparse.BooleanOptionalAction, default=None,
                   help="run the service proxy and cluster DNS on this node (default: on; $PK_NODE_SERVICES=0 "
                        "turns it off)")
    p.add_argument("--proxy-workers", metavar="N", default=None,
                   help=f"processes serving the proxy's ports with SO_REUSEPORT, 1-{cfgparse.MAX_PROXY_WORKERS} "
                        "(default: $PK_PROXY_WORKERS or 1)")
    p.add_argument("--dns-upstreams", metavar="IP[:PORT],...", default=None,
                   help='where cluster DNS forwards other names; "none": never forward (default: '
                        "$PK_DNS_UPSTREAMS, else the nameservers of the host's /etc/resolv.conf)")
    p.add_argument("--dns-port", metavar="PORT", default=None,
                   help="cluster DNS port on the node IP; pods get cluster DNS only on 53 (default: $PK_DNS_PORT "
                        "or 53)")
    p.add_argument("--dns-bridge", metavar="DEV", default=None,
                   help="with a loopback --node-ip: DNS also listens on this bridge's gateway address (e.g. "
                        "docker0), which pods get as nameserver (default: $PK_DNS_BRIDGE or none)")
    p.add_argument("--version", action="version", version=f"pk-agent {__version__}")

    def error(message: str) -> None:  # argparse exits 2; PocketKube's programs exit 1
        raise UsageError(message)

    p.error = error  # type: ignore[method-assign,assignment]
    a = p.parse_args(argv)
    cfg = AgentConfig(
        server=a.server,
        node_name=a.node_name,
        node_ip=a.node_ip,
        docker_host=a.docker_host,
        labels=_parse_labels(a.labels),
        data_dir=a.data_dir,
        host_port_range=_parse_range(a.host_port_range),
        max_pods=a.max_pods,
        agent_port=a.agent_port,
        resync_interval=a.resync_interval,
        log_level=a.log_level,
    )
    if a.node_services is not None:
        a.node_services = "1" if a.node_services else "0"
    cfg.node_services = _from_flag_or_env(a, "node_services", cfgparse.parse_switch, "1")
    cfg.proxy_workers = _from_flag_or_env(a, "proxy_workers", cfgparse.parse_proxy_workers, "1")
    cfg.dns_upstreams = _from_flag_or_env(a, "dns_upstreams", cfgparse.parse_dns_upstreams, "")
    cfg.dns_port = _from_flag_or_env(a, "dns_port", cfgparse.parse_port, "53")
    cfg.dns_bridge = _from_flag_or_env(a, "dns_bridge", cfgparse.parse_bridge, "")
    cfg.apply_preset(a.preset)
    if a.heartbeat_interval is not None:
        if a.heartbeat_interval <= 0:
            raise UsageError(f'invalid value "{a.heartbeat_interval}" for --heartbeat-interval: must be > 0')
        cfg.heartbeat_interval = a.heartbeat_interval
    if a.max_parallel_teardowns < 1:
        raise UsageError(f'invalid value "{a.max_parallel_teardowns}" for --max-parallel-teardowns: must be >= 1')
    cfg.max_parallel_teardowns = a.max_parallel_teardowns
    if cfg.max_pods < 1:
        raise UsageError(f'invalid value "{cfg.max_pods}" for --max-pods: must be >= 1')
    try:
        socket.inet_aton(cfg.node_ip)
    except OSError:
        raise UsageError(f'invalid value "{cfg.node_ip}" for --node-ip: must be an IPv4 address') from None
    return cfg


async def run(config: AgentConfig, runtime: Runtime | None = None, check_port_bind: bool = True) -> None:
    """Run the agent until cancelled. `runtime` defaults to a DockerRuntime on
    config.docker_host (hollow agents pass a FakeRuntime)."""
    if runtime is None:
        from agent.runtime.docker_runtime import DockerRuntime

        runtime = DockerRuntime(config.docker_host)
    try:
        os.makedirs(config.data_dir, exist_ok=True)
    except OSError as err:  # nothing essential lives there yet: warn, go on
        log.warning("cannot create --data-dir %s: %s", config.data_dir, err)
    client = ClusterClient(config.server, timeout=30.0)
    hooks = PodHooks()
    recorder = EventRecorder(client, "kubelet", host=config.node_name)
    pods = PodManager(config, client, runtime, hooks, recorder, check_port_bind=check_port_bind)
    server, port = await serve(f"{config.node_ip}:{config.agent_port}", AgentServicer(config.node_name, runtime, pods))
    log.info("pk-agent %s: node %s (%s), AgentService on %s:%d, engine %s", __version__, config.node_name,
             config.node_ip, config.node_ip, port, config.docker_host)
    registrar = NodeRegistrar(config, client, runtime, port)
    ctx = NodeContext(config, client, runtime, hooks)
    try:
        async with asyncio.TaskGroup() as tg:
            extras = services.node_services(ctx)
            tg.create_task(_register_when_ready(ctx, registrar), name="node-heartbeat")
            tg.create_task(pods.run(), name="pods")
            for coro in extras:
                tg.create_task(coro)
    finally:
        # The events of the last moments (the recorder lingers 50 ms for
        # company) are written before the client closes, if the API answers.
        try:
            async with asyncio.timeout(2.0):
                await recorder.flush()
        except Exception as err:  # noqa: BLE001 - best effort, as events are
            log.info("events not written at shutdown: %s", err)
        await server.stop(1.0)
        await client.close()
        await runtime.close()


def main(argv: list[str] | None = None) -> None:
    try:
        config = parse_args(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper()),
        format=f"%(asctime)s %(levelname)s {config.node_name} %(name)s: %(message)s",
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def _main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        # Docker SDK calls run in threads; the default pool (cores + 4) is too
        # small for many pods starting at once.
        from concurrent.futures import ThreadPoolExecutor

        loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="docker"))
        try:
            await run(config)
        except asyncio.CancelledError:
            log.info("stopping (containers keep running)")

    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
