"""Watch over HTTP: a chunked stream of JSON lines, one event each,
`{"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR", "object": {...}}`.

Served by the watch cache (WatchCache.stream: a whole revision's events
arrive together and are written in one chunk, so a client that resumes
from the last resourceVersion it read never misses the rest of a
revision). No resourceVersion (or "0") starts with an ADDED event per
current object; a compacted one ends the stream with an ERROR event
carrying a 410 Expired Status, as kube-apiserver does. `timeoutSeconds`
ends the stream cleanly; a client that goes away cancels the handler
(the runner's handler_cancellation), which unsubscribes the watcher.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from aiohttp import web
from google.protobuf.message import Message

from controlplane.apiserver.http.status import status
from controlplane.apiserver.registry import parse_resource_version
from controlplane.apiserver.watchcache import Filter, WatchCaches
from pkapi import meta
from pkapi.errors import ApiError
from pkapi.meta import Kind


def _line(type_: str, obj: Any) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _bookmark(kind: Kind, rv: str, initial_end: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"resourceVersion": rv}
    if initial_end:
        md["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": md}


INITIAL_EVENTS_END = "k8s.io/initial-events-end"


async def serve(request: web.Request, caches: WatchCaches, kind: Kind, flt: Filter, resource_version: str,
                bookmarks: bool, timeout: int | None, encode: Callable[[Message], dict[str, Any]],
                initial: list[Message] | None = None, initial_rv: int = 0) -> web.StreamResponse:
    """`initial` (a list made at `initial_rv`, already filtered) is a
    WatchList request's (sendInitialEvents=true): its objects as ADDED, then
    a BOOKMARK annotated k8s.io/initial-events-end, then the changes after
    initial_rv; client-go's informers wait for that bookmark to be synced."""
    if initial is not None:
        rv: int | None = initial_rv
    else:
        rv = None if resource_version in ("", "0") else parse_resource_version(resource_version)
    cache = await caches.get(kind)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if initial is not None:
        await resp.write(b"".join([_line("ADDED", encode(m)) for m in initial]) +
                         _line("BOOKMARK", _bookmark(kind, str(initial_rv), initial_end=True)))
    stream = cache.stream(flt, rv, bookmarks)
    try:
        async with asyncio.timeout(timeout if timeout and timeout > 0 else None):
            async for evs in stream:
                out = []
                for ev in evs:
                    e = ev.event
                    msg = meta.unwrap(e.object)
                    if e.type == "BOOKMARK":
                        obj = _bookmark(kind, msg.metadata.resource_version)  # type: ignore[attr-defined]
                    else:
                        obj = encode(msg)
                    out.append(_line(e.type, obj))
                await resp.write(b"".join(out))
    except TimeoutError:
        pass
    except ApiError as e:
        await resp.write(_line("ERROR", status(e)))
    except ConnectionResetError:
        return resp
    finally:
        await stream.aclose()
    await resp.write_eof()
    return resp
