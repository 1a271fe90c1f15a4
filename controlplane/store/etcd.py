"""EtcdStore: the Store protocol on etcd v3 (gRPC), through aetcd's
generated etcd API (aetcd.rpc: the stubs and messages of etcd's rpc.proto).

Why aetcd.rpc and not aetcd.Client: the Client's Watcher multiplexes every
watch over one stream, creates them one at a time, and on a stream break
hands the error to each callback and stops (no resume); its put has no
ignore_lease and its calls no per-call deadline or retry. Each of those is
a line here on the raw stubs, so this module owns its channel and uses
aetcd only for etcd's API definitions (python-etcd3 does not import on
protobuf 7).

Guarantees:
- Every write is one etcd transaction guarded by a compare: create on
  create_revision == 0, update/delete on mod_revision == expected (or on
  existence when expected is 0). A failed compare reads the key in the same
  transaction, so the error says what is there now: KeyExistsError,
  KeyNotFoundError or ConflictError(current_revision).
- list() reads in pages, all at the revision of the first page, and returns
  that revision: a watch from it + 1 misses nothing.
- watch() is one etcd watch stream per call. It remembers the revision after
  the last event it delivered (and after etcd's progress notifications) and,
  when the stream breaks (etcd restart, connection loss), re-creates the
  watch from there: no event lost, none delivered twice, always in revision
  order. A start revision etcd has compacted raises CompactedError.
- Transient unavailability (gRPC UNAVAILABLE / deadline exceeded) is retried
  with backoff for up to retry_timeout seconds, then UnavailableError. A
  write whose reply was lost may have been applied; its retry then reports
  Conflict/KeyExists, never a silent double write (every write is a CAS).

Concurrency: an EtcdStore is used from one event loop (its gRPC channel is
created lazily in that loop). Any number of concurrent operations and
watches may share it.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
from aetcd import rpc

from controlplane.store.base import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    StoreError,
    UnavailableError,
    check_update_many,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# gRPC codes after which the same request may succeed once etcd is back.
_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
# ... and, on a watch stream, what a server going away mid-stream looks like.
_STREAM_BROKEN = _TRANSIENT | {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}

_LIST_PAGE = 5000

# create_many/update_many: items per transaction (etcd's --max-txn-ops default is 128)
# and bytes per transaction (its --max-request-bytes default is 1.5 MiB).
_TXN_OPS = 100
_TXN_BYTES = 1024 * 1024

_CHANNEL_OPTIONS = [
    # Lists of many objects are big; etcd itself caps replies at 2 GiB.
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    # Reconnect fast after an etcd restart (gRPC's default backoff reaches
    # 120 s, far beyond our retry window).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Notice a silently dead connection under a long watch. etcd rejects
    # pings more often than every 5 s, and pings without active calls.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
]


class _StreamBroken(Exception):
    """The watch stream ended or failed in a way a re-created watch fixes."""


def parse_endpoints(endpoints: str | list[str]) -> list[tuple[str, int]]:
    """"http://127.0.0.1:2379,http://10.0.0.2:2379" -> [(host, port), ...]."""
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    out: list[tuple[str, int]] = []
    for raw in (i.strip() for i in items):
        if not raw:
            continue
        url = urlsplit(raw if "://" in raw else "http://" + raw)
        if url.scheme != "http":
            raise ValueError(f"etcd endpoint {raw!r}: only http:// endpoints are supported")
        if not url.hostname:
            raise ValueError(f"etcd endpoint {raw!r}: no host")
        out.append((url.hostname, url.port or 2379))
    if not out:
        raise ValueError("no etcd endpoints given")
    return out


def _grpc_target(addrs: list[tuple[str, int]]) -> str:
    def is_ipv4(h: str) -> bool:
        try:
            return isinstance(ipaddress.ip_address(h), ipaddress.IPv4Address)
        except ValueError:
            return False

    if len(addrs) == 1:
        host, port = addrs[0]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if all(is_ipv4(h) for h, _ in addrs):
        # gRPC's pick_first tries them in order: failover between members.
        return "ipv4:" + ",".join(f"{h}:{p}" for h, p in addrs)
    log.warning("several etcd endpoints that are not all IPv4 addresses: using only %s:%s", *addrs[0])
    return f"{addrs[0][0]}:{addrs[0][1]}"


def _prefix_end(prefix: bytes) -> bytes:
    """The range_end that makes [prefix, end) every key starting with prefix."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"  # empty prefix (or all 0xff): every key


def _kv(kv: Any) -> KV:
    return KV(kv.key.decode(), bytes(kv.value), kv.mod_revision, kv.create_revision, kv.lease)


_Item = TypeVar("_Item", bound=tuple[Any, ...])


def _txn_chunks(items: Sequence[_Item]) -> list[list[_Item]]:
    """create_many/update_many items ((key, value, ...)) in chunks of at
    most _TXN_OPS items and about _TXN_BYTES, one etcd transaction each.
    Each item's key is sent twice: in its compare and in its put."""
    chunks: list[list[_Item]] = []
    chunk: list[_Item] = []
    size = 0
    for item in items:
        item_size = 2 * len(item[0]) + len(item[1])
        if chunk and (len(chunk) >= _TXN_OPS or size + item_size > _TXN_BYTES):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        chunks.append(chunk)
    return chunks


def _event(ev: Any, last: bool) -> Event:
    prev = bytes(ev.prev_kv.value) if ev.HasField("prev_kv") else None
    if ev.type == rpc.Event.DELETE:
        # A delete's kv has no value; the event carries the value it removed.
        return Event("DELETE", ev.kv.key.decode(), prev or b"", ev.kv.mod_revision, prev_value=prev,
                     last_in_revision=last)
    return Event("PUT", ev.kv.key.decode(), bytes(ev.kv.value), ev.kv.mod_revision, prev_value=prev,
                 last_in_revision=last)


class EtcdStore:
    """The Store protocol on etcd (see the module docstring)."""

    def __init__(
        self,
        endpoints: str | list[str],
        *,
        retry_timeout: float = 10.0,
        op_timeout: float = 5.0,
        list_page_size: int = _LIST_PAGE,
    ) -> None:
        self.endpoints = parse_endpoints(endpoints)
        self.list_page_size = list_page_size
        self._target = _grpc_target(self.endpoints)
        self.retry_timeout = retry_timeout
        self.op_timeout = op_timeout
        self._channel: grpc.aio.Channel | None = None
        self._kv_stub: Any = None
        self._lease_stub: Any = None
        self._watch_stub: Any = None
        self._closed = False

    def __repr__(self) -> str:
        return f"EtcdStore({self._target!r})"

    # -- plumbing ------------------------------------------------------------

    def _connect(self) -> None:
        if self._closed:
            raise StoreError("store is closed")
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self._target, options=_CHANNEL_OPTIONS)
            self._kv_stub = rpc.KVStub(self._channel)
            self._lease_stub = rpc.LeaseStub(self._channel)
            self._watch_stub = rpc.WatchStub(self._channel)

    async def _retry(self, what: str, attempt: Callable[[float], Awaitable[T]]) -> T:
        """Run attempt(timeout) until it succeeds, fails for good, or etcd
        stayed unreachable for retry_timeout."""
        self._connect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_timeout
        delay = 0.05
        while True:
            remaining = deadline - loop.time()
            try:
                return await attempt(max(0.05, min(self.op_timeout, remaining)))
            except asyncio.CancelledError:
                self._raise_if_closed_under_us()
                raise
            except grpc.aio.AioRpcError as e:
                if self._closed:
                    raise StoreError("store is closed") from e
                if e.code() not in _TRANSIENT:
                    raise
                if loop.time() + delay >= deadline:
                    raise UnavailableError(
                        f"etcd at {self._target} unavailable for {self.retry_timeout:g}s ({what}): {e.details()}"
                    ) from e
                log.debug("etcd %s: %s; retrying in %.2fs", what, e.details(), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _unary(self, what: str, method_name: str, stub: str, request: Any) -> Any:
        async def attempt(timeout: float) -> Any:
            method = getattr(getattr(self, stub), method_name)
            return await method(request, timeout=timeout, wait_for_ready=True)

        return await self._retry(what, attempt)

    async def _txn(self, what: str, compare: list[Any], success: list[Any], failure: list[Any]) -> Any:
        req = rpc.TxnRequest(compare=compare, success=success, failure=failure)
        return await self._unary(what, "Txn", "_kv_stub", req)

    def _raise_if_closed_under_us(self) -> None:
        """close() cancels the channel's calls, which surfaces in their
        callers as CancelledError; turn that (and only that: not a
        cancellation of the caller's own task) into StoreError."""
        task = asyncio.current_task()
        if self._closed and (task is None or task.cancelling() == 0):
            raise StoreError("store is closed") from None

    @staticmethod
    def _store_error(e: grpc.aio.AioRpcError, what: str) -> StoreError:
        return StoreError(f"etcd {what}: {e.details()} ({e.code().name})")

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str) -> KV | None:
        try:
            resp = await self._unary(f"get {key}", "Range", "_kv_stub", rpc.RangeRequest(key=key.encode()))
        except grpc.aio.AioRpcError as e:
            raise self._store_error(e, f"get {key}") from e
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def list(self, prefix: str) -> tuple[list[KV], int]:
        key, end = prefix.encode(), _prefix_end(prefix.encode())
        for _ in range(3):
            items: list[KV] = []
            revision = 0
            start = key
            try:
                while True:
                    req = rpc.RangeRequest(key=start, range_end=end, limit=self.list_page_size, revision=revision)
                    resp = await self._unary(f"list {prefix}", "Range", "_kv_stub", req)
                    if not revision:
                        revision = resp.header.revision
                    items.extend(_kv(kv) for kv in resp.kvs)
                    if not resp.more or not resp.kvs:
                        return items, revision
                    start = resp.kvs[-1].key + b"\0"
            except grpc.aio.AioRpcError as e:
                # Compacted between two pages of a long list: read it again.
                if e.code() == grpc.StatusCode.OUT_OF_RANGE and revision:
                    continue
                raise self._store_error(e, f"list {prefix}") from e
        raise StoreError(f"etcd list {prefix}: compacted under every attempt")

    async def current_revision(self) -> int:
        req = rpc.RangeRequest(key=b"\0", count_only=True)
        try:
            resp = await self._unary("current revision", "Range", "_kv_stub", req)
        except grpc.aio.AioRpcError as e:
            raise self._store_error(e, "current revision") from e
        return int(resp.header.revision)

    # -- writes --------------------------------------------------------------

    async def create(self, key: str, value: bytes, lease: int = 0) -> int:
        k = key.encode()
        try:
            resp = await self._txn(
                f"create {key}",
                compare=[rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, lease=lease))],
                failure=[],
            )
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise StoreError(f"create {key}: lease {lease:x} not found") from e
            raise self._store_error(e, f"create {key}") from e
        if not resp.succeeded:
            raise KeyExistsError(key)
        return int(resp.header.revision)

    async def create_many(self, items: Sequence[tuple[str, bytes]]) -> builtins.list[int | None]:
        """One etcd transaction per chunk of items: an outer transaction
        with no compare whose success ops are one nested transaction per
        key (etcd >= 3.3), each guarded by create_revision == 0, so one
        existing key fails only its own item. Chunks keep within etcd's
        --max-txn-ops (128) and request size (1.5 MiB) limits."""
        if len({key for key, _ in items}) != len(items):
            raise StoreError("create_many: a key is given twice")
        out: list[int | None] = []
        for chunk in _txn_chunks(items):
            out.extend(await self._create_chunk(chunk))
        return out

    async def _create_chunk(self, items: builtins.list[tuple[str, bytes]]) -> builtins.list[int | None]:
        if len(items) == 1:  # a plain create is cheaper for etcd than a nested one
            try:
                return [await self.create(*items[0])]
            except KeyExistsError:
                return [None]
        ops = []
        for key, value in items:
            k = key.encode()
            ops.append(rpc.RequestOp(request_txn=rpc.TxnRequest(
                compare=[rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))])))
        return await self._nested(f"create {len(items)} keys ({items[0][0]}...)", ops)

    async def _nested(self, what: str, ops: builtins.list[Any]) -> builtins.list[int | None]:
        """One transaction of nested ones, each applied on its own guard:
        per op the shared revision, or None where its guard failed."""
        try:
            resp = await self._txn(what, compare=[], success=ops, failure=[])
        except grpc.aio.AioRpcError as e:
            raise self._store_error(e, what) from e
        rev = int(resp.header.revision)
        return [rev if r.response_txn.succeeded else None for r in resp.responses]

    async def _guarded(self, what: str, key: str, expected_revision: int, op: Any) -> int:
        k = key.encode()
        if expected_revision:
            guard = rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=expected_revision)
        else:
            guard = rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.GREATER, create_revision=0)
        try:
            resp = await self._txn(
                f"{what} {key}",
                compare=[guard],
                success=[op],
                failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True))],
            )
        except grpc.aio.AioRpcError as e:
            raise self._store_error(e, f"{what} {key}") from e
        if resp.succeeded:
            return int(resp.header.revision)
        current = resp.responses[0].response_range.kvs
        if not current:
            raise KeyNotFoundError(key)
        raise ConflictError(key, current[0].mod_revision)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        # ignore_lease: the key keeps the lease it was created with.
        put = rpc.PutRequest(key=key.encode(), value=value, ignore_lease=True)
        return await self._guarded("update", key, expected_revision, rpc.RequestOp(request_put=put))

    async def update_many(self, items: Sequence[tuple[str, bytes, int]]) -> builtins.list[int | None]:
        """As create_many: one etcd transaction per chunk, one nested
        transaction per key, each guarded by mod_revision == expected, so a
        missing or changed key fails only its own item. A chunk whose reply
        was lost and that is retried after it was applied reports its items
        as None (their revisions moved): never a silent double write."""
        check_update_many(items)
        out: list[int | None] = []
        for chunk in _txn_chunks(items):
            out.extend(await self._update_chunk(chunk))
        return out

    async def _update_chunk(self, items: builtins.list[tuple[str, bytes, int]]) -> builtins.list[int | None]:
        if len(items) == 1:  # a plain update is cheaper for etcd than a nested one
            try:
                return [await self.update(*items[0])]
            except (KeyNotFoundError, ConflictError):
                return [None]
        ops = []
        for key, value, expected in items:
            k = key.encode()
            ops.append(rpc.RequestOp(request_txn=rpc.TxnRequest(
                compare=[rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=expected)],
                # ignore_lease: the key keeps the lease it was created with.
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, ignore_lease=True))])))
        return await self._nested(f"update {len(items)} keys ({items[0][0]}...)", ops)

    async def delete(self, key: str, expected_revision: int = 0) -> int:
        op = rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key.encode()))
        return await self._guarded("delete", key, expected_revision, op)

    async def compact(self, revision: int) -> None:
        # physical: return once etcd has compacted, so what follows sees it.
        req = rpc.CompactionRequest(revision=revision, physical=True)
        try:
            await self._unary(f"compact {revision}", "Compact", "_kv_stub", req)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in (e.details() or ""):
                raise CompactedError(revision) from e
            raise self._store_error(e, f"compact {revision}") from e

    # -- watch ---------------------------------------------------------------

    async def watch(self, prefix: str, start_revision: int, prev_kv: bool = True) -> AsyncIterator[Event]:
        """See Store.watch and the module docstring. start_revision 0 means
        "from the next write"."""
        key, end = prefix.encode(), _prefix_end(prefix.encode())
        next_rev = start_revision if start_revision > 0 else await self.current_revision() + 1
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        delay = 0.05
        while True:
            self._connect()
            call = self._watch_stub.Watch(wait_for_ready=True)
            try:
                create = rpc.WatchCreateRequest(
                    key=key, range_end=end, start_revision=next_rev, prev_kv=prev_kv, progress_notify=True)
                try:
                    async with asyncio.timeout(self.op_timeout):
                        await call.write(rpc.WatchRequest(create_request=create))
                        first = await call.read()
                except TimeoutError as e:
                    raise _StreamBroken("watch not created in time") from e
                if first is not grpc.aio.EOF and first.created and not first.canceled:
                    failing_since, delay = None, 0.05
                resp = first
                while True:
                    if resp is grpc.aio.EOF:
                        raise _StreamBroken("watch stream ended")
                    if resp.compact_revision:
                        raise CompactedError(resp.compact_revision)
                    if resp.canceled:
                        raise StoreError(f"etcd canceled the watch on {prefix}: {resp.cancel_reason}")
                    if resp.events:
                        batch_start = next_rev
                        evs = resp.events
                        for i, ev in enumerate(evs):
                            # A re-created watch starts at next_rev, so this
                            # only guards against a server replaying.
                            if ev.kv.mod_revision >= batch_start:
                                yield _event(ev, i + 1 == len(evs) or evs[i + 1].kv.mod_revision != ev.kv.mod_revision)
                        # All events of one revision come in one response, so
                        # resuming after the last one splits no revision.
                        next_rev = max(next_rev, resp.events[-1].kv.mod_revision + 1)
                    elif not resp.created:
                        # Progress notification: nothing up to header.revision
                        # is pending for us. Moving on keeps a quiet watch
                        # resumable after compaction passes its last event.
                        next_rev = max(next_rev, resp.header.revision + 1)
                    resp = await call.read()
            except asyncio.CancelledError:
                self._raise_if_closed_under_us()
                raise
            except (grpc.aio.AioRpcError, _StreamBroken) as e:
                if self._closed:
                    raise StoreError("store is closed") from e
                if isinstance(e, grpc.aio.AioRpcError) and e.code() not in _STREAM_BROKEN:
                    raise self._store_error(e, f"watch {prefix}") from e
                now = loop.time()
                if failing_since is None:
                    failing_since = now
                elif now - failing_since > self.retry_timeout:
                    detail = e.details() if isinstance(e, grpc.aio.AioRpcError) else str(e)
                    raise UnavailableError(
                        f"etcd at {self._target} unavailable for {self.retry_timeout:g}s (watch {prefix}): {detail}"
                    ) from e
                log.debug("etcd watch %s broke (%s); resuming from revision %d", prefix, e, next_rev)
            finally:
                call.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    # -- leases --------------------------------------------------------------

    async def grant_lease(self, ttl_seconds: int) -> int:
        req = rpc.LeaseGrantRequest(TTL=int(ttl_seconds), ID=0)
        try:
            resp = await self._unary("grant lease", "LeaseGrant", "_lease_stub", req)
        except grpc.aio.AioRpcError as e:
            raise self._store_error(e, "grant lease") from e
        if resp.error:
            raise StoreError(f"etcd grant lease: {resp.error}")
        return int(resp.ID)

    async def keepalive(self, lease: int) -> bool:
        async def attempt(timeout: float) -> bool:
            call = self._lease_stub.LeaseKeepAlive(timeout=timeout, wait_for_ready=True)
            try:
                await call.write(rpc.LeaseKeepAliveRequest(ID=lease))
                resp = await call.read()
            finally:
                call.cancel()
            if resp is grpc.aio.EOF:
                raise StoreError(f"etcd keepalive {lease:x}: stream ended without a reply")
            # TTL <= 0: the lease had already expired (or never existed).
            return bool(resp.TTL > 0)

        try:
            return await self._retry(f"keepalive {lease:x}", attempt)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise self._store_error(e, f"keepalive {lease:x}") from e

    async def revoke(self, lease: int) -> None:
        try:
            await self._unary(f"revoke {lease:x}", "LeaseRevoke", "_lease_stub", rpc.LeaseRevokeRequest(ID=lease))
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise StoreError(f"revoke: lease {lease:x} not found") from e
            raise self._store_error(e, f"revoke {lease:x}") from e

    async def close(self) -> None:
        self._closed = True
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()
