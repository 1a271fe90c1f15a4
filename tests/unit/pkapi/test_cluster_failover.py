"""ClusterClient with several control planes: the target it dials and
which calls it sends again after the connection broke (on fakes: no server)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from pkapi.client.cluster import ClusterClient, ServerUnreachable, endpoints, grpc_target
from pkapi.errors import ApiError


def test_one_address_is_dialed_as_given() -> None:
    assert grpc_target("cp.example:6444") == "cp.example:6444"


def test_several_addresses_become_one_ipv4_target() -> None:
    assert grpc_target("10.231.0.1:6444, 10.231.0.2:6444,localhost:7") == \
        "ipv4:10.231.0.1:6444,10.231.0.2:6444,127.0.0.1:7"
    assert endpoints(" a:1 ,, b:2 ") == ["a:1", "b:2"]


@pytest.mark.parametrize("bad, why", [
    ("cp1:6444,cp2:6444", "IPv4"),
    ("10.0.0.1:6444,10.0.0.2", "no port"),
    (" , ", "no control plane address"),
])
def test_bad_address_lists_are_refused_with_the_reason(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        grpc_target(bad)


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class FakeMethod:
    """A stub's multi-callable that fails `failures` times, then answers."""

    def __init__(self, name: str, failures: list[grpc.aio.AioRpcError]) -> None:
        self._method = f"/pkapi.v1.ResourceService/{name}".encode()
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self, request: Any, timeout: float | None = None) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "answer"


async def test_a_read_is_sent_again_to_the_next_endpoint() -> None:
    async with ClusterClient("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3") as c:
        m = FakeMethod("Get", [_error(grpc.StatusCode.UNAVAILABLE, "Socket closed")] * 2)
        assert await c._call(m, None) == "answer"
        assert m.calls == 3


async def test_retries_stop_after_one_per_endpoint() -> None:
    async with ClusterClient("127.0.0.1:1,127.0.0.1:2") as c:
        m = FakeMethod("List", [_error(grpc.StatusCode.UNAVAILABLE, "connect failed")] * 5)
        with pytest.raises(ServerUnreachable):
            await c._call(m, None)
        assert m.calls == 2


async def test_a_create_is_never_sent_twice() -> None:
    async with ClusterClient("127.0.0.1:1,127.0.0.1:2") as c:
        m = FakeMethod("Create", [_error(grpc.StatusCode.UNAVAILABLE, "Socket closed")])
        with pytest.raises(ServerUnreachable):
            await c._call(m, None)
        assert m.calls == 1


async def test_a_servers_own_unavailable_answer_is_not_a_failover() -> None:
    async with ClusterClient("127.0.0.1:1,127.0.0.1:2") as c:
        m = FakeMethod("Get", [_error(grpc.StatusCode.UNAVAILABLE, "[ServiceUnavailable] etcd is away")])
        with pytest.raises(ApiError):
            await c._call(m, None)
        assert m.calls == 1


async def test_one_endpoint_sends_once() -> None:
    async with ClusterClient("127.0.0.1:1") as c:
        m = FakeMethod("Get", [_error(grpc.StatusCode.UNAVAILABLE, "Socket closed")])
        with pytest.raises(ServerUnreachable):
            await c._call(m, None)
        assert m.calls == 1
