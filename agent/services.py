"""The node services of pk-agent: the service proxy (agent/proxy) and
cluster DNS (agent/dns), wired to the agent's NodeContext. (Not to be
confused with service.py, the AgentService gRPC server for logs and exec.)

    agent.main.run ──node_services(ctx)──▶ [proxy, dns] coroutines
        │                                   │ one shared Service/Endpoints
        │                                   │ informer pair (watch.shared)
        │   proxy: first sync ──set──▶ ctx.proxy_synced
        │   dns: listening ──▶ ctx.hooks.nameserver, cluster_dns
        │   at once: ctx.hooks.env_providers += <SVC>_SERVICE_HOST/_PORT
        └──wait_ready(ctx)──▶ NodeRegistrar.run (the Node turns Ready)

node_services(ctx) returns the coroutines the agent runs in its TaskGroup:
  - the proxy (run_proxy) for ctx.config.node_name / node_ip;
  - cluster DNS on the node IP, port 53 (--dns-port overrides). When the
    node IP is a loopback address (several agents on one machine, as in the
    integration tests) a container cannot reach it — its own loopback is a
    different one. With --dns-bridge=docker0, DNS then also listens on that
    bridge's gateway address (shared with SO_REUSEPORT by the agents of one
    test cluster) and pods get it as their nameserver. Opt-in, because the
    agents of two unrelated clusters on one machine would share it; without
    it such pods keep the engine's default resolver;
  - once DNS listens: ctx.hooks.nameserver is where pods reach it and
    ctx.hooks.cluster_dns = True (ClusterFirst pods then get it and the
    search path);
  - a provider of the Kubernetes service environment variables, added to
    ctx.hooks.env_providers.
A node without node services (--no-node-services, hollow agents) sets
ctx.proxy_synced at once.

wait_ready(ctx) returns once the proxy has done its first sync (its
NodePort/ClusterIP listeners exist: ctx.proxy_synced), or after READY_TIMEOUT: agent.main
registers the Node (and so lets it turn Ready) only then, so a client that
waits for a (re)started node to be Ready is not refused by its NodePort.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Coroutine
from typing import Any

from agent.dns.resolve import service_env
from agent.dns.server import ClusterDNS, resolv_conf_upstreams, run_dns
from agent.hooks import NodeContext
from agent.proxy.proxier import run_proxy
from agent.proxy.watch import shared

log = logging.getLogger(__name__)

READY_TIMEOUT = 10.0


async def wait_ready(ctx: NodeContext, timeout: float = READY_TIMEOUT) -> None:
    """Return once this node's proxy finished its first sync (at once if
    the node runs no proxy); after `timeout` return anyway, with a warning
    (the control plane may be unreachable: registering must not wait for
    ever)."""
    try:
        await asyncio.wait_for(ctx.proxy_synced.wait(), timeout)
    except TimeoutError:
        log.warning("service proxy not synced after %.0fs; registering the node anyway", timeout)


async def _bridge_gateway(dev: str = "docker0") -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", "-o", "-4", "addr", "show", "dev", dev,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return ""
    out, _ = await proc.communicate()
    for line in out.decode().splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return ""


def node_services(ctx: NodeContext) -> list[Coroutine[Any, Any, None]]:
    cfg = ctx.config
    # Hollow agents (FakeRuntime, many per process) run no node services;
    # --no-node-services turns them off explicitly.
    if not cfg.node_services or type(ctx.runtime).__name__ == "FakeRuntime":
        ctx.proxy_synced.set()  # no proxy to wait for
        return []
    watch = shared(ctx.client)

    def env(pod: Any) -> dict[str, str]:
        ns = pod.metadata.namespace or "default"
        return service_env(watch.services.list(ns), ns)

    ctx.hooks.env_providers.append(env)

    async def dns() -> None:
        port = cfg.dns_port
        listen = [cfg.node_ip]
        nameserver = cfg.node_ip
        try:
            loopback = ipaddress.ip_address(cfg.node_ip).is_loopback
        except ValueError:
            loopback = False
        bridge = cfg.dns_bridge
        if loopback and bridge:
            gw = await _bridge_gateway(bridge)
            if gw:
                listen.append(gw)
                nameserver = gw
        started: asyncio.Future[ClusterDNS] = asyncio.get_running_loop().create_future()

        def on_started(_f: Any) -> None:
            if not started.cancelled() and started.exception() is None:
                ctx.hooks.nameserver = nameserver
                ctx.hooks.cluster_dns = port == 53
                log.info("cluster DNS on %s port %d", ",".join(listen), port)

        started.add_done_callback(on_started)
        try:
            # [] (never forward) must reach run_dns as such; None = resolv.conf.
            upstreams = cfg.dns_upstreams if cfg.dns_upstreams is not None else resolv_conf_upstreams()
            await run_dns(ctx.client, listen, port, upstreams=upstreams, watch=watch, started=started)
        except OSError as err:
            # No DNS is not a reason to stop the node; pods keep the
            # engine's default resolver.
            log.error("cluster DNS cannot listen on %s port %d: %s", listen, port, err)
            await asyncio.Event().wait()

    proxy = run_proxy(ctx.client, cfg.node_name, cfg.node_ip, watch=watch, synced=ctx.proxy_synced,
                      workers=cfg.proxy_workers)
    return [_guard("proxy", proxy), _guard("dns", dns())]


async def _guard(what: str, coro: Coroutine[Any, Any, None]) -> None:
    """A failure of a node service is logged, never fatal to the agent (its
    pods keep running) (it is not restarted: a bug, reported in the log)."""
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001
        log.exception("node service %s failed; not restarted", what)
        await asyncio.Event().wait()
