"""ServiceAllocator: ClusterIPs, NodePorts and LoadBalancer addresses.

The API server calls it synchronously on the Service write path, before the
object is stored: on_create / on_update fill in (or refuse) the allocated
values on the Service they are given, on_delete releases them.

Persistence and concurrency: every allocated value is one etcd key

    /registry/allocations/clusterips/<ip>
    /registry/allocations/nodeports/<port>
    /registry/allocations/lbips/<ip>

whose value names the owning Service ("namespace/name") and when it was
taken. A key is taken with the Store's create (a compare-and-swap on "does
not exist"), so two control planes on one etcd can never hand out one value
twice; whoever loses the race gets KeyExistsError and picks again (automatic
values) or reports "provided ... is already allocated" (requested values).

Release: on_delete deletes the Service's keys at once. on_update does NOT
delete the keys of values the new spec gives up, because the update may
still fail (a Conflict) and the stored Service would then still use them.
Instead such a key is reclaimable: before refusing a requested value, and in
repair(), a key is checked against the stored owner Service; when the owner
is gone or no longer uses the value (and the key is older than
UNCONFIRMED_GRACE, so that a value allocated for a write still in flight is
never stolen) it is taken over with a CAS update. The same rule cleans up
after a create whose write failed after allocation.

Dry run: every check is made, nothing is written; automatic values are
chosen from what is free now (as Kubernetes' dry-run allocator does).

Kubernetes' wording is used for every refusal, e.g.
  spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is already allocated
  spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from controlplane.config import ControlPlaneConfig
from controlplane.store.base import ConflictError, KeyExistsError, KeyNotFoundError, Store
from pkapi import errors, meta
from pkapi.v1 import api_pb2, core_pb2

log = logging.getLogger(__name__)

Service = core_pb2.Service

PREFIX = "/registry/allocations/"
CLUSTER_IPS = PREFIX + "clusterips/"
NODE_PORTS = PREFIX + "nodeports/"
LB_IPS = PREFIX + "lbips/"

# A key younger than this whose owner does not (yet) use the value may belong
# to a write still in flight: never reclaim it.
UNCONFIRMED_GRACE = 60.0

NEEDS_NODE_PORTS = ("NodePort", "LoadBalancer")
HEADLESS = "None"
TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


# ------------------------------------------------------------ pure helpers


def is_dns1123_subdomain(name: str) -> bool:
    """Pure. RFC 1123 subdomain as Kubernetes validates externalName (a
    trailing dot, i.e. a fully qualified name, is accepted as Kubernetes does)."""
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 253:
        return False
    return all(_DNS1123_LABEL.match(label) and len(label) <= 63 for label in name.split("."))


def parse_pool(spec: str) -> list[str]:
    """Pure. The LoadBalancer pool: "" (none), a CIDR ("192.168.50.240/29":
    its usable host addresses; a /32 is its one address) or "first-last"
    ("192.168.50.240-192.168.50.250"); several separated by commas."""
    out: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "-" in part:
            first_s, _, last_s = part.partition("-")
            first, last = ipaddress.ip_address(first_s.strip()), ipaddress.ip_address(last_s.strip())
            if int(last) < int(first):
                raise ValueError(f"empty LoadBalancer pool range {part}")
            out.extend(str(ipaddress.ip_address(i)) for i in range(int(first), int(last) + 1))
        else:
            net = ipaddress.ip_network(part, strict=False)
            hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
            out.extend(str(h) for h in hosts)
    return out


def go_string_slice(values: list[str]) -> str:
    """Go's %#v of a []string, as Kubernetes prints spec.clusterIPs."""
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def svc_type(svc: Service) -> str:
    return svc.spec.type or "ClusterIP"


def requested_cluster_ip(svc: Service) -> str:
    if svc.spec.cluster_ip:
        return svc.spec.cluster_ip
    if svc.spec.cluster_ips:
        return svc.spec.cluster_ips[0]
    return ""


def uses(svc: Service, kind: str, value: str) -> bool:
    """Pure. Does the (stored) Service hold this allocated value?"""
    if kind == "clusterips":
        return svc_type(svc) != "ExternalName" and requested_cluster_ip(svc) == value
    if kind == "nodeports":
        return svc_type(svc) in NEEDS_NODE_PORTS and any(str(p.node_port) == value for p in svc.spec.ports)
    if kind == "lbips":
        return svc_type(svc) == "LoadBalancer" and any(i.ip == value for i in svc.status.load_balancer.ingress)
    return False


def decode_stored_service(data: bytes) -> Service | None:
    """The Service stored by the API server: a serialized core_pb2.Service or
    an api_pb2.Object wrapping one (either layout is accepted so that this
    module does not depend on that choice)."""
    try:
        obj = api_pb2.Object.FromString(data)
        if obj.WhichOneof("kind") == "service" and obj.service.metadata.name:
            return obj.service
    except Exception:  # noqa: BLE001 - not an Object: try the bare message
        pass
    try:
        svc = Service.FromString(data)
        if svc.metadata.name:
            return svc
    except Exception:  # noqa: BLE001
        return None
    return None


@dataclass
class _Plan:
    """What one create/update wants to take (new keys) and gives up."""

    take: list[tuple[str, str]] = field(default_factory=list)  # (kind, value) taken by this call
    causes: list[str] = field(default_factory=list)


# -------------------------------------------------------------- allocator


class ServiceAllocator:
    def __init__(self, store: Store, config: ControlPlaneConfig) -> None:
        self.store = store
        self.config = config
        self.net = ipaddress.ip_network(config.service_cidr, strict=False)
        self.port_lo, self.port_hi = config.service_node_port_range
        self.pool = parse_pool(config.lb_pool)
        self._pool_set = set(self.pool)
        self._rng = random.Random()

    # ------------------------------------------------------------ public

    async def on_create(self, svc: Service, dry_run: bool) -> None:
        await self._allocate(None, svc, dry_run)

    async def on_update(self, old: Service, new: Service, dry_run: bool) -> None:
        await self._allocate(old, new, dry_run)

    async def on_delete(self, svc: Service) -> None:
        owner = meta.ns_name(svc)
        for kind, value in self._held(svc):
            await self._release(kind, value, owner)

    async def repair(self) -> int:
        """Delete every allocation key whose owner is gone or no longer uses
        it (and that is older than the grace). Returns how many were freed.
        Safe to run from any control plane at any time."""
        kvs, _ = await self.store.list(PREFIX)
        freed = 0
        for kv in kvs:
            kind, _, value = kv.key[len(PREFIX):].partition("/")
            if await self._reclaimable(kind, value, kv.value):
                try:
                    await self.store.delete(kv.key, expected_revision=kv.mod_revision)
                    freed += 1
                except (ConflictError, KeyNotFoundError):
                    pass
        return freed

    # ------------------------------------------------------------ core

    def _held(self, svc: Service) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        t = svc_type(svc)
        ip = requested_cluster_ip(svc)
        if t != "ExternalName" and ip and ip != HEADLESS:
            out.append(("clusterips", ip))
        if t in NEEDS_NODE_PORTS:
            for p in svc.spec.ports:
                if p.node_port and ("nodeports", str(p.node_port)) not in out:
                    out.append(("nodeports", str(p.node_port)))
        if t == "LoadBalancer":
            for ing in svc.status.load_balancer.ingress:
                if ing.ip:
                    out.append(("lbips", ing.ip))
        return out

    async def _allocate(self, old: Service | None, svc: Service, dry_run: bool) -> None:
        owner = meta.ns_name(svc)
        t = svc_type(svc)
        plan = _Plan()
        old_held = set(self._held(old)) if old is not None else set()
        try:
            if t == "ExternalName":
                self._external_name(old, svc, plan)
            else:
                await self._cluster_ip(old, svc, plan, owner, dry_run, old_held)
            if t in NEEDS_NODE_PORTS:
                await self._node_ports(old, svc, plan, owner, dry_run, old_held)
            else:
                self._no_node_ports(old, svc, plan)
            if plan.causes:
                raise errors.invalid("Service", svc.metadata.name, plan.causes)
            # The LB address last: a pool that is exhausted is not an error
            # (the Service stays <pending>), so it never rolls back the rest.
            if t == "LoadBalancer":
                await self._lb_ip(old, svc, plan, owner, dry_run, old_held)
            else:
                svc.status.load_balancer.Clear()
        except BaseException:
            if not dry_run:
                for kind, value in plan.take:
                    await self._release(kind, value, owner)
            raise

    def _external_name(self, old: Service | None, svc: Service, plan: _Plan) -> None:
        name = svc.spec.external_name
        if not name:
            plan.causes.append(errors.field_required("spec.externalName"))
        elif not is_dns1123_subdomain(name):
            plan.causes.append(errors.field_invalid("spec.externalName", name, DNS1123_SUBDOMAIN_MSG))
        ip = requested_cluster_ip(svc)
        old_ip = requested_cluster_ip(old) if old is not None else ""
        if ip and ip != old_ip:
            plan.causes.append(
                errors.field_forbidden("spec.clusterIPs", "may not be set for ExternalName services")
            )
        # Kubernetes drops the cluster IPs of a Service turned ExternalName.
        svc.spec.cluster_ip = ""
        del svc.spec.cluster_ips[:]

    async def _cluster_ip(
        self, old: Service | None, svc: Service, plan: _Plan, owner: str, dry_run: bool,
        old_held: set[tuple[str, str]],
    ) -> None:
        want = requested_cluster_ip(svc)
        old_ip = ""
        if old is not None and svc_type(old) != "ExternalName":
            old_ip = requested_cluster_ip(old)
        if old_ip:
            # Immutable once set; an update that omits it keeps it (apply of
            # a manifest without clusterIP).
            if want and want != old_ip:
                plan.causes.append(errors.field_invalid("spec.clusterIPs[0]", want, "may not change once set"))
                return
            self._set_cluster_ip(svc, old_ip)
            return
        if want == HEADLESS:
            if svc_type(svc) in NEEDS_NODE_PORTS:
                plan.causes.append(
                    errors.field_invalid(
                        "spec.clusterIPs[0]", HEADLESS, f"may not be set to 'None' for {svc_type(svc)} services"
                    )
                )
                return
            self._set_cluster_ip(svc, HEADLESS)
            return
        if want:
            path_msg = f"spec.clusterIPs: Invalid value: {go_string_slice([want])}: "
            try:
                addr = ipaddress.ip_address(want)
            except ValueError:
                plan.causes.append(
                    errors.field_invalid(
                        "spec.clusterIPs[0]", want, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    )
                )
                return
            if addr not in self.net or addr in (self.net.network_address, self.net.broadcast_address):
                plan.causes.append(
                    path_msg + f"failed to allocate IP {want}: the provided IP ({want}) is not in the valid range. "
                    f"The range of valid IPs is {self.net}"
                )
                return
            if await self._take("clusterips", want, owner, dry_run, plan):
                self._set_cluster_ip(svc, want)
            else:
                plan.causes.append(path_msg + f"failed to allocate IP {want}: provided IP is already allocated")
            return
        ip = await self._take_any_ip(owner, dry_run, plan)
        if ip is None:
            raise errors.ApiError("InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")
        self._set_cluster_ip(svc, ip)

    @staticmethod
    def _set_cluster_ip(svc: Service, ip: str) -> None:
        svc.spec.cluster_ip = ip
        del svc.spec.cluster_ips[:]
        svc.spec.cluster_ips.append(ip)

    def _no_node_ports(self, old: Service | None, svc: Service, plan: _Plan) -> None:
        old_ports = {p.node_port for p in old.spec.ports} if old is not None else set()
        for i, p in enumerate(svc.spec.ports):
            if not p.node_port:
                continue
            if p.node_port in old_ports and old is not None and svc_type(old) in NEEDS_NODE_PORTS:
                # Type changed away from NodePort: drop the ports it kept
                # (Kubernetes clears them for the user).
                p.node_port = 0
            else:
                plan.causes.append(
                    errors.field_forbidden(
                        f"spec.ports[{i}].nodePort", f"may not be used when `type` is '{svc_type(svc)}'"
                    )
                )

    async def _node_ports(
        self, old: Service | None, svc: Service, plan: _Plan, owner: str, dry_run: bool,
        old_held: set[tuple[str, str]],
    ) -> None:
        old_by_key: dict[tuple[str, int], int] = {}
        if old is not None and svc_type(old) in NEEDS_NODE_PORTS:
            for p in old.spec.ports:
                if p.node_port:
                    old_by_key[(p.name, p.port)] = p.node_port
                    old_by_key.setdefault((p.name, -1), p.node_port)
        used_here: dict[int, str] = {}
        for i, p in enumerate(svc.spec.ports):
            path = f"spec.ports[{i}].nodePort"
            if not p.node_port:
                # An update that omits a nodePort keeps the old one.
                keep = old_by_key.get((p.name, p.port)) or old_by_key.get((p.name, -1))
                if keep and keep not in used_here:
                    p.node_port = keep
            if p.node_port:
                n = p.node_port
                proto = p.protocol or "TCP"
                if n in used_here:
                    if used_here[n] == proto:
                        plan.causes.append(errors.field_duplicate(path, n))
                    continue  # one port number for TCP and UDP of one Service
                if ("nodeports", str(n)) in old_held:
                    used_here[n] = proto
                    continue
                if not self.port_lo <= n <= self.port_hi:
                    plan.causes.append(
                        errors.field_invalid(
                            path, n,
                            "provided port is not in the valid range. "
                            f"The range of valid ports is {self.port_lo}-{self.port_hi}",
                        )
                    )
                    continue
                if not await self._take("nodeports", str(n), owner, dry_run, plan):
                    plan.causes.append(errors.field_invalid(path, n, "provided port is already allocated"))
                    continue
                used_here[n] = proto
        # Automatic ones after the requested ones, so they never take a
        # port another entry of this Service asked for.
        for p in svc.spec.ports:
            if p.node_port:
                continue
            port = await self._take_any_port(owner, dry_run, plan, set(used_here))
            if port is None:
                raise errors.ApiError(
                    "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full"
                )
            p.node_port = port
            used_here[port] = p.protocol or "TCP"

    async def _lb_ip(
        self, old: Service | None, svc: Service, plan: _Plan, owner: str, dry_run: bool,
        old_held: set[tuple[str, str]],
    ) -> None:
        if old is not None and svc_type(old) == "LoadBalancer":
            kept = [i.ip for i in old.status.load_balancer.ingress if i.ip]
            if kept and (not svc.spec.load_balancer_ip or svc.spec.load_balancer_ip in kept):
                svc.status.load_balancer.Clear()
                for ip in kept:
                    svc.status.load_balancer.ingress.add(ip=ip)
                return
        svc.status.load_balancer.Clear()
        want = svc.spec.load_balancer_ip
        if want:
            # A requested address outside the pool or taken: stays pending,
            # as with a cloud that cannot provide it.
            if want in self._pool_set and (
                ("lbips", want) in old_held or await self._take("lbips", want, owner, dry_run, plan)
            ):
                svc.status.load_balancer.ingress.add(ip=want)
            return
        if not self.pool:
            return
        kvs, _ = await self.store.list(LB_IPS)
        taken = {kv.key[len(LB_IPS):] for kv in kvs}
        for ip in self.pool:
            if ip not in taken and await self._take("lbips", ip, owner, dry_run, plan):
                svc.status.load_balancer.ingress.add(ip=ip)
                return
        for kv in kvs:  # exhausted: try the stale ones
            ip = kv.key[len(LB_IPS):]
            if ip in self._pool_set and await self._take("lbips", ip, owner, dry_run, plan):
                svc.status.load_balancer.ingress.add(ip=ip)
                return
        log.info("LoadBalancer pool exhausted: %s stays pending", owner)

    async def retry_pending_lb(self, svc: Service) -> bool:
        """Try again to give a LoadBalancer Service without an address one
        from the pool (the LB controller's periodic pass may call this
        through an update). True if it now has one."""
        if svc_type(svc) != "LoadBalancer" or svc.status.load_balancer.ingress:
            return bool(svc.status.load_balancer.ingress)
        await self._lb_ip(None, svc, _Plan(), meta.ns_name(svc), False, set())
        return bool(svc.status.load_balancer.ingress)

    # ------------------------------------------------------------ keys

    @staticmethod
    def _record(owner: str) -> bytes:
        return json.dumps({"owner": owner, "at": time.time()}).encode()

    async def _take(self, kind: str, value: str, owner: str, dry_run: bool, plan: _Plan) -> bool:
        """Take one specific value: True if it is now ours (or, in dry run,
        would be)."""
        key = f"{PREFIX}{kind}/{value}"
        kv = await self.store.get(key)
        if kv is None:
            if dry_run:
                return True
            try:
                await self.store.create(key, self._record(owner))
            except KeyExistsError:
                return False
            plan.take.append((kind, value))
            return True
        rec = _parse_record(kv.value)
        if rec.get("owner") == owner:
            # Ours already (a retried create, or kept across an update).
            return True
        if not await self._reclaimable(kind, value, kv.value):
            return False
        if dry_run:
            return True
        try:
            await self.store.update(key, self._record(owner), expected_revision=kv.mod_revision)
        except (ConflictError, KeyNotFoundError):
            return False
        plan.take.append((kind, value))
        return True

    async def _reclaimable(self, kind: str, value: str, record: bytes) -> bool:
        rec = _parse_record(record)
        if time.time() - float(rec.get("at", 0)) < UNCONFIRMED_GRACE:
            return False
        ns, _, name = str(rec.get("owner", "")).rpartition("/")
        kv = await self.store.get(meta.key("services", ns, name))
        if kv is None:
            return True
        stored = decode_stored_service(kv.value)
        return stored is not None and not uses(stored, kind, value)

    async def _release(self, kind: str, value: str, owner: str) -> None:
        key = f"{PREFIX}{kind}/{value}"
        kv = await self.store.get(key)
        if kv is None or _parse_record(kv.value).get("owner") != owner:
            return  # already released, or somebody else's now
        try:
            await self.store.delete(key, expected_revision=kv.mod_revision)
        except (ConflictError, KeyNotFoundError):
            pass

    async def _take_any_ip(self, owner: str, dry_run: bool, plan: _Plan) -> str | None:
        kvs, _ = await self.store.list(CLUSTER_IPS)
        taken = {kv.key[len(CLUSTER_IPS):] for kv in kvs}
        first = int(self.net.network_address) + 1
        last = int(self.net.broadcast_address) - 1
        size = last - first + 1
        # Like Kubernetes (KEP-3070), prefer the upper part of the range for
        # automatic addresses, leaving the lower band to requested ones.
        band = max(16, min(256, size // 16))
        bands = [(first + band, last), (first, min(last, first + band - 1))] if size > band else [(first, last)]
        for lo, hi in bands:
            n = hi - lo + 1
            for _ in range(64 if n > 64 else 0):
                ip = str(ipaddress.ip_address(self._rng.randint(lo, hi)))
                if ip not in taken and await self._take("clusterips", ip, owner, dry_run, plan):
                    return ip
            for i in range(lo, hi + 1):  # dense range: scan
                ip = str(ipaddress.ip_address(i))
                if ip not in taken and await self._take("clusterips", ip, owner, dry_run, plan):
                    return ip
        return None

    async def _take_any_port(self, owner: str, dry_run: bool, plan: _Plan, avoid: set[int]) -> int | None:
        kvs, _ = await self.store.list(NODE_PORTS)
        taken = {int(kv.key[len(NODE_PORTS):]) for kv in kvs} | avoid
        lo, hi = self.port_lo, self.port_hi
        size = hi - lo + 1
        band = max(16, min(128, size // 32))
        bands = [(lo + band, hi), (lo, lo + band - 1)] if size > band else [(lo, hi)]
        for blo, bhi in bands:
            for _ in range(64 if bhi - blo > 64 else 0):
                n = self._rng.randint(blo, bhi)
                if n not in taken and await self._take("nodeports", str(n), owner, dry_run, plan):
                    return n
            for n in range(blo, bhi + 1):
                if n not in taken and await self._take("nodeports", str(n), owner, dry_run, plan):
                    return n
        # Full: try reclaiming stale keys.
        for kv in kvs:
            n = int(kv.key[len(NODE_PORTS):])
            if n not in avoid and await self._take("nodeports", str(n), owner, dry_run, plan):
                return n
        return None


def _parse_record(data: bytes) -> dict[str, Any]:
    try:
        rec = json.loads(data)
        return rec if isinstance(rec, dict) else {}
    except ValueError:
        return {}
