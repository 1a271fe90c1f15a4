"""The Store contract (tests/store_contract.py) against MemoryStore, the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controlplane.store import MemoryStore
from tests.store_contract import StoreContract


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    s = MemoryStore()
    yield s
    await s.close()


@pytest.fixture
def prefix() -> str:
    return "/registry/test/"


class TestMemoryStore(StoreContract):
    pass
