"""The control plane's state: the Store protocol (base), EtcdStore (etcd via
aetcd; production and integration tests) and MemoryStore (a fake for unit
tests and benchmarks). See README.md beside this file."""

from controlplane.store.base import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    Store,
    StoreError,
    UnavailableError,
)
from controlplane.store.etcd import EtcdStore
from controlplane.store.memory import MemoryStore

__all__ = [
    "KV",
    "CompactedError",
    "ConflictError",
    "EtcdStore",
    "Event",
    "KeyExistsError",
    "KeyNotFoundError",
    "MemoryStore",
    "Store",
    "StoreError",
    "UnavailableError",
]
