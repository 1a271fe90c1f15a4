"""One Strategy per kind (see controlplane/apiserver/strategy.py); kinds not
listed get DefaultStrategy (Endpoints, Events)."""

from __future__ import annotations

from controlplane.apiserver.kinds.leases import LeaseStrategy
from controlplane.apiserver.kinds.namespaces import NamespaceStrategy
from controlplane.apiserver.kinds.nodes import NodeStrategy
from controlplane.apiserver.kinds.pods import PodStrategy
from controlplane.apiserver.kinds.services import ServiceStrategy
from controlplane.apiserver.kinds.workloads import WorkloadStrategy
from controlplane.apiserver.service_alloc import ServiceAllocator
from controlplane.apiserver.strategy import Strategy, Verbs


def strategies(verbs: Verbs, allocator: ServiceAllocator | None) -> dict[str, Strategy]:
    """The strategies by kind name, for a registry (`verbs`) and its
    Service allocator."""
    workloads = WorkloadStrategy()
    return {
        "Namespace": NamespaceStrategy(verbs),
        "Node": NodeStrategy(),
        "Pod": PodStrategy(),
        "ReplicaSet": workloads,
        "Deployment": workloads,
        "Service": ServiceStrategy(allocator),
        "Lease": LeaseStrategy(),
    }
