"""ClusterClient: the asyncio gRPC client of the control plane's API.

Used by pkctl, the agents and the controllers. Methods take and return typed
messages (pkapi.v1 *_pb2); gRPC errors become pkapi.errors.ApiError with the
server's Kubernetes wording, and an unreachable server becomes
ServerUnreachable (pkctl prints `error: cannot reach the control plane at
ADDR: ...`).

Several control planes: `address` may list them, comma-separated
("10.231.0.1:6444,10.231.0.2:6444,10.231.0.3:6444"). The channel then
targets all of them (gRPC's `ipv4:` list with pick_first: one connection,
to the first address that accepts; when it breaks, the next call connects
to the first that answers again), as k3s' agent load balancer does on the
client side. A call that fails with UNAVAILABLE before the server answered
is sent again, once per other endpoint, when it is safe to repeat (reads,
heartbeats, registration and writes that carry a resourceVersion
precondition or replace an object whole); creates, deletes, binds and
batches are not repeated, their ServerUnreachable goes to the caller, who
reads again before deciding (controllers requeue).

Concurrency: one grpc.aio channel per client; every method may be called
concurrently from many tasks of the one event loop that created the client.
"""

from __future__ import annotations

import builtins
import ipaddress
from typing import Any, AsyncIterator, Callable, Sequence, TypeVar

import grpc
from google.protobuf.message import Message

from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import api_pb2, api_pb2_grpc, core_pb2

M = TypeVar("M", bound=Message)

# Large lists (10,000 pods) exceed gRPC's 4 MiB default.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


# Methods a failover may send again after UNAVAILABLE: a repeat of one that
# the dead server had already applied reads or writes the same thing (an
# update with a resourceVersion then fails with Conflict, never twice).
READS = frozenset({"Get", "List", "Version"})
REPEATABLE = frozenset({"Get", "List", "Version", "Update", "UpdateStatus", "Register", "Heartbeat"})


def endpoints(address: str) -> list[str]:
    """"a:1, b:2" -> ["a:1", "b:2"]; ValueError for an empty list."""
    out = [a.strip() for a in address.split(",") if a.strip()]
    if not out:
        raise ValueError(f"no control plane address in {address!r}")
    return out


def grpc_target(address: str) -> str:
    """The gRPC target of one address or a comma-separated list of them.
    Several must be IPv4 HOST:PORT ("localhost" counts as 127.0.0.1): gRPC's
    ipv4: scheme is the one that takes a list."""
    eps = endpoints(address)
    if len(eps) == 1:
        return eps[0]
    out = []
    for ep in eps:
        host, sep, port = ep.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"control plane address {ep!r}: no port (HOST:PORT)")
        if host == "localhost":
            host = "127.0.0.1"
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"control plane address {ep!r}: several addresses must each be IPv4 HOST:PORT") from None
        out.append(f"{host}:{port}")
    return "ipv4:" + ",".join(out)


class ServerUnreachable(Exception):
    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"cannot reach the control plane at {address}: {detail}")
        self.address = address
        self.detail = detail


def convert_rpc_error(err: grpc.aio.AioRpcError, address: str) -> Exception:
    """A failed call to the control plane (this client's or a raw stub's,
    as pkctl's logs and exec make): ApiError when the server answered in
    its "[Reason] message" wording, else ServerUnreachable."""
    details = err.details() or ""
    if not details.startswith("["):
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            return ServerUnreachable(address, details or "unavailable")
        if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ServerUnreachable(address, "deadline exceeded")
    return ApiError.from_wire(err.code().name, details)


def _method_name(method: Any) -> str:
    """"Get" of a stub's multi-callable (its path is /pkg.Service/Get)."""
    path = getattr(method, "_method", b"")
    if isinstance(path, bytes):
        path = path.decode()
    return str(path).rsplit("/", 1)[-1]


def _failed_over(err: grpc.aio.AioRpcError) -> bool:
    """The server did not answer (its connection broke or refused): not a
    server's own "[Reason] ..." error."""
    return err.code() == grpc.StatusCode.UNAVAILABLE and not (err.details() or "").startswith("[")


def _batch_results(items: Any, ok: Callable[[Any], Any]) -> list[Any]:
    """A batch RPC's per-item results: ok(item) for a success, else the ApiError."""
    return [ApiError.from_wire("UNKNOWN", r.error) if r.error else ok(r) for r in items]


class ClusterClient:
    # Defaults for a subclass that builds its own stubs (controlplane.testing).
    write_guard: Callable[[], None] | None = None
    endpoints: Sequence[str] = ()

    def __init__(self, address: str, timeout: float | None = 30.0,
                 write_guard: Callable[[], None] | None = None) -> None:
        self.address = address
        # Called before every call that is not a read; raising refuses it
        # (a controller leader whose lease may have lapsed: controlplane.leader).
        self.write_guard = write_guard
        self.endpoints = endpoints(address)
        self.timeout = timeout
        self.channel = grpc.aio.insecure_channel(grpc_target(address), options=CHANNEL_OPTIONS)
        # The generated gRPC stubs carry no annotations (pkapi/v1 is not typed).
        self.resources = api_pb2_grpc.ResourceServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.nodes = api_pb2_grpc.NodeServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> ClusterClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any) -> Any:
        name = _method_name(method)
        if self.write_guard is not None and name not in READS:
            self.write_guard()
        attempts = max(1, len(self.endpoints)) if name in REPEATABLE else 1
        for attempt in range(attempts):
            try:
                return await method(request, timeout=self.timeout)
            except grpc.aio.AioRpcError as err:
                if attempt + 1 < attempts and _failed_over(err):
                    continue
                raise convert_rpc_error(err, self.address) from None

    # ---------------------------------------------------------------- reads

    async def get(self, resource: str, namespace: str, name: str) -> Message:
        obj = await self._call(self.resources.Get, api_pb2.GetRequest(resource=resource, namespace=namespace, name=name))
        return meta.unwrap(obj)

    async def list(
        self, resource: str, namespace: str = "", label_selector: str = "", field_selector: str = ""
    ) -> tuple[list[Message], str]:
        """Items and the list's resourceVersion (watch from it misses nothing)."""
        resp = await self._call(
            self.resources.List,
            api_pb2.ListRequest(
                resource=resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector
            ),
        )
        return [meta.unwrap(o) for o in resp.items], resp.resource_version

    async def watch(
        self,
        resource: str,
        namespace: str = "",
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        allow_bookmarks: bool = False,
    ) -> AsyncIterator[tuple[str, Message]]:
        """(type, object) pairs: ADDED, MODIFIED, DELETED, BOOKMARK. Ends only on
        error: ApiError(reason="Expired") means relist; ServerUnreachable means
        reconnect."""
        call = self.resources.Watch(
            api_pb2.WatchRequest(
                resource=resource,
                namespace=namespace,
                resource_version=resource_version,
                label_selector=label_selector,
                field_selector=field_selector,
                allow_bookmarks=allow_bookmarks,
            )
        )
        try:
            # A message holds whole revisions (see api.proto's WatchResponse):
            # a failure comes between messages, never inside a revision.
            async for resp in call:
                for ev in resp.events:
                    yield ev.type, meta.unwrap(ev.object)
        except grpc.aio.AioRpcError as err:
            raise convert_rpc_error(err, self.address) from None
        finally:
            call.cancel()

    # --------------------------------------------------------------- writes

    @staticmethod
    def _body(obj: Message | str) -> api_pb2.Body:
        if isinstance(obj, str):
            return api_pb2.Body(json=obj)
        return api_pb2.Body(object=meta.wrap(obj))

    async def create(self, obj: M | str, dry_run: bool = False, default_namespace: str = "") -> M:
        """Create from a typed message or a JSON manifest string."""
        out = await self._call(
            self.resources.Create,
            api_pb2.CreateRequest(body=self._body(obj), dry_run=dry_run, default_namespace=default_namespace),
        )
        return meta.unwrap(out)  # type: ignore[return-value]

    async def apply(
        self, obj: Message | str, dry_run: bool = False, default_namespace: str = ""
    ) -> tuple[Message, str]:
        """Create or update as `kubectl apply`; returns (object, "created" |
        "configured" | "unchanged")."""
        resp = await self._call(
            self.resources.Apply,
            api_pb2.ApplyRequest(body=self._body(obj), dry_run=dry_run, default_namespace=default_namespace),
        )
        return meta.unwrap(resp.object), resp.result

    async def update(self, obj: M, dry_run: bool = False) -> M:
        """Replace spec/metadata. metadata.resourceVersion, if set, must match
        (else ApiError Conflict)."""
        out = await self._call(self.resources.Update, api_pb2.UpdateRequest(body=self._body(obj), dry_run=dry_run))
        return meta.unwrap(out)  # type: ignore[return-value]

    async def update_status(self, obj: M) -> M:
        """Replace status only (resourceVersion precondition as update)."""
        out = await self._call(self.resources.UpdateStatus, api_pb2.UpdateRequest(body=self._body(obj)))
        return meta.unwrap(out)  # type: ignore[return-value]

    async def record_events(
        self, create: Sequence[core_pb2.Event], update: Sequence[core_pb2.Event] = ()
    ) -> tuple[builtins.list[core_pb2.Event | ApiError], builtins.list[core_pb2.Event | ApiError]]:
        """Create Events and replace others (unconditionally) in one RPC:
        per item, in order, the stored Event or the ApiError that refused it."""
        resp = await self._call(self.resources.RecordEvents,
                                api_pb2.RecordEventsRequest(create=create, update=update))
        return _batch_results(resp.create, lambda r: r.event), _batch_results(resp.update, lambda r: r.event)

    async def create_batch(
        self, objs: Sequence[Message], default_namespace: str = ""
    ) -> builtins.list[Message | ApiError]:
        """Create several objects in one RPC (api.proto's CreateBatch): per
        item, in order, the stored object or the ApiError that refused it."""
        resp = await self._call(self.resources.CreateBatch, api_pb2.CreateBatchRequest(
            items=[self._body(o) for o in objs], default_namespace=default_namespace))
        return _batch_results(resp.results, lambda r: meta.unwrap(r.object))

    async def bind(self, bindings: Sequence[tuple[Message, str]]) -> builtins.list[Message | ApiError]:
        """Bind pods to nodes in one RPC (api.proto's Bind): (pod, node)
        pairs; per item, in order, the bound pod or the ApiError."""
        req = api_pb2.BindRequest(items=[
            api_pb2.Binding(namespace=p.metadata.namespace, name=p.metadata.name,  # type: ignore[attr-defined]
                            uid=p.metadata.uid, node=node)  # type: ignore[attr-defined]
            for p, node in bindings])
        resp = await self._call(self.resources.Bind, req)
        return _batch_results(resp.results, lambda r: meta.unwrap(r.object))

    async def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        propagation_policy: str = "",
        grace_period_seconds: int | None = None,
        uid: str = "",
        resource_version: str = "",
        dry_run: bool = False,
    ) -> Message:
        req = api_pb2.DeleteRequest(
            resource=resource,
            namespace=namespace,
            name=name,
            propagation_policy=propagation_policy,
            preconditions=api_pb2.Preconditions(uid=uid, resource_version=resource_version),
            dry_run=dry_run,
        )
        if grace_period_seconds is not None:
            req.grace_period_seconds = grace_period_seconds
        out = await self._call(self.resources.Delete, req)
        return meta.unwrap(out)

    async def version(self) -> api_pb2.VersionInfo:
        out: api_pb2.VersionInfo = await self._call(self.resources.Version, api_pb2.VersionRequest())
        return out

    # ---------------------------------------------------------------- nodes

    async def register_node(self, node: core_pb2.Node) -> core_pb2.Node:
        out: core_pb2.Node = await self._call(self.nodes.Register, api_pb2.RegisterRequest(node=node))
        return out

    async def heartbeat(self, node_name: str) -> api_pb2.HeartbeatResponse:
        out: api_pb2.HeartbeatResponse = await self._call(
            self.nodes.Heartbeat, api_pb2.HeartbeatRequest(node_name=node_name)
        )
        return out
