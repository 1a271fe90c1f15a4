"""The Runtime contract (tests.unit.agent.test_fake_runtime.py) on the real Docker Engine."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from agent.runtime.docker_runtime import DockerRuntime
from tests.unit.agent.test_fake_runtime import RuntimeContract

pytestmark = pytest.mark.integration


class TestDockerRuntime(RuntimeContract):
    @pytest.fixture
    async def runtime(self, docker_host: str) -> AsyncIterator[DockerRuntime]:
        rt = DockerRuntime(docker_host)
        yield rt
        await rt.close()
