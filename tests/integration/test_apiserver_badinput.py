"""Part of the bad-input corpus through a real pk-controlplane on real etcd:
the same messages come back over gRPC (INVALID_ARGUMENT), and nothing is
written."""

from __future__ import annotations

import json

import pytest

from pkapi import manifest
from pkapi.errors import ApiError
from tests.unit.apiserver.test_badinput import cases, expectations, is_server_case, is_update

pytestmark = pytest.mark.integration


async def test_server_refuses_the_corpus_cases(client):
    server_cases = [p for p in cases() if is_server_case(p)]
    assert len(server_cases) >= 10
    for path in server_cases:
        docs = manifest.documents(path.read_text(), path.name)  # noqa: ASYNC240
        texts = [json.dumps(d.data) for d in docs]
        if is_update(path):
            await client.apply(texts[0])
            texts = texts[1:]
        _, rv_before = await client.list("namespaces")
        with pytest.raises(ApiError) as e:
            for t in texts:
                await client.apply(t)
        assert e.value.reason in ("Invalid", "BadRequest"), path.name
        for want in expectations(path):
            assert want in e.value.message, f"{path.name}: expected {want!r} in:\n{e.value.message}"
        # nothing written: no key changed since (namespaces list revision is the store's)
        _, rv_after = await client.list("namespaces")
        assert rv_after == rv_before, f"{path.name}: the store changed"
