"""pkapi.pki (the cluster CA, serving and client certificates) and
pkapi.kubeconfig (build, merge, remove, the gRPC extension)."""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

from cryptography import x509

from pkapi import kubeconfig, pki


def test_ca_and_serving_cert_are_made_once_and_reissued_for_a_new_address(tmp_path: Path) -> None:
    crt, key = pki.ensure_serving_cert(tmp_path, ["10.231.0.1"])
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and stat.S_IMODE(os.stat(tmp_path / "ca.key").st_mode) == 0o600
    first = crt.read_bytes()
    assert {"10.231.0.1", "127.0.0.1", "localhost", "kubernetes.default.svc"} <= pki.cert_hosts(first)
    ca = (tmp_path / "ca.crt").read_bytes()
    pki.ensure_serving_cert(tmp_path, ["10.231.0.1"])
    assert crt.read_bytes() == first and (tmp_path / "ca.crt").read_bytes() == ca  # idempotent
    pki.ensure_serving_cert(tmp_path, ["10.231.0.1", "pk.example"])
    assert crt.read_bytes() != first and "pk.example" in pki.cert_hosts(crt.read_bytes())
    assert (tmp_path / "ca.crt").read_bytes() == ca
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    # a TLS stack takes them
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))


def test_client_cert_names_user_and_groups(tmp_path: Path) -> None:
    crt, _ = pki.ensure_client_cert(tmp_path, "admin", "admin", ["system:masters"])
    cert = x509.load_pem_x509_certificate(crt)
    assert cert.subject.rfc4514_string() == "CN=admin,O=system:masters"
    assert pki.ensure_client_cert(tmp_path, "admin", "admin", ["system:masters"])[0] == crt


def test_kubeconfig_merge_keeps_other_contexts_and_remove_takes_only_ours(tmp_path: Path) -> None:
    other = kubeconfig.build("kind-x", "https://127.0.0.1:9443", b"OTHER")
    lab = kubeconfig.build("pocketkube-lab", "https://10.231.0.1:6443", b"CA", grpc_server="10.231.0.1:6444")
    merged = kubeconfig.merge(other, lab)
    assert [c["name"] for c in merged["contexts"]] == ["kind-x", "pocketkube-lab"]
    assert merged["current-context"] == "pocketkube-lab"
    cl = kubeconfig.current_cluster(merged)
    assert cl is not None and kubeconfig.grpc_server_of(cl) == "10.231.0.1:6444"
    again = kubeconfig.merge(merged, kubeconfig.build("pocketkube-lab", "https://10.231.1.1:6443", b"CA2"))
    assert len(again["clusters"]) == 2 and kubeconfig.current_cluster(again)["server"] == "https://10.231.1.1:6443"  # type: ignore[index]
    p = tmp_path / "sub" / "config"
    kubeconfig.save(p, merged)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600 and kubeconfig.load(p) == merged
    gone = kubeconfig.remove(kubeconfig.load(p), "pocketkube-lab")
    assert gone["current-context"] == "" and [c["name"] for c in gone["clusters"]] == ["kind-x"]
    assert [u["name"] for u in gone["users"]] == ["kind-x"]
    assert kubeconfig.load(tmp_path / "missing") == {}
    assert kubeconfig.path({"KUBECONFIG": f"/a/b{os.pathsep}/c"}) == Path("/a/b")
