"""The gRPC face of the API server: ResourceService, NodeService, health
and reflection.

Each RPC decodes its request, calls the Registry (writes, reads) or the
watch caches (Watch), and turns an ApiError into a gRPC status whose details
carry kubectl's wording ("[Reason] message"). Store outages become
UNAVAILABLE with a message a user can act on.

Concurrency: grpc.aio runs every RPC as a task on the process's one event
loop; the Registry's CAS writes make concurrent RPCs safe.
"""

from __future__ import annotations

import asyncio
import logging
import math
import platform
import sys
from typing import Any, AsyncIterator, Sequence

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controlplane.apiserver.kinds import leases, nodes
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.watchcache import WatchCaches, parse_selectors
from controlplane.config import ControlPlaneConfig
from controlplane.store import StoreError, UnavailableError
from pkapi import decode as pkdecode
from pkapi import meta, selectors
from pkapi.errors import ApiError, bad_request
from pkapi.gctune import tune_gc
from pkapi.v1 import api_pb2, api_pb2_grpc, core_pb2

log = logging.getLogger(__name__)

VERSION = "v0.1.0"

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]


async def _abort(context: grpc.aio.ServicerContext, err: ApiError) -> None:
    await context.abort(grpc.StatusCode[err.grpc_code], err.wire())


def _store_error(e: Exception) -> ApiError:
    if isinstance(e, UnavailableError):
        return ApiError("ServiceUnavailable", f"the storage backend is unavailable: {e}")
    return ApiError("InternalError", f"storage error: {e}")


def _rpc(fn: Any) -> Any:
    """Map ApiError/StoreError raised by a unary RPC to a gRPC status."""

    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except ApiError as e:
            await _abort(context, e)
        except StoreError as e:
            await _abort(context, _store_error(e))
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            # A bug, not the client's fault: kubectl's 500 wording for the
            # client (not gRPC's "Unexpected <class ...>"), the traceback
            # for the log.
            log.exception("%s failed", fn.__name__)
            await _abort(context, ApiError(
                "InternalError", f'an error on the server ("{type(e).__name__}: {e}") has prevented the request '
                "from succeeding"))

    wrapper.__name__ = fn.__name__
    return wrapper


def _results(results: Sequence[Any], out: Any, put: Any) -> None:
    """Per-item results of a batch RPC: put(item, result) for a success,
    the error's wire form otherwise."""
    for r in results:
        item = out.add()
        if isinstance(r, ApiError):
            item.error = r.wire()
        elif isinstance(r, StoreError):
            item.error = _store_error(r).wire()
        elif isinstance(r, BaseException):
            raise r
        else:
            put(item, r)


def agent_error(e: grpc.aio.AioRpcError) -> ApiError:
    """An error from a node's agent, in kubectl's words; an unreachable agent
    must not read as an unreachable control plane."""
    details = e.details() or ""
    if details.startswith("["):
        return ApiError.from_wire(e.code().name, details)
    if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ApiError("ServiceUnavailable", f"error dialing backend: {details}")
    return ApiError.from_wire(e.code().name, details)


def body_message(body: api_pb2.Body) -> Message:
    which = body.WhichOneof("body")
    if which == "object":
        try:
            return meta.unwrap(body.object)
        except ValueError:
            raise bad_request("the request has no object") from None
    if which == "json":
        return pkdecode.decode_json(body.json)
    raise bad_request("the request has no body")


class ResourceServicer(api_pb2_grpc.ResourceServiceServicer):
    def __init__(self, registry: Registry, caches: WatchCaches, etcd_version: str = "") -> None:
        self.registry = registry
        self.caches = caches
        self.etcd_version = etcd_version
        self.agent_channels: dict[str, grpc.aio.Channel] = {}

    @_rpc
    async def Create(self, request: api_pb2.CreateRequest, context: Any) -> api_pb2.Object:
        msg = body_message(request.body)
        return meta.wrap(await self.registry.create(msg, request.dry_run, request.default_namespace))

    @_rpc
    async def Apply(self, request: api_pb2.ApplyRequest, context: Any) -> api_pb2.ApplyResponse:
        msg = body_message(request.body)
        out, result = await self.registry.apply(msg, request.dry_run, request.default_namespace)
        return api_pb2.ApplyResponse(object=meta.wrap(out), result=result)

    @_rpc
    async def Get(self, request: api_pb2.GetRequest, context: Any) -> api_pb2.Object:
        return meta.wrap(await self.registry.get(request.resource, request.namespace, request.name))

    @_rpc
    async def List(self, request: api_pb2.ListRequest, context: Any) -> api_pb2.ListResponse:
        k = self.registry.kind(request.resource)
        flt = parse_selectors(k, request.namespace, request.label_selector, request.field_selector)
        kvs, rev = await self.registry.list_raw(k, flt.namespace)
        resp = api_pb2.ListResponse(resource_version=str(rev))
        filtered = not (flt.labels.empty() and flt.fields.empty())
        # Parse each value straight into the response (no decode-then-copy):
        # lists of 10,000 pods are common for controllers' relists.
        for kv in kvs:
            item = resp.items.add()
            obj = getattr(item, k.field)
            obj.MergeFromString(kv.value)
            md = obj.metadata
            md.resource_version = str(kv.mod_revision)
            if filtered and not (flt.labels.matches(md.labels) and flt.fields.matches(selectors.object_fields(obj))):
                del resp.items[-1]
        return resp

    async def Watch(self, request: api_pb2.WatchRequest, context: Any) -> AsyncIterator[bytes]:
        """Each message is a serialized WatchResponse, made by joining its
        events' shared frames (see watchcache.WireEvent); `serve` registers
        this method with no response serializer."""
        try:
            k = self.registry.kind(request.resource)
            flt = parse_selectors(k, request.namespace, request.label_selector, request.field_selector)
            stream = await self.caches.watch(k, flt, request.resource_version, request.allow_bookmarks)
            try:
                async for evs in stream:
                    yield evs[0].frame if len(evs) == 1 else b"".join([e.frame for e in evs])
            finally:
                await stream.aclose()
        except ApiError as e:
            await _abort(context, e)
        except StoreError as e:
            await _abort(context, _store_error(e))

    @_rpc
    async def Update(self, request: api_pb2.UpdateRequest, context: Any) -> api_pb2.Object:
        msg = body_message(request.body)
        return meta.wrap(await self.registry.update(msg, request.dry_run, request.default_namespace))

    @_rpc
    async def UpdateStatus(self, request: api_pb2.UpdateRequest, context: Any) -> api_pb2.Object:
        msg = body_message(request.body)
        return meta.wrap(await self.registry.update_status(msg, request.dry_run, request.default_namespace))

    @_rpc
    async def RecordEvents(self, request: api_pb2.RecordEventsRequest, context: Any) -> api_pb2.RecordEventsResponse:
        resp = api_pb2.RecordEventsResponse()
        created, updated = await asyncio.gather(
            self.registry.create_events(list(request.create)),
            asyncio.gather(*(self.registry.update(ev) for ev in request.update), return_exceptions=True),
        )
        _results(created, resp.create, lambda item, r: item.event.CopyFrom(r))
        _results(updated, resp.update, lambda item, r: item.event.CopyFrom(r))
        return resp

    @_rpc
    async def CreateBatch(self, request: api_pb2.CreateBatchRequest, context: Any) -> api_pb2.BatchResponse:
        msgs: list[Message | ApiError] = []
        for body in request.items:
            try:
                msgs.append(body_message(body))
            except ApiError as e:
                msgs.append(e)
        good = [m for m in msgs if not isinstance(m, ApiError)]
        created = iter(await self.registry.create_many(good, request.default_namespace) if good else [])
        resp = api_pb2.BatchResponse()
        _results([m if isinstance(m, ApiError) else next(created) for m in msgs], resp.results,
                 lambda item, r: item.object.CopyFrom(meta.wrap(r)))
        return resp

    @_rpc
    async def Bind(self, request: api_pb2.BindRequest, context: Any) -> api_pb2.BatchResponse:
        resp = api_pb2.BatchResponse()
        _results(await self.registry.bind(request.items), resp.results,
                 lambda item, r: item.object.CopyFrom(meta.wrap(r)))
        return resp

    @_rpc
    async def Delete(self, request: api_pb2.DeleteRequest, context: Any) -> api_pb2.Object:
        grace = request.grace_period_seconds if request.HasField("grace_period_seconds") else None
        out = await self.registry.delete(
            request.resource,
            request.namespace,
            request.name,
            request.propagation_policy,
            grace,
            request.preconditions.uid,
            request.preconditions.resource_version,
            request.dry_run,
        )
        return meta.wrap(out)

    @_rpc
    async def Version(self, request: api_pb2.VersionRequest, context: Any) -> api_pb2.VersionInfo:
        return api_pb2.VersionInfo(
            git_version=VERSION,
            platform=f"{sys.platform}/{platform.machine()}",
            python_version=platform.python_version(),
            etcd_version=self.etcd_version,
        )

    # ------------------------------------------------------ logs and exec

    async def agent_stub(self, namespace: str, pod_name: str) -> api_pb2_grpc.AgentServiceStub:
        pod = await self.registry.get("pods", namespace or "default", pod_name)
        node_name = pod.spec.node_name  # type: ignore[attr-defined]
        if not node_name:
            raise bad_request(f'pod {pod_name} does not have a host assigned')
        node = await self.registry.get("nodes", "", node_name)
        st = node.status  # type: ignore[attr-defined]
        ip = next((a.address for a in st.addresses if a.type == "InternalIP"), "")
        port = st.daemon_endpoints.kubelet_endpoint.port
        if not ip or not port:
            raise ApiError("ServiceUnavailable", f'node "{node_name}" has no agent endpoint (InternalIP and kubeletEndpoint)')
        addr = f"{ip}:{port}"
        ch = self.agent_channels.get(addr)
        if ch is None:
            ch = grpc.aio.insecure_channel(addr)
            self.agent_channels[addr] = ch
        return api_pb2_grpc.AgentServiceStub(ch)

    async def PodLogs(self, request: api_pb2.LogsRequest, context: Any) -> AsyncIterator[api_pb2.LogChunk]:
        try:
            stub = await self.agent_stub(request.namespace, request.pod)
            call = stub.Logs(request)
            try:
                async for chunk in call:
                    yield chunk
            finally:
                call.cancel()
        except ApiError as e:
            await _abort(context, e)
        except grpc.aio.AioRpcError as e:
            await _abort(context, agent_error(e))

    async def PodExec(
        self, request_iterator: AsyncIterator[api_pb2.ExecRequest], context: Any
    ) -> AsyncIterator[api_pb2.ExecResponse]:
        try:
            first = await request_iterator.__anext__()
            if first.WhichOneof("msg") != "start":
                raise bad_request("the first message of an exec stream must be start")
            stub = await self.agent_stub(first.start.namespace, first.start.pod)
            call = stub.Exec()
            await call.write(first)

            async def pump() -> None:
                async for r in request_iterator:
                    await call.write(r)
                await call.done_writing()

            pumper = asyncio.get_running_loop().create_task(pump())
            try:
                async for out in call:
                    yield out
            finally:
                pumper.cancel()
                call.cancel()
        except StopAsyncIteration:
            return
        except ApiError as e:
            await _abort(context, e)
        except grpc.aio.AioRpcError as e:
            await _abort(context, agent_error(e))

    async def close(self) -> None:
        for ch in self.agent_channels.values():
            await ch.close()


class NodeServicer(api_pb2_grpc.NodeServiceServicer):
    """Agents: registration and heartbeats (Leases in kube-node-lease)."""

    def __init__(self, registry: Registry, config: ControlPlaneConfig) -> None:
        self.registry = registry
        self.config = config

    @_rpc
    async def Register(self, request: api_pb2.RegisterRequest, context: Any) -> core_pb2.Node:
        out = await nodes.register(self.registry, request.node)
        await self._renew(out.metadata.name)
        return out

    @_rpc
    async def Heartbeat(self, request: api_pb2.HeartbeatRequest, context: Any) -> api_pb2.HeartbeatResponse:
        if not request.node_name:
            raise bad_request("node_name is required")
        await self._renew(request.node_name)
        return api_pb2.HeartbeatResponse(interval_ms=int(self.config.heartbeat_interval * 1000))

    async def _renew(self, node: str) -> None:
        await leases.renew_node_lease(self.registry, node, max(1, math.ceil(self.config.node_grace_period)))


class _Handlers:
    """Takes the method handlers a generated add_*_to_server registers."""

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, handlers


def _add_resource_service(servicer: ResourceServicer, server: grpc.aio.Server) -> None:
    """The generated registration, except that Watch sends the bytes its
    handler made (ResourceServicer.Watch) as they are."""
    got = _Handlers()
    api_pb2_grpc.add_ResourceServiceServicer_to_server(servicer, got)  # type: ignore[arg-type]
    got.handlers["Watch"] = grpc.unary_stream_rpc_method_handler(
        servicer.Watch, request_deserializer=api_pb2.WatchRequest.FromString, response_serializer=None)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(got.service, got.handlers),))
    server.add_registered_method_handlers(got.service, got.handlers)


async def serve(
    config: ControlPlaneConfig, registry: Registry, caches: WatchCaches, etcd_version: str = ""
) -> tuple[grpc.aio.Server, ResourceServicer, health.aio.HealthServicer, int]:
    """Build and start the gRPC server; returns (server, servicer, health, port)."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    resources = ResourceServicer(registry, caches, etcd_version)
    _add_resource_service(resources, server)
    api_pb2_grpc.add_NodeServiceServicer_to_server(NodeServicer(registry, config), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (
        api_pb2.DESCRIPTOR.services_by_name["ResourceService"].full_name,
        api_pb2.DESCRIPTOR.services_by_name["NodeService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(config.listen)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}")
    await server.start()
    tune_gc()
    return server, resources, health_servicer, port
