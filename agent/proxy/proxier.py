"""The node's service proxy: keeps listeners and addresses in line with the
cluster's Services and Endpoints.

    Services, Endpoints informers ──events──▶ dirty flag ──▶ sync task
         (shared with cluster DNS)                          │
                        table.compute(...)  (pure)  ◀───────┘
                                │ desired listeners / ClusterIPs / LB IPs
                                ▼
            ip addr add/del (lo, LB interface) + gratuitous ARP
            bind / update balancer in place / close listeners

Guarantees:
- Changes are applied within ~50 ms of the informer seeing them (events are
  coalesced for SYNC_DELAY), well inside a second.
- A listener is bound once its Service port has a ready endpoint, and
  closed only when its (address, port, protocol) is no longer wanted: a
  Service or Endpoints update never closes and rebinds an unchanged one
  (the kernel would refuse in between). When endpoints drop to none the
  listener keeps its last backends for EMPTY_HOLD = 0.5 s (a momentary
  empty Endpoints costs nothing); then a TCP listener stays bound and
  resets each connection at once, a UDP one is closed (ICMP port
  unreachable). A port that never had an endpoint has no listener: the
  kernel refuses at once. Never a hang.
- An endpoint change swaps the backend list inside the live Balancer; open
  connections are untouched and the listening socket is not rebound.
- One sync decides on one snapshot: the caches and the clock are read
  together before the (slow) address step.
- Bind failures (address not there yet, port taken) are retried every
  RETRY seconds until they succeed or the listener is no longer wanted.
- ClusterIPs are put on `lo` for every Service with one (even without
  endpoints), so that Service traffic never follows a default route off the
  machine; every CHECK_ADDRESSES seconds they are verified and re-added if
  something removed them. On a clean stop the LoadBalancer addresses are
  released, and the ClusterIPs removed by the last proxy of the cluster in
  this network namespace (a shared flock counts them: sharelock.py).

Concurrency: handlers only set a flag; one sync task does all the work, so
listeners and addresses are changed by one coroutine at a time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from agent.proxy import addresses, procs, table
from agent.proxy.balancer import Balancer
from agent.proxy.sharelock import ShareLock, collect_dead_clusters
from agent.proxy.tcp import CONNECT_TIMEOUT, serve_tcp
from agent.proxy.udp import serve_udp
from agent.proxy.watch import ServiceWatch, shared

log = logging.getLogger(__name__)

SYNC_DELAY = 0.05
RETRY = 1.0
CHECK_ADDRESSES = 5.0
EMPTY_HOLD = 0.5


@dataclass
class _Listener:
    spec: table.ListenSpec
    balancer: Balancer
    server: Any = None  # asyncio Server (TCP) or DatagramTransport (UDP)
    empty_since: float | None = None  # when its endpoints went to none


class Proxier:
    def __init__(
        self,
        watch: ServiceWatch,
        node_name: str,
        node_ip: str,
        connect_timeout: float = CONNECT_TIMEOUT,
        manage_addresses: bool | None = None,
        affinity: bool = True,
        cluster_tag: str = "",
        synced: asyncio.Event | None = None,
    ) -> None:
        self.svc_label_suffix = addresses.SVC_LABEL_PREFIX + cluster_tag
        self.lb_label_suffix = addresses.LB_LABEL_PREFIX + cluster_tag
        self.watch = watch
        # False in extra worker processes: they leave Services with ClientIP
        # affinity to the main process (see worker.py).
        self.affinity = affinity
        self.node_name = node_name
        self.node_ip = node_ip
        self.connect_timeout = connect_timeout
        self.manage_addresses = addresses.can_manage() if manage_addresses is None else manage_addresses
        self.listeners: dict[table.ListenKey, _Listener] = {}
        self.cluster_ips: set[str] = set()
        self.lb_ips: set[str] = set()
        self.lb_dev = ""
        self._dirty = asyncio.Event()
        self._verify = False
        # Set after the first sync (its listeners exist); the agent passes
        # its NodeContext.proxy_synced to register the Node only then.
        self.synced = synced if synced is not None else asyncio.Event()
        self.syncs = 0
        for inf in (watch.services, watch.endpoints):
            inf.add_handler(on_add=self._touch, on_update=self._touch2, on_delete=self._touch)

    def _touch(self, _obj: Any) -> None:
        self._dirty.set()

    def _touch2(self, _old: Any, _new: Any) -> None:
        self._dirty.set()

    async def run(self) -> None:
        await self.watch.wait_synced(None)
        lock = None
        if self.manage_addresses:
            lock = ShareLock(self.svc_label_suffix)
            self.lb_dev = await addresses.device_of(self.node_ip)
            await collect_dead_clusters(self.svc_label_suffix, self.lb_dev)
            # Addresses left by an earlier run of this agent are adopted and
            # reconciled by the first sync.
            self.cluster_ips = await addresses.labelled(addresses.label_for("lo", self.svc_label_suffix))
            lb_label = addresses.label_for(self.lb_dev, self.lb_label_suffix)
            self.lb_ips = await addresses.labelled(lb_label) if lb_label else set()
        self._dirty.set()
        loop = asyncio.get_running_loop()
        check = loop.call_later(CHECK_ADDRESSES, self._check_addresses)
        try:
            while True:
                await self._dirty.wait()
                await asyncio.sleep(SYNC_DELAY)  # coalesce a burst of events
                self._dirty.clear()
                try:
                    incomplete = await self.sync()
                except Exception:  # noqa: BLE001 - keep proxying with what we have
                    log.exception("proxy sync failed")
                    incomplete = True
                if incomplete:
                    loop.call_later(RETRY, self._dirty.set)
        finally:
            check.cancel()
            for lst in self.listeners.values():
                _close(lst)
            self.listeners.clear()
            if lock is not None:
                await self._release_addresses(lock)

    def _check_addresses(self) -> None:
        # Someone else may have removed "our" addresses (an agent of this
        # cluster on the same machine that stopped): the next sync re-adds.
        self._verify = True
        self._dirty.set()
        asyncio.get_running_loop().call_later(CHECK_ADDRESSES, self._check_addresses)

    async def _release_addresses(self, lock: ShareLock) -> None:
        """On a clean stop: give up the LoadBalancer addresses this node
        holds, and remove the ClusterIPs from lo if no other agent of this
        cluster in this network namespace still uses them (the shared lock
        says so). A killed agent leaves them; the next one adopts them."""
        try:
            dev = self.lb_dev or "lo"
            for ip in sorted(self.lb_ips):
                await addresses.delete(ip, dev)
            if lock.last_one():
                for ip in sorted(self.cluster_ips):
                    await addresses.delete(ip, "lo")
                lock.remove_file()
        except Exception:  # noqa: BLE001 - best effort at exit
            log.exception("removing the proxy's addresses")
        finally:
            lock.close()

    async def sync(self) -> bool:
        """Apply the desired state once; True if something must be retried."""
        # The clock is read together with the snapshot of the caches: every
        # decision below is about that snapshot, however long the address
        # step takes (ip + gratuitous ARP: ~0.4 s under load). Reading it
        # after that step judged an Endpoints blip that had already ended to
        # have lasted past EMPTY_HOLD.
        now = asyncio.get_running_loop().time()
        eps = {(e.metadata.namespace, e.metadata.name): e for e in self.watch.endpoints.list()}
        want = table.compute(self.watch.services.list(), eps, self.node_name, self.node_ip)
        if not self.affinity:
            want.listeners = {k: v for k, v in want.listeners.items() if v.affinity_timeout is None}
        incomplete = False
        if self.manage_addresses:
            incomplete |= await self._sync_addresses(want)
        # A listener is closed only when its (address, port, protocol) is no
        # longer wanted. A Service port whose endpoints drop to none keeps
        # its last backends for EMPTY_HOLD seconds (a blip of the Endpoints
        # costs nothing); after that a TCP listener stays bound with no
        # backend, so each connection is reset at once, and is never closed
        # and bound again (which would leave a moment where the kernel
        # refuses). A UDP listener is closed then: a bound socket with no
        # backend would swallow datagrams, while with nothing bound the
        # kernel answers ICMP port unreachable.
        loop = asyncio.get_running_loop()
        for key in list(self.listeners):
            spec = want.listeners.get(key)
            held = self.listeners[key]
            if spec is None:
                log.debug("proxy: %s:%s/%s no longer wanted: closed", *key)
                _close(self.listeners.pop(key))
            elif not spec.backends:
                if held.empty_since is None:
                    log.info("proxy: %s:%s/%s (%s): no ready endpoints; keeping the last ones for %.1fs",
                             *key, spec.service, EMPTY_HOLD)
                    held.empty_since = now
                    loop.call_later(EMPTY_HOLD, self._dirty.set)
                elif now - held.empty_since >= EMPTY_HOLD and held.balancer:
                    log.info("proxy: %s:%s/%s (%s): still no ready endpoints: connections now fail at once",
                             *key, spec.service)
                    if key[2] == "TCP":
                        held.spec = spec
                        held.balancer.update((), spec.affinity_timeout)
                    else:
                        _close(self.listeners.pop(key))
        for key, spec in want.listeners.items():
            if not spec.backends:
                continue
            lst = self.listeners.get(key)
            if lst is not None:
                lst.empty_since = None
                lst.spec = spec
                lst.balancer.update(spec.backends, spec.affinity_timeout)
                continue
            bal = Balancer(spec.backends, spec.affinity_timeout)
            ip, port, proto = key
            try:
                if proto == "TCP":
                    server = await serve_tcp(ip, port, bal, self.connect_timeout)
                else:
                    server = await serve_udp(ip, port, bal)
            except OSError as err:
                log.warning("cannot listen on %s:%s/%s for %s: %s", ip, port, proto, spec.service, err)
                incomplete = True
                continue
            self.listeners[key] = _Listener(spec, bal, server)
            log.debug("proxy: listening on %s:%s/%s for %s", ip, port, proto, spec.service)
        self.syncs += 1
        self.synced.set()
        return incomplete

    async def _sync_addresses(self, want: table.Desired) -> bool:
        bad = False
        label = addresses.label_for("lo", self.svc_label_suffix)
        if self._verify and label:
            self._verify = False
            self.cluster_ips &= await addresses.labelled(label)
        for ip in sorted(want.cluster_ips - self.cluster_ips):
            if await addresses.add(ip, "lo", label):
                self.cluster_ips.add(ip)
            else:
                bad = True
        for ip in sorted(self.cluster_ips - want.cluster_ips):
            await addresses.delete(ip, "lo")
            self.cluster_ips.discard(ip)
        dev = self.lb_dev or "lo"
        lb_label = addresses.label_for(dev, self.lb_label_suffix)
        for ip in sorted(want.lb_ips - self.lb_ips):
            if await addresses.add(ip, dev, lb_label):
                self.lb_ips.add(ip)
                await addresses.gratuitous_arp(dev, ip)
                log.info("now holding LoadBalancer address %s on %s", ip, dev)
            else:
                bad = True
        for ip in sorted(self.lb_ips - want.lb_ips):
            # Close the listeners first: nothing may stay bound to an
            # address we give away.
            for key in [k for k in self.listeners if k[0] == ip]:
                _close(self.listeners.pop(key))
            await addresses.delete(ip, dev)
            self.lb_ips.discard(ip)
            log.info("released LoadBalancer address %s", ip)
        return bad


def _close(lst: _Listener) -> None:
    if lst.server is not None:
        lst.server.close()
        lst.server = None


async def remove_addresses(control_plane_address: str, node_ip: str = "") -> None:
    """Remove every address the proxies of this cluster (named by its
    control plane's address) put on this machine: ClusterIPs on lo and
    LoadBalancer addresses. For tests and the teardown of a whole lab; not
    done on a normal agent exit, since other agents of the cluster on the
    same machine may still be serving those ClusterIPs."""
    tag = addresses.cluster_tag(control_plane_address)
    for ip in await addresses.labelled(addresses.label_for("lo", addresses.SVC_LABEL_PREFIX + tag)):
        await addresses.delete(ip, "lo")
    devs = {"lo"} | ({await addresses.device_of(node_ip)} if node_ip else set())
    for dev in devs:
        label = addresses.label_for(dev, addresses.LB_LABEL_PREFIX + tag)
        if label:
            for ip in await addresses.labelled(label):
                await addresses.delete(ip, dev)


async def run_proxy(
    client: Any,
    node_name: str,
    node_ip: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    manage_addresses: bool | None = None,
    watch: ServiceWatch | None = None,
    synced: asyncio.Event | None = None,
    workers: int = 1,
) -> None:
    """The agent's entry point: run this node's proxy until cancelled.
    `synced`, if given, is set once the first sync is done. `workers`
    (pk-agent --proxy-workers) > 1 adds worker processes that share the
    listening ports (procs.py, worker.py)."""
    w = watch or shared(client)
    proxier = Proxier(w, node_name, node_ip, connect_timeout, manage_addresses,
                      cluster_tag=addresses.cluster_tag(str(getattr(client, "address", ""))), synced=synced)
    children = []
    if workers > 1:
        children = procs.spawn(client.address, node_name, node_ip, workers - 1)
        log.info("proxy: %d worker processes share the ports (SO_REUSEPORT)", workers)
    try:
        await proxier.run()
    finally:
        if children:
            await asyncio.to_thread(procs.stop, children)
