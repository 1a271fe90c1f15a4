"""The bad-input corpus (tests/data/bad): every manifest must be refused with
its expected message(s), and nothing may be written.

Each case runs the path `pkctl apply -f` takes: pkapi.manifest (YAML/JSON,
apiVersion/kind) then the API server's Registry (strict decoding,
defaulting, validation) over a MemoryStore (a fake store: this is a unit
test). A case marked `# update:` creates its first document and applies the
second onto it. Expectations are `# expect:` header lines (a sidecar
NAME.expect for JSON files); `\\n` in an expectation stands for a newline.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from controlplane.apiserver.registry import Registry
from controlplane.store import MemoryStore
from pkapi import decode, manifest
from pkapi.errors import ApiError

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "data" / "bad"


def cases() -> list[pathlib.Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".json"))


def header(path: pathlib.Path) -> list[str]:
    src = path.with_suffix(".expect") if path.suffix == ".json" else path
    return [line for line in src.read_text().splitlines() if line.startswith("#")]


def expectations(path: pathlib.Path) -> list[str]:
    return [line.split(":", 1)[1].strip().replace("\\n", "\n") for line in header(path) if line.startswith("# expect:")]


def is_update(path: pathlib.Path) -> bool:
    return any(line.startswith("# update:") for line in header(path))


def verb(path: pathlib.Path) -> str:
    for line in header(path):
        if line.startswith("# verb:"):
            return line.split(":", 1)[1].split()[0]
    return "apply"


def is_server_case(path: pathlib.Path) -> bool:
    return any(line.startswith("# server:") for line in header(path))


async def run_case(path: pathlib.Path) -> str:
    """The error message the case produces (fails if it is accepted)."""
    text = path.read_text()  # noqa: ASYNC240 (a small local file)
    store = MemoryStore()
    registry = Registry(store)
    await registry.ensure_system_namespaces()
    before = await store.current_revision()
    try:
        docs = manifest.documents(text, str(path.name))
        msgs = [decode.decode_json(json.dumps(d.data)) for d in docs]
        if is_update(path):
            await registry.apply(msgs[0])
            msgs = msgs[1:]
        before = await store.current_revision()
        for m in msgs:
            if verb(path) == "create":
                await registry.create(m)
            else:
                await registry.apply(m)
    except (manifest.ManifestError, ApiError) as e:
        if isinstance(e, ApiError):
            assert await store.current_revision() == before, "a refused write changed the store"
        return str(e) if isinstance(e, manifest.ManifestError) else e.message
    finally:
        await registry.close()
    pytest.fail(f"{path.name} was accepted")


def test_corpus_size():
    assert len(cases()) >= 40


@pytest.mark.parametrize("path", cases(), ids=lambda p: p.stem)
async def test_bad_input(path: pathlib.Path):
    want = expectations(path)
    assert want, f"{path.name} has no # expect: line"
    got = await run_case(path)
    for w in want:
        assert w in got, f"{path.name}: expected {w!r} in:\n{got}"
