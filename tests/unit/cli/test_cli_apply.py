"""pkctl apply's last-applied-configuration annotation, as kubectl writes it."""

from __future__ import annotations

import json

from cli.apply import LAST_APPLIED, with_last_applied


def test_written_as_kubectl_writes_it() -> None:
    doc = {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web", "labels": {"b": "1", "a": "2"}},
           "spec": {"replicas": 2}}
    out = with_last_applied(doc, "default")
    assert out["metadata"]["annotations"][LAST_APPLIED] == (
        '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"a":"2","b":"1"},'
        '"name":"web","namespace":"default"},"spec":{"replicas":2}}\n')
    assert "annotations" not in doc["metadata"] and "namespace" not in doc["metadata"]  # input unchanged
    assert {k: v for k, v in out.items() if k != "metadata"} == {k: v for k, v in doc.items() if k != "metadata"}


def test_own_annotations_kept_go_escaping() -> None:
    doc = {"kind": "Namespace", "apiVersion": "v1",
           "metadata": {"name": "n", "annotations": {"note": "a<b & c>d \u2028 é"}}}
    out = with_last_applied(doc, "")
    ann = out["metadata"]["annotations"]
    assert ann["note"] == "a<b & c>d \u2028 é"
    text = ann[LAST_APPLIED]
    assert '"note":"a\\u003cb \\u0026 c\\u003ed \\u2028 é"' in text
    assert json.loads(text)["metadata"] == {"annotations": {"note": "a<b & c>d \u2028 é"}, "name": "n"}


def test_the_manifests_namespace_wins() -> None:
    out = with_last_applied({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "x"}}, "default")
    assert json.loads(out["metadata"]["annotations"][LAST_APPLIED])["metadata"]["namespace"] == "x"


def test_a_manifest_read_back_keeps_its_annotation() -> None:
    doc = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "annotations": {LAST_APPLIED: "{}\n"}}}
    assert with_last_applied(doc, "default") == doc
