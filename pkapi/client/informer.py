"""Informer: a local, read-only cache of one resource kept current by
list + watch, with event handlers (client-go's SharedInformer, in asyncio).

    inf = Informer(client, "pods", label_selector="app=web")
    inf.add_handler(on_add=..., on_update=..., on_delete=...)
    task = asyncio.create_task(inf.run())
    await inf.wait_synced(10)
    inf.get("default", "web-1"); inf.list("default")

Behaviour:
- run() lists through ClusterClient, replaces the cache with the list, then
  watches from the list's resourceVersion, so no change between list and
  watch is missed. On ApiError Expired (the revision was compacted) it
  relists; on ServerUnreachable, or any other error, it waits with
  jittered exponential backoff (0.1 s doubling to 5 s, each up to 20% longer:
  pkapi.client.retry) and resumes the watch from the last resourceVersion it
  saw (relisting if that too has expired). It never gives up: a control
  plane that is away, slow or restarting is waited for.
- wait_synced(timeout) returns once the first list is in the cache; with a
  timeout it raises TimeoutError naming the resource (it never returns
  False). A start-up path that must outwait the control plane passes no
  timeout, or catches the TimeoutError to log and wait again.
- A relist diffs against the cache: handlers see on_add for new objects,
  on_update(old, new) for changed ones (by resourceVersion) and on_delete
  for vanished ones, exactly as if the missed events had been watched.
- Handlers are plain synchronous callbacks run on the event loop; they must
  only do cheap work (enqueue a key). An exception in a handler is logged and
  does not stop the informer. Handlers for one informer run in event order.
- Cached objects are shared and read-only: CopyFrom before changing one.
- preload(objs) fills the cache as a list would and marks it synced,
  without run(): controller unit tests (sample-controller's pre-filled
  indexers) start from `Informer.synced_with(client, resource, objs)`.
- Indexes: add_index(name, fn) with fn(obj) -> list of index values, then
  by_index(name, value) returns the objects cheaply (pods by node name...).

Concurrency: one informer per resource/selector per process; all access on
one event loop, so the cache never changes during a synchronous read.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from typing import Any, Callable, Iterable

from google.protobuf.message import Message

from pkapi.client.retry import RetryDelay
from pkapi.errors import ApiError, has_reason, is_expired

log = logging.getLogger(__name__)

AddHandler = Callable[[Any], None]
UpdateHandler = Callable[[Any, Any], None]
DeleteHandler = Callable[[Any], None]
IndexFunc = Callable[[Any], Iterable[str]]


def _key(obj: Message) -> tuple[str, str]:
    md = obj.metadata  # type: ignore[attr-defined]
    return md.namespace, md.name


class Informer:
    def __init__(
        self,
        client: Any,
        resource: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._cache: dict[tuple[str, str], Any] = {}
        self._handlers: builtins.list[tuple[AddHandler | None, UpdateHandler | None, DeleteHandler | None]] = []
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, dict[tuple[str, str], Any]]] = {}
        self._synced = asyncio.Event()
        self.resource_version = ""
        # How many times run() (re)listed: for tests and metrics.
        self.lists = 0

    @classmethod
    def synced_with(cls, client: Any, resource: str, objs: Iterable[Any] = (), namespace: str = "") -> Informer:
        """An informer whose cache already holds objs and counts as synced
        (for tests: run() is never needed)."""
        inf = cls(client, resource, namespace)
        inf.preload(objs)
        return inf

    def preload(self, objs: Iterable[Any], resource_version: str = "") -> None:
        """Make the cache hold exactly objs, as a relist would (handlers see
        the adds, updates and deletes), and mark it synced."""
        self._replace(builtins.list(objs))
        if resource_version:
            self.resource_version = resource_version
        self._synced.set()

    # ----------------------------------------------------------- read side

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait for the first list to be in the cache (None: for as long as
        it takes). Raises TimeoutError naming the resource when it does not
        happen within timeout; returns nothing, so a caller cannot mistake
        the outcome for a flag."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"informer for {self.resource}: cache not synced after {timeout}s") from None

    def get(self, namespace: str, name: str) -> Any | None:
        return self._cache.get((namespace, name))

    def list(self, namespace: str | None = None) -> list[Any]:
        if namespace is None:
            return list(self._cache.values())
        return [o for (ns, _), o in self._cache.items() if ns == namespace]

    def keys(self) -> builtins.list[str]:
        return [f"{ns}/{n}" if ns else n for ns, n in self._cache]

    def __len__(self) -> int:
        return len(self._cache)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Add an index (idempotent by name: controllers sharing an informer
        may each ask for the same one)."""
        if name in self._indexers:
            return
        self._indexers[name] = fn
        idx: dict[str, dict[tuple[str, str], Any]] = {}
        for k, obj in self._cache.items():
            for v in fn(obj):
                idx.setdefault(v, {})[k] = obj
        self._indexes[name] = idx

    def by_index(self, name: str, value: str) -> builtins.list[Any]:
        return list(self._indexes[name].get(value, {}).values())

    def index_values(self, name: str) -> builtins.list[str]:
        """Every value the index currently holds objects under."""
        return list(self._indexes[name])

    def add_handler(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register callbacks; objects already cached are replayed to on_add."""
        self._handlers.append((on_add, on_update, on_delete))
        if on_add is not None:
            for obj in list(self._cache.values()):
                self._call(on_add, obj)

    # ---------------------------------------------------------- write side

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a handler bug must not stop the informer
            log.exception("informer %s: event handler failed", self.resource)

    def _index_remove(self, k: tuple[str, str], obj: Any) -> None:
        for name, fn in self._indexers.items():
            idx = self._indexes[name]
            for v in fn(obj):
                bucket = idx.get(v)
                if bucket is not None:
                    bucket.pop(k, None)
                    if not bucket:
                        del idx[v]

    def _index_add(self, k: tuple[str, str], obj: Any) -> None:
        for name, fn in self._indexers.items():
            idx = self._indexes[name]
            for v in fn(obj):
                idx.setdefault(v, {})[k] = obj

    def _upsert(self, obj: Any) -> None:
        k = _key(obj)
        old = self._cache.get(k)
        if old is not None:
            self._index_remove(k, old)
        self._cache[k] = obj
        self._index_add(k, obj)
        if old is None:
            for on_add, _, _ in self._handlers:
                if on_add is not None:
                    self._call(on_add, obj)
        else:
            for _, on_update, _ in self._handlers:
                if on_update is not None:
                    self._call(on_update, old, obj)

    def _remove(self, obj: Any) -> None:
        k = _key(obj)
        old = self._cache.pop(k, None)
        if old is not None:
            self._index_remove(k, old)
        final = obj if obj is not None else old
        for _, _, on_delete in self._handlers:
            if on_delete is not None:
                self._call(on_delete, final)

    def _replace(self, items: builtins.list[Any]) -> None:
        fresh = {_key(o): o for o in items}
        for k in list(self._cache):
            if k not in fresh:
                self._remove(self._cache[k])
        for k, obj in fresh.items():
            old = self._cache.get(k)
            if old is not None and old.metadata.resource_version == obj.metadata.resource_version:
                continue
            self._upsert(obj)

    # ----------------------------------------------------------------- run

    async def _list(self) -> None:
        items, rv = await self.client.list(
            self.resource, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
        )
        self.lists += 1
        self._replace(items)
        self.resource_version = rv
        self._synced.set()

    async def _watch(self) -> None:
        async for typ, obj in self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            allow_bookmarks=True,
        ):
            rv = obj.metadata.resource_version
            if typ == "BOOKMARK":
                pass
            elif typ == "DELETED":
                self._remove(obj)
            else:  # ADDED / MODIFIED: the cache decides which it is for us
                self._upsert(obj)
            if rv:
                self.resource_version = rv

    async def run(self) -> None:
        """List and watch forever (until cancelled)."""
        delay = RetryDelay(0.1, 5.0)
        need_list = True
        while True:
            watched_from: str | None = None
            try:
                if need_list:
                    await self._list()
                    need_list = False
                watched_from = self.resource_version
                await self._watch()
                # The stream ended cleanly (server shutting down): resume from
                # the last resourceVersion, after a beat so a server that
                # closes every stream at once cannot make us spin.
                delay.reset()
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                raise
            except ApiError as err:
                if is_expired(err):
                    log.info("informer %s: %s; relisting", self.resource, err.message)
                    need_list = True
                    continue
                wait = delay.next()
                log.warning("informer %s: %s; retrying in %.1fs", self.resource, err, wait)
                # The server (or its etcd) is away for a while: the revision
                # is still good, so the watch resumes from it (a compaction
                # meanwhile answers Expired, and that relists). Anything else
                # (a refused list or watch) lists again.
                if not (has_reason(err, "ServiceUnavailable") and self.synced and self.resource_version):
                    need_list = True
                await asyncio.sleep(wait)
            except Exception as err:  # ServerUnreachable and transport errors
                if watched_from is not None and self.resource_version != watched_from:
                    delay.reset()  # the watch was delivering: this is a new outage
                wait = delay.next()
                log.info("informer %s: %s; reconnecting in %.1fs", self.resource, err, wait)
                await asyncio.sleep(wait)
