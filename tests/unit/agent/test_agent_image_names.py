"""Image names as DockerRuntime.pull reads them (pkapi/imageref.py,
agent/runtime/docker_runtime.py) and the image pull back-off. Pure."""

from __future__ import annotations

import pytest

from agent.runtime.docker_runtime import mirror_host
from pkapi.imageref import hub_path, local_registry, split_ref


@pytest.mark.parametrize("ref,want", [
    ("nginx", ("nginx", "latest")),
    ("nginx:1.23", ("nginx", "1.23")),
    ("localhost:5100/app", ("localhost:5100/app", "latest")),
    ("localhost:5100/team/app:2", ("localhost:5100/team/app", "2")),
    ("nginx@sha256:abc", ("nginx", "sha256:abc")),
])
def test_split_ref(ref: str, want: tuple[str, str]) -> None:
    assert split_ref(ref) == want


@pytest.mark.parametrize("repo,want", [
    ("nginx", "library/nginx"),
    ("pocketkube/hello", "pocketkube/hello"),
    ("docker.io/library/nginx", "library/nginx"),
    ("docker.io/nginx", "library/nginx"),
    ("index.docker.io/pocketkube/hello", "pocketkube/hello"),
    ("localhost:5100/app", None),
    ("localhost/app", None),
    ("registry.example:5000/team/app", None),
    ("ghcr.io/team/app", None),
])
def test_hub_path(repo: str, want: str | None) -> None:
    assert hub_path(repo) == want


def test_mirror_host() -> None:
    assert mirror_host({"RegistryConfig": {"Mirrors": ["http://10.231.0.1:5100/"]}}) == "10.231.0.1:5100"
    assert mirror_host({"RegistryConfig": {"Mirrors": []}}) == ""
    assert mirror_host({}) == ""


@pytest.mark.parametrize("host,want", [
    ("localhost:5100", True), ("localhost", True), ("127.0.0.1:5000", True),
    ("registry.example:5000", False), ("10.231.0.1:5100", False), ("ghcr.io", False),
])
def test_local_registry(host: str, want: bool) -> None:
    assert local_registry(host) is want


@pytest.mark.parametrize("preset", ["lab", "kubernetes"])
def test_image_pulls_back_off_from_10_s_in_both_presets(preset: str) -> None:
    from agent.config import AgentConfig
    from agent.pods.context import PodTiming
    from agent.pods.record import ContainerRecord

    cfg = AgentConfig()
    cfg.apply_preset(preset)
    t = PodTiming.of(cfg)
    rec = ContainerRecord.new(t.backoff_initial, t.backoff_cap, t.pull_backoff_initial)
    assert rec.pull.initial == 10.0 and rec.pull.cap == 300.0
    assert rec.crash.initial == cfg.backoff_initial  # restarts keep the preset's
    # 10 s, 20 s, 40 s ... 5 min
    delays = []
    for i in range(7):
        rec.pull.failed(float(i))
        delays.append(rec.pull.delay)
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
