"""Scheduling decisions: toleration matching, node filters and scores, and
the unschedulable message.

Pure: no external calls or any I/O. The scheduler builds NodeInfo/PodInfo
snapshots from its informer caches and calls schedule(); the node lifecycle
controller uses toleration matching. Filters follow kube-scheduler's plugins
(NodeUnschedulable, TaintToleration, NodeAffinity's nodeSelector part,
NodePorts, NodeResourcesFit) and their reason wording; scores are
LeastAllocated plus spreading the pods of one owner across nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from pkapi import quantity

UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

# kube-scheduler's "non-zero" requests for scoring pods that ask for nothing,
# so that many request-less pods still spread by load.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

# Weights: spreading one owner's pods matters more than load balance, so 3
# replicas on 3 healthy nodes always land on 3 different nodes.
SPREAD_WEIGHT = 2
LEAST_WEIGHT = 1


# ----------------------------------------------------------- tolerations


def tolerates(toleration: Any, taint: Any) -> bool:
    """ToleratesTaint: effect matches (empty toleration effect matches all),
    key matches (empty key with Exists matches all), and Exists ignores the
    value while Equal (or empty operator) compares it."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key != taint.key and not (toleration.key == "" and toleration.operator == "Exists"):
        return False
    op = toleration.operator or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return bool(toleration.value == taint.value)
    return False


def tolerates_all(tolerations: Iterable[Any], taint: Any) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def untolerated(taints: Iterable[Any], tolerations: Sequence[Any], effects: tuple[str, ...]) -> Any | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    for taint in taints:
        if taint.effect in effects and not tolerates_all(tolerations, taint):
            return taint
    return None


def toleration_seconds(tolerations: Iterable[Any], taint: Any, default: int | None) -> float | None:
    """How long a pod may stay on a node with this NoExecute taint:
    None = forever (a matching toleration without tolerationSeconds),
    0 = evict now (not tolerated), else the smallest matching
    tolerationSeconds. `default` applies when no toleration matches at all
    (PocketKube's --default-unreachable-toleration, standing in for
    Kubernetes' DefaultTolerationSeconds admission plugin); None there means
    evict at once."""
    matching = [t for t in tolerations if tolerates(t, taint)]
    if not matching:
        return float(default) if default is not None else 0.0
    # getMinTolerationTime: the smallest limit among matching tolerations;
    # none with a limit means forever.
    secs = [t.toleration_seconds for t in matching if t.HasField("toleration_seconds")]
    if not secs:
        return None
    return float(max(0, min(secs)))


# ----------------------------------------------------------------- data


@dataclass
class PodInfo:
    """What the filters and scores need of a pod."""

    namespace: str
    name: str
    cpu: int = 0  # millicores requested
    memory: int = 0  # bytes requested
    host_ports: frozenset[tuple[str, str, int]] = frozenset()  # (protocol, hostIP, port)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: Sequence[Any] = ()
    owner: str = ""  # controller owner's uid: pods of one owner spread


@dataclass
class NodeInfo:
    """A node and what its bound pods already use."""

    name: str
    ready: bool = True
    unschedulable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    taints: Sequence[Any] = ()
    alloc_cpu: int = 0  # millicores
    alloc_memory: int = 0  # bytes
    alloc_pods: int = 110
    req_cpu: int = 0
    req_memory: int = 0
    nonzero_cpu: int = 0  # for scoring (request-less pods count as defaults)
    nonzero_memory: int = 0
    pods: int = 0
    ports: set[tuple[str, str, int]] = field(default_factory=set)
    owners: dict[str, int] = field(default_factory=dict)

    def add(self, pod: PodInfo) -> None:
        self.req_cpu += pod.cpu
        self.req_memory += pod.memory
        self.nonzero_cpu += pod.cpu or DEFAULT_MILLI_CPU
        self.nonzero_memory += pod.memory or DEFAULT_MEMORY
        self.pods += 1
        self.ports |= pod.host_ports
        if pod.owner:
            self.owners[pod.owner] = self.owners.get(pod.owner, 0) + 1

    def remove(self, pod: PodInfo) -> None:
        self.req_cpu -= pod.cpu
        self.req_memory -= pod.memory
        self.nonzero_cpu -= pod.cpu or DEFAULT_MILLI_CPU
        self.nonzero_memory -= pod.memory or DEFAULT_MEMORY
        self.pods -= 1
        self.ports -= pod.host_ports
        if pod.owner and pod.owner in self.owners:
            self.owners[pod.owner] -= 1
            if self.owners[pod.owner] <= 0:
                del self.owners[pod.owner]


def pod_info(pod: Any) -> PodInfo:
    """PodInfo from a Pod message (requests summed over containers)."""
    cpu = mem = 0
    ports: set[tuple[str, str, int]] = set()
    for c in pod.spec.containers:
        req = c.resources.requests
        if "cpu" in req:
            cpu += quantity.cpu_millis(req["cpu"])
        if "memory" in req:
            mem += quantity.bytes_(req["memory"])
        for p in c.ports:
            if p.host_port:
                ports.add((p.protocol or "TCP", p.host_ip or "0.0.0.0", p.host_port))
    owner = ""
    for ref in pod.metadata.owner_references:
        if ref.HasField("controller") and ref.controller:
            owner = ref.uid
    return PodInfo(pod.metadata.namespace, pod.metadata.name, cpu, mem, frozenset(ports),
                   dict(pod.spec.node_selector), list(pod.spec.tolerations), owner)


def node_info(node: Any) -> NodeInfo:
    """NodeInfo from a Node message (no pods yet: add() them)."""
    alloc = node.status.allocatable or node.status.capacity
    ready = False
    for c in node.status.conditions:
        if c.type == "Ready":
            ready = c.status == "True"
    return NodeInfo(
        name=node.metadata.name,
        ready=ready,
        unschedulable=node.spec.unschedulable,
        labels=dict(node.metadata.labels),
        taints=list(node.spec.taints),
        alloc_cpu=quantity.cpu_millis(alloc["cpu"]) if "cpu" in alloc else 0,
        alloc_memory=quantity.bytes_(alloc["memory"]) if "memory" in alloc else 0,
        alloc_pods=int(quantity.parse(alloc["pods"])) if "pods" in alloc else 110,
    )


# -------------------------------------------------------------- filters


def _conflict(wanted: frozenset[tuple[str, str, int]], used: set[tuple[str, str, int]]) -> bool:
    for proto, ip, port in wanted:
        for uproto, uip, uport in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


def filter_node(pod: PodInfo, node: NodeInfo) -> list[str]:
    """Why the pod cannot go to this node (kube-scheduler's wording, without
    the count); empty when it fits. Stops at the first failing plugin, as
    the scheduler framework does; the resource fit reports every
    insufficient resource."""
    if node.unschedulable:
        return ["node(s) were unschedulable"]
    if not node.ready:
        return ["node(s) were not ready"]
    if node.taints:
        taint = untolerated(node.taints, pod.tolerations, ("NoSchedule", "NoExecute"))
        if taint is not None:
            return [f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"]
    for k, v in pod.node_selector.items():
        if node.labels.get(k) != v:
            return ["node(s) didn't match Pod's node affinity/selector"]
    if pod.host_ports and _conflict(pod.host_ports, node.ports):
        return ["node(s) didn't have free ports for the requested pod ports"]
    reasons = []
    if node.pods + 1 > node.alloc_pods:
        reasons.append("Too many pods")
    if pod.cpu and node.req_cpu + pod.cpu > node.alloc_cpu:
        reasons.append("Insufficient cpu")
    if pod.memory and node.req_memory + pod.memory > node.alloc_memory:
        reasons.append("Insufficient memory")
    return reasons


# --------------------------------------------------------------- scores


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """0..100: the share of cpu and memory left free after placing the pod."""
    def part(used: int, cap: int) -> float:
        if cap <= 0:
            return 0.0
        return max(0.0, (cap - used) * 100.0 / cap)
    cpu = part(node.nonzero_cpu + (pod.cpu or DEFAULT_MILLI_CPU), node.alloc_cpu)
    mem = part(node.nonzero_memory + (pod.memory or DEFAULT_MEMORY), node.alloc_memory)
    return int((cpu + mem) / 2)


def spread(pod: PodInfo, node: NodeInfo, max_owner_count: int) -> int:
    """0..100: fewer pods of the same owner on this node scores higher
    (SelectorSpread)."""
    if not pod.owner or max_owner_count == 0:
        return 100
    return int(100 * (max_owner_count - node.owners.get(pod.owner, 0)) / max_owner_count)


def score_nodes(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[tuple[int, NodeInfo]]:
    """LEAST_WEIGHT * least_allocated + SPREAD_WEIGHT * spread for each node.
    The same arithmetic as those two, inlined: this loop runs for every
    feasible node of every pod, and is most of the scheduler's CPU."""
    owner = pod.owner
    max_owner = max((n.owners.get(owner, 0) for n in nodes), default=0) if owner else 0
    pcpu = pod.cpu or DEFAULT_MILLI_CPU
    pmem = pod.memory or DEFAULT_MEMORY
    out = []
    for n in nodes:
        cap = n.alloc_cpu
        cpu = (cap - n.nonzero_cpu - pcpu) * 100.0 / cap if cap > 0 else 0.0
        if cpu < 0.0:
            cpu = 0.0
        cap = n.alloc_memory
        mem = (cap - n.nonzero_memory - pmem) * 100.0 / cap if cap > 0 else 0.0
        if mem < 0.0:
            mem = 0.0
        score = LEAST_WEIGHT * int((cpu + mem) / 2)
        if owner and max_owner:
            score += SPREAD_WEIGHT * int(100 * (max_owner - n.owners.get(owner, 0)) / max_owner)
        else:
            score += SPREAD_WEIGHT * 100
        out.append((score, n))
    return out


# ------------------------------------------------------------- schedule


def feasible_to_find(total: int, percentage: int = 0) -> int:
    """numFeasibleNodesToFind: with many nodes, stop filtering once enough
    feasible ones are found (adaptive: 50% - nodes/125, at least 5%, at
    least 100 nodes)."""
    if total < 100:
        return total
    pct = percentage or max(5, 50 - total // 125)
    return max(100, total * pct // 100)


@dataclass
class Decision:
    node: str | None
    message: str = ""  # the Unschedulable message when node is None
    next_start: int = 0


def unschedulable_message(total: int, reasons: dict[str, int]) -> str:
    """FitError: `0/3 nodes are available: 1 node(s) were unschedulable, 2
    Insufficient cpu.` (reason strings sorted, as kube-scheduler does)."""
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    if not parts:
        return f"0/{total} nodes are available: no nodes available to schedule pods."
    return f"0/{total} nodes are available: " + ", ".join(parts) + "."


def schedule(pod: PodInfo, nodes: Sequence[NodeInfo], start: int = 0) -> Decision:
    """Filter, then score, then pick the best node (ties: the first from the
    rotating start index, so equal nodes take turns). `start` is where the
    previous search stopped (kube-scheduler's nextStartNodeIndex)."""
    n = len(nodes)
    if n == 0:
        return Decision(None, unschedulable_message(0, {}), 0)
    want = feasible_to_find(n)
    feasible: list[NodeInfo] = []
    reasons: dict[str, int] = {}
    examined = 0
    for i in range(n):
        node = nodes[(start + i) % n]
        examined += 1
        why = filter_node(pod, node)
        if why:
            for r in why:
                reasons[r] = reasons.get(r, 0) + 1
        else:
            feasible.append(node)
            if len(feasible) >= want:
                break
    next_start = (start + examined) % n
    if not feasible:
        return Decision(None, unschedulable_message(n, reasons), next_start)
    scored = score_nodes(pod, feasible)
    best = max(s for s, _ in scored)
    for s, node in scored:
        if s == best:
            return Decision(node.name, "", next_start)
    raise AssertionError("unreachable")
