"""Fixtures of the controller unit tests."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from controlplane.testing import InProcessClient


@pytest.fixture
async def client() -> AsyncIterator[InProcessClient]:
    """An in-process API server (Registry on a MemoryStore) and its client."""
    async with InProcessClient() as c:
        yield c
