"""An in-process API for controller unit tests (httpx's MockTransport, for
the control plane).

    async with InProcessClient() as client:          # Registry(MemoryStore())
        pods = Informer.synced_with(client, "pods", [pod])
        ...
        await controller.sync("default/web")          # milliseconds
        assert client.writes() == [Action("create_batch", "pods", "default", "")]
        assert len(await client.list("pods")) == 3

InProcessClient *is* a ClusterClient: every method (get, list, watch,
create, apply, update, update_status, record_events, create_batch, bind,
delete, version, register_node, heartbeat) is ClusterClient's own, and only
the transport is replaced. Requests go to the API server's real servicers
(ResourceServicer, NodeServicer) and so to the real Registry, validation,
defaulting and CAS rules, over a MemoryStore, without gRPC or a socket.
Errors come back as ClusterClient raises them (ApiError with kubectl's
wording). Watch is served by real watch caches over the same store, so an
Informer may also run() against the client.

Every RPC is recorded in `client.actions` (sample-controller's "actions
expected to happen on the client"); `writes()` keeps the ones that change
state.

The registry reads etcd (here the MemoryStore) directly, not the watch
caches, so a read always sees the last write: a unit test needs no waiting.

Informers: `Informer.synced_with(client, resource, objs)` or
`informer.preload(objs)` fill a cache as a list would, without run();
`await refresh(client, *informers)` lists the store into them again, so a
test can let a controller observe its own writes step by step, as a watch
would deliver them.

FakeClock: a clock a test moves by hand, for controllers that take
`clock=` (no wall-clock time in unit tests).

Concurrency: one event loop; the client and the store belong to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, AsyncGenerator, NamedTuple, cast

import grpc
from google.protobuf.message import Message

from controlplane.apiserver.registry import Registry
from controlplane.apiserver.server import NodeServicer, ResourceServicer
from controlplane.apiserver.service_alloc import ServiceAllocator
from controlplane.apiserver.watchcache import WatchCaches
from controlplane.config import ControlPlaneConfig
from controlplane.store.memory import MemoryStore
from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.client.informer import Informer
from pkapi.v1 import api_pb2

__all__ = ["Action", "FakeClock", "InProcessClient", "by_key", "refresh"]

# RPCs that do not change state.
READS = ("get", "list", "watch", "version")

_VERBS = {
    "Get": "get", "List": "list", "Watch": "watch", "Create": "create", "Apply": "apply",
    "Update": "update", "UpdateStatus": "update_status", "RecordEvents": "record_events",
    "CreateBatch": "create_batch", "Bind": "bind", "Delete": "delete", "Version": "version",
    "Register": "register_node", "Heartbeat": "heartbeat",
}


class Action(NamedTuple):
    """One call a client made: verb (ClusterClient's method name), resource,
    namespace and name (as the request carried them; "" when it has none,
    e.g. generated names or batches)."""

    verb: str
    resource: str = ""
    namespace: str = ""
    name: str = ""


def _body_target(body: api_pb2.Body) -> tuple[str, str, str]:
    if body.WhichOneof("body") != "object":
        return "", "", ""
    msg = meta.unwrap(body.object)
    md = msg.metadata  # type: ignore[attr-defined]
    return meta.kind_of(msg).resource, md.namespace, md.name


def _action(rpc: str, request: Any) -> Action:
    verb = _VERBS.get(rpc, rpc)
    if rpc in ("Get", "Delete", "List", "Watch"):
        return Action(verb, request.resource, request.namespace, getattr(request, "name", ""))
    if rpc in ("Create", "Apply", "Update", "UpdateStatus"):
        return Action(verb, *_body_target(request.body))
    if rpc == "CreateBatch":
        kinds = {_body_target(b)[0] for b in request.items}
        return Action(verb, kinds.pop() if len(kinds) == 1 else "")
    if rpc == "Bind":
        return Action(verb, "pods")
    if rpc == "RecordEvents":
        return Action(verb, "events")
    if rpc == "Register":
        return Action(verb, "nodes", "", request.node.metadata.name)
    if rpc == "Heartbeat":
        return Action(verb, "nodes", "", request.node_name)
    return Action(verb)


class _Context:
    """The part of grpc.aio.ServicerContext the servicers use: abort()."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self.code, self.details = code, details
        raise grpc.aio.AbortError(details)

    def error(self) -> grpc.aio.AioRpcError:
        assert self.code is not None
        return grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=self.details)


class _Unary:
    """A stub method that calls the servicer in process."""

    def __init__(self, client: InProcessClient, servicer: Any, rpc: str) -> None:
        self.client, self.servicer, self.rpc = client, servicer, rpc

    async def __call__(self, request: Any, timeout: float | None = None) -> Any:
        self.client.actions.append(_action(self.rpc, request))
        ctx = _Context()
        try:
            return await getattr(self.servicer, self.rpc)(request, ctx)
        except grpc.aio.AbortError:
            raise ctx.error() from None


class _WatchCall:
    """The stream a stub's Watch returns: WatchResponse messages, cancel()."""

    def __init__(self, servicer: ResourceServicer, request: api_pb2.WatchRequest,
                 closing: set[asyncio.Task[None]]) -> None:
        self._ctx = _Context()
        self._gen = cast(AsyncGenerator[bytes, None], servicer.Watch(request, self._ctx))
        self._it = self._responses()
        self._closing = closing

    def __aiter__(self) -> AsyncGenerator[api_pb2.WatchResponse, None]:
        return self._it

    async def _responses(self) -> AsyncGenerator[api_pb2.WatchResponse, None]:
        try:
            async for frames in self._gen:
                yield api_pb2.WatchResponse.FromString(frames)
        except grpc.aio.AbortError:
            raise self._ctx.error() from None

    def cancel(self) -> None:
        """End the stream (the server side unsubscribes its watcher)."""
        task = asyncio.get_running_loop().create_task(self._close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self) -> None:
        with contextlib.suppress(RuntimeError):  # still running: it ends by itself
            await self._it.aclose()
        with contextlib.suppress(RuntimeError):
            await self._gen.aclose()


class _Stub:
    def __init__(self, client: InProcessClient, servicer: Any) -> None:
        self._client, self._servicer = client, servicer

    def __getattr__(self, rpc: str) -> Any:
        if rpc == "Watch":
            def watch(request: api_pb2.WatchRequest) -> _WatchCall:
                self._client.actions.append(_action("Watch", request))
                return _WatchCall(self._servicer, request, self._client._closing)
            return watch
        return _Unary(self._client, self._servicer, rpc)


class InProcessClient(ClusterClient):
    """ClusterClient over an in-process API server (see module docstring).

    `registry` defaults to Registry(MemoryStore()) with the Service
    allocator of `config` (default ControlPlaneConfig()). Use it as an async
    context manager (or call start() and close()): start creates the system
    namespaces, as the control plane does."""

    def __init__(self, registry: Registry | None = None, config: ControlPlaneConfig | None = None) -> None:
        self.config = config or ControlPlaneConfig()
        if registry is None:
            store = MemoryStore()
            registry = Registry(store, ServiceAllocator(store, self.config))
        self.registry = registry
        self.store = registry.store
        self.caches = WatchCaches(registry.store)
        self.address = "in-process"
        self.timeout = None
        self.actions: list[Action] = []
        self._closing: set[asyncio.Task[None]] = set()
        self.resources = _Stub(self, ResourceServicer(registry, self.caches))  # type: ignore[assignment]
        self.nodes = _Stub(self, NodeServicer(registry, self.config))  # type: ignore[assignment]

    async def start(self) -> InProcessClient:
        await self.registry.ensure_system_namespaces()
        return self

    async def __aenter__(self) -> InProcessClient:
        return await self.start()

    async def close(self) -> None:
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self.caches.stop()
        await self.registry.close()

    def writes(self, resource: str = "") -> list[Action]:
        """The recorded calls that change state (of `resource` only, if
        given), in order."""
        return [a for a in self.actions if a.verb not in READS and (not resource or a.resource == resource)]

    def clear(self) -> None:
        """Forget the recorded calls (after a test's setup)."""
        self.actions.clear()


async def refresh(client: ClusterClient, *informers: Informer) -> None:
    """List each informer's resource through client into its cache, as a
    relist would (handlers see the adds, updates and deletes)."""
    for inf in informers:
        items, rv = await client.list(inf.resource, inf.namespace, label_selector=inf.label_selector,
                                      field_selector=inf.field_selector)
        inf.preload(items, rv)


@dataclass
class FakeClock:
    """Seconds since the epoch, moved only by advance()."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def by_key(msgs: list[Message]) -> dict[str, Message]:
    """Objects by namespace/name (for assertions)."""
    return {meta.ns_name(m): m for m in msgs}
