"""The Kubernetes HTTP API: kubectl's and client libraries' face of the
API server, on the same Registry verbs and watch caches as the gRPC API.

Every request is one task on the process's event loop (aiohttp); writes are
the Registry's CAS writes, so concurrent requests are as safe as concurrent
RPCs. A request that fails gets a meta/v1 Status (status.py) with the code
kube-apiserver gives; nothing is written before a request is fully decoded
and checked. A watch is a chunked stream of JSON lines (watch.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import platform
from typing import Any, Awaitable, Callable

from aiohttp import web
from google.protobuf.message import Message

from controlplane.apiserver.http import discovery, endpointslices, logs, negotiate, patching, paths, tables, watch
from controlplane.apiserver.http import exec as podexec
from controlplane.apiserver.http.patching import scale_of
from controlplane.apiserver.http.paths import Target
from controlplane.apiserver.http.status import status, success
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.server import parse_selectors
from controlplane.apiserver.watchcache import WatchCaches
from controlplane.store import StoreError, UnavailableError
from pkapi import meta, selectors
from pkapi.errors import ApiError, bad_request

log = logging.getLogger(__name__)

# /version: kubectl's dispatcher (Google Cloud SDK's /usr/bin/kubectl) runs
# the kubectl build whose minor version matches the server's; 32 is the
# behaviour the API was measured against.
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+pocketkube",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-12-03T00:00:00Z",
    "goVersion": f"python{platform.python_version()}",
    "compiler": "gc",
    "platform": "linux/amd64",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def respond(obj: Any, code: int = 200, content_type: str = negotiate.JSON,
            warnings: list[str] | None = None) -> web.Response:
    headers = {"Content-Type": content_type, "Cache-Control": "no-cache, private"}
    resp = web.Response(body=dumps(obj), status=code, headers=headers)
    for w in negotiate.warning_header(warnings or []):
        resp.headers.add("Warning", w)
    return resp


def error_response(err: ApiError, target: Target | None = None) -> web.Response:
    name = target.name if target is not None else ""
    body = status(err, target.kind if target is not None else None, name)
    return respond(body, body["code"])


def store_error(e: StoreError) -> ApiError:
    if isinstance(e, UnavailableError):
        return ApiError("ServiceUnavailable", f"the storage backend is unavailable: {e}")
    return ApiError("InternalError", f"storage error: {e}")


def _bool(value: str) -> bool:
    return value.lower() in ("true", "1")


def dry_run(query: Any) -> bool:
    values = query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


def _int(query: Any, name: str) -> int | None:
    v = query.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{v}" is not an integer') from None


class KubeAPI:
    """The handlers; `app()` is the aiohttp application serving them."""

    def __init__(self, registry: Registry, caches: WatchCaches, server_address: str = "",
                 now: Callable[[], dt.datetime] = meta.now, agents: logs.AgentStub | None = None) -> None:
        self.registry = registry
        # The pod's node's agent (AgentService stub), for pods/log.
        self.agents = agents
        self.caches = caches
        self.server_address = server_address
        self.now = now
        self.ready = True

    def app(self) -> web.Application:
        app = web.Application(client_max_size=negotiate.MAX_BODY, middlewares=[self._errors])
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as e:
            return error_response(e, request.get("target"))
        except StoreError as e:
            return error_response(store_error(e), request.get("target"))
        except web.HTTPException:
            raise
        except Exception as e:  # a bug, not the client's fault: a 500 Status, the traceback in the log
            log.exception("%s %s failed", request.method, request.path)
            return error_response(ApiError(
                "InternalError", f'an error on the server ("{type(e).__name__}: {e}") has prevented the request '
                "from succeeding"), request.get("target"))

    # ------------------------------------------------------------ routing

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        segs = [s for s in request.path.split("/")]
        segs = segs[1:] if segs and segs[0] == "" else segs
        if segs and segs[-1] == "":
            segs = segs[:-1]
        method = request.method
        head = segs[0] if segs else ""
        if head in ("version", "healthz", "livez", "readyz", "openapi") or not segs:
            return await self._meta_path(request, segs)
        if head == "api":
            if len(segs) == 1:
                return self._only_get(request) or self._discovery(request, core=True)
            gv, rest = segs[1], segs[2:]
        elif head == "apis":
            if len(segs) == 1:
                return self._only_get(request) or self._discovery(request, core=False)
            if len(segs) == 2:
                group = discovery.api_group(segs[1])
                if group is None:
                    raise paths.not_found()
                return self._only_get(request) or respond(group)
            gv, rest = f"{segs[1]}/{segs[2]}", segs[3:]
        else:
            raise paths.not_found()
        if not rest:
            doc = discovery.resource_list(gv)
            if doc is None:
                raise paths.not_found()
            return self._only_get(request) or respond(doc)
        if gv == endpointslices.GROUP_VERSION:
            return await self.endpointslices(request, rest)
        target = paths.parse(gv, rest)
        request["target"] = target
        return await self._resource(request, method, target)

    def _only_get(self, request: web.Request) -> web.Response | None:
        if request.method not in ("GET", "HEAD"):
            return error_response(ApiError("MethodNotAllowed", f"the server does not allow this method on the "
                                                                f"requested resource ({request.method})"))
        return None

    async def _meta_path(self, request: web.Request, segs: list[str]) -> web.StreamResponse:
        bad = self._only_get(request)
        if bad is not None:
            return bad
        head = segs[0] if segs else ""
        if not segs:
            return respond({"paths": ["/api", "/api/v1", "/apis", *sorted(f"/apis/{gv}" for gv in
                                                                           discovery.group_versions() if "/" in gv),
                                      "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]})
        if head == "version" and len(segs) == 1:
            return respond(VERSION_INFO)
        if head in ("healthz", "livez", "readyz") and len(segs) == 1:
            if head == "readyz" and not self.ready:
                return web.Response(text="[-]shutdown failed: reason withheld\nreadyz check failed", status=500)
            return web.Response(text="ok", content_type="text/plain")
        if head == "openapi" and len(segs) >= 2 and segs[1] == "v3":
            from controlplane.apiserver.http import openapi

            if len(segs) == 2:
                return respond(openapi.index())
            data = openapi.document_json("/".join(segs[2:]))
            if data is None:
                raise paths.not_found()
            return web.Response(body=data, headers={"Content-Type": negotiate.JSON})
        raise paths.not_found()

    def _discovery(self, request: web.Request, core: bool) -> web.Response:
        v = negotiate.wants(request.headers.get("Accept", ""), "APIGroupDiscoveryList", "apidiscovery.k8s.io",
                            discovery.AGGREGATED_VERSIONS)
        if v:
            return respond(discovery.aggregated(core, v), content_type=discovery.content_type(v))
        if core:
            return respond(discovery.api_versions(self.server_address or request.host))
        return respond(discovery.api_group_list())

    async def _resource(self, request: web.Request, method: str, t: Target) -> web.StreamResponse:
        q = request.query
        if not t.name:
            if method == "GET":
                if _bool(q.get("watch", "")):
                    return await self.watch(request, t)
                return await self.list_objects(request, t)
            if method == "POST":
                if t.kind.namespaced and not t.namespace:
                    raise self._not_allowed(method)
                return await self.create(request, t)
            if method == "DELETE":
                return await self.delete_collection(request, t)
            raise self._not_allowed(method)
        if t.subresource == "eviction":
            if method == "POST":
                return await self.evict(request, t)
            raise self._not_allowed(method)
        if t.subresource == "exec":
            if method in ("GET", "POST"):
                return await podexec.serve(request, self.registry, self.agents, t)
            raise self._not_allowed(method)
        if t.subresource == "log":
            if method == "GET":
                return await logs.serve(request, self.registry, self.agents, t)
            raise self._not_allowed(method)
        if t.subresource == "scale":
            if method == "GET":
                return respond(scale_of(await self._get(t)))
            if method in ("PUT", "PATCH"):
                return await self.update_scale(request, t)
            raise self._not_allowed(method)
        if method == "GET":
            return await self.get(request, t)
        if method == "PUT":
            return await self.update(request, t)
        if method == "PATCH":
            return await self.patch(request, t)
        if method == "DELETE" and not t.subresource:
            return await self.delete(request, t)
        raise self._not_allowed(method)

    @staticmethod
    def _not_allowed(method: str) -> ApiError:
        return ApiError("MethodNotAllowed", f"the server does not allow this method on the requested resource "
                                            f"({method})")

    # -------------------------------------------------------------- reads

    async def endpointslices(self, request: web.Request, segments: list[str]) -> web.Response:
        ns, name = endpointslices.parse(segments)
        if request.method != "GET" or _bool(request.query.get("watch", "")):
            raise self._not_allowed(request.method + (" (watch)" if request.method == "GET" else ""))
        q = request.query
        items, rev = await endpointslices.read(self.registry, ns, name, q.get("labelSelector", ""),
                                               q.get("fieldSelector", ""))
        if name:
            return respond(items[0])
        return respond({"kind": "EndpointSliceList", "apiVersion": endpointslices.GROUP_VERSION,
                        "metadata": {"resourceVersion": str(rev)}, "items": items})

    async def _get(self, t: Target) -> Message:
        return await self.registry.get(t.kind.resource, t.namespace, t.name)

    def _table(self, request: web.Request) -> str:
        return negotiate.wants(request.headers.get("Accept", ""), "Table", "meta.k8s.io", ("v1", "v1beta1"))

    async def get(self, request: web.Request, t: Target) -> web.Response:
        obj = await self._get(t)
        tv = self._table(request)
        if tv and not t.subresource:
            return respond(tables.table(t.kind, [obj], self.now(), version=tv,
                                        include_object=request.query.get("includeObject", "")))
        return respond(meta.to_dict(obj))

    async def list_objects(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        k = t.kind
        flt = parse_selectors(k, t.namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        limit = _int(q, "limit") or 0
        start, token_rev = _parse_continue(q.get("continue", ""))
        msgs, rev = await self.registry.list(k, t.namespace)
        if token_rev:
            rev = token_rev
        filtered = not (flt.labels.empty() and flt.fields.empty())
        items: list[Message] = []
        more = ""
        for m in msgs:
            md = m.metadata  # type: ignore[attr-defined]
            key = meta.key(k.resource, md.namespace, md.name)
            if start and key <= start:
                continue
            if filtered and not (flt.labels.matches(md.labels) and flt.fields.matches(selectors.object_fields(m))):
                continue
            if limit and len(items) == limit:
                last = items[-1].metadata  # type: ignore[attr-defined]
                more = _make_continue(meta.key(k.resource, last.namespace, last.name), rev)
                break
            items.append(m)
        list_meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if more:
            list_meta["continue"] = more
        tv = self._table(request)
        if tv:
            return respond(tables.table(k, items, self.now(), version=tv, list_meta=list_meta,
                                        include_object=q.get("includeObject", "")))
        return respond({"kind": f"{k.kind}List", "apiVersion": k.api_version, "metadata": list_meta,
                        "items": [meta.to_dict(m) for m in items]})

    async def watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        flt = parse_selectors(t.kind, t.namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        tv = self._table(request)
        encode: Callable[[Message], dict[str, Any]]
        if tv:
            def encode(m: Message) -> dict[str, Any]:
                return tables.table(t.kind, [m], self.now(), version=tv)
        else:
            encode = meta.to_dict
        initial: list[Message] | None = None
        rev = 0
        if _bool(q.get("sendInitialEvents", "")):
            # WatchList (client-go's informers since 1.35): the current
            # objects, a bookmark marking their end, then changes.
            if not _bool(q.get("allowWatchBookmarks", "")):
                raise bad_request("sendInitialEvents requires allowWatchBookmarks=true")
            msgs, rev = await self.registry.list(t.kind, t.namespace)
            initial = [m for m in msgs if flt.labels.matches(m.metadata.labels)  # type: ignore[attr-defined]
                       and flt.fields.matches(selectors.object_fields(m))]
        return await watch.serve(request, self.caches, t.kind, flt, q.get("resourceVersion", ""),
                                 _bool(q.get("allowWatchBookmarks", "")), _int(q, "timeoutSeconds"), encode,
                                 initial, rev)

    # ------------------------------------------------------------- writes

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > negotiate.MAX_BODY:
            raise _too_large()
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large() from None

    async def _object(self, request: web.Request, t: Target, warnings: list[str]) -> Message:
        """The request's body as t's kind, namespace and name checked
        against the URL (filled in when the body leaves them out)."""
        body = await self._body(request)
        doc = negotiate.parse_document(body, request.headers.get("Content-Type"))
        validation = negotiate.field_validation(request.query.get("fieldValidation", ""))
        msg = negotiate.to_message(doc, t.kind, validation, warnings)
        self._place(msg, t)
        return msg

    @staticmethod
    def _place(msg: Message, t: Target) -> None:
        md = msg.metadata  # type: ignore[attr-defined]
        if t.kind.namespaced:
            if md.namespace and md.namespace != t.namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            md.namespace = t.namespace
        if t.name:
            if md.name and md.name != t.name:
                raise bad_request(f"the name of the object ({md.name}) does not match the name on the URL "
                                  f"({t.name})")
            md.name = t.name

    async def create(self, request: web.Request, t: Target) -> web.Response:
        warnings: list[str] = []
        msg = await self._object(request, t, warnings)
        out = await self.registry.create(msg, dry_run(request.query), t.namespace)
        return respond(meta.to_dict(out), 201, warnings=warnings)

    async def update(self, request: web.Request, t: Target) -> web.Response:
        warnings: list[str] = []
        msg = await self._object(request, t, warnings)
        if t.subresource == "status":
            out = await self.registry.update_status(msg, dry_run(request.query), t.namespace)
        else:
            out = await self.registry.update(msg, dry_run(request.query), t.namespace)
        return respond(meta.to_dict(out), warnings=warnings)

    async def patch(self, request: web.Request, t: Target) -> web.Response:
        body = await self._body(request)
        ct = negotiate.media_type(request.headers.get("Content-Type"))
        validation = negotiate.field_validation(request.query.get("fieldValidation", ""))
        warnings: list[str] = []
        out = await patching.patch(self.registry, t, body, ct, dry_run(request.query), validation, warnings)
        return respond(meta.to_dict(out), warnings=warnings)

    async def update_scale(self, request: web.Request, t: Target) -> web.Response:
        body = await self._body(request)
        ct = negotiate.media_type(request.headers.get("Content-Type"))
        out = await patching.scale(self.registry, t, body, ct, request.method, dry_run(request.query))
        return respond(scale_of(out))

    async def delete(self, request: web.Request, t: Target) -> web.Response:
        opts = await self._delete_options(request)
        out = await self.registry.delete(t.kind.resource, t.namespace, t.name, opts["policy"], opts["grace"],
                                         opts["uid"], opts["rv"], opts["dry_run"])
        return respond(meta.to_dict(out))

    async def evict(self, request: web.Request, t: Target) -> web.Response:
        """POST pods/<name>/eviction (kubectl drain): a policy/v1 Eviction whose
        deleteOptions delete the pod. There are no PodDisruptionBudgets to
        refuse it (429), so an eviction is the pod's deletion."""
        body = await self._body(request)
        opts: dict[str, Any] = {}
        if body.strip() and negotiate.media_type(request.headers.get("Content-Type")) != negotiate.PROTOBUF:
            doc = negotiate.parse_document(body, request.headers.get("Content-Type"))
            if not isinstance(doc, dict) or doc.get("kind", "Eviction") != "Eviction":
                raise bad_request("the body of an eviction must be a policy/v1 Eviction")
            name = (doc.get("metadata") or {}).get("name")
            if name and name != t.name:
                raise bad_request(f"name in URL does not match name in Eviction object: {t.name} != {name}")
            opts = doc.get("deleteOptions") or {}
        o = _delete_opts(opts, request.query)
        await self.registry.delete("pods", t.namespace, t.name, o["policy"], o["grace"], o["uid"], o["rv"],
                                   o["dry_run"])
        return respond({**success(), "code": 201}, 201)

    async def delete_collection(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        opts = await self._delete_options(request)
        flt = parse_selectors(t.kind, t.namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        msgs, rev = await self.registry.list(t.kind, t.namespace)
        deleted = []
        for m in msgs:
            md = m.metadata  # type: ignore[attr-defined]
            if not (flt.labels.matches(md.labels) and flt.fields.matches(selectors.object_fields(m))):
                continue
            if t.kind.kind == "Namespace" and md.name in ("default", "kube-system", "kube-node-lease", "kube-public"):
                continue
            try:
                deleted.append(await self.registry.delete(t.kind.resource, md.namespace, md.name, opts["policy"],
                                                          opts["grace"], "", "", opts["dry_run"]))
            except ApiError as e:
                if e.reason != "NotFound":
                    raise
        return respond({"kind": f"{t.kind.kind}List", "apiVersion": t.kind.api_version,
                        "metadata": {"resourceVersion": str(rev)}, "items": [meta.to_dict(m) for m in deleted]})

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        """DeleteOptions from the body (JSON; an undecodable protobuf body
        is the defaults, as drain's fallback sends one) and the query."""
        body = await self._body(request)
        opts: dict[str, Any] = {}
        ct = negotiate.media_type(request.headers.get("Content-Type"))
        if body.strip() and ct != negotiate.PROTOBUF:
            doc = negotiate.parse_document(body, request.headers.get("Content-Type"))
            if not isinstance(doc, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            opts = doc
        return _delete_opts(opts, request.query)


def _delete_opts(opts: dict[str, Any], q: Any) -> dict[str, Any]:
    """DeleteOptions (a decoded body) with the query's parameters as defaults."""
    policy = opts.get("propagationPolicy") or q.get("propagationPolicy", "")
    orphan = opts.get("orphanDependents")
    if orphan is None and q.get("orphanDependents"):
        orphan = _bool(q["orphanDependents"])
    if not policy and orphan is not None:
        policy = "Orphan" if orphan else "Background"
    grace = opts.get("gracePeriodSeconds")
    if grace is None:
        grace = _int(q, "gracePeriodSeconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)):
        raise bad_request("gracePeriodSeconds must be an integer")
    pre = opts.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise bad_request("preconditions must be an object")
    dry = dry_run(q)
    for v in opts.get("dryRun") or []:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        dry = True
    return {"policy": policy, "grace": grace, "uid": str(pre.get("uid") or ""),
            "rv": str(pre.get("resourceVersion") or ""), "dry_run": dry}


def _too_large() -> ApiError:
    return ApiError("RequestEntityTooLarge", f"Request entity too large: limit is {negotiate.MAX_BODY}")


def _make_continue(key: str, rev: int) -> str:
    return base64.urlsafe_b64encode(dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": key})).decode()


def _parse_continue(token: str) -> tuple[str, int]:
    if not token:
        return "", 0
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(d["start"]), int(d["rv"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                          "(version meta.k8s.io/v1)") from None
