"""The hostile-manifest corpus (tests/data/hostile): `pkctl apply -f FILE`
refuses each file with its expected message, exit 1, no traceback, before
it connects to the server (a listening socket that must see no
connection). Each NAME.yaml/.json has a sidecar NAME.expect: a `#` comment
saying what the file is, and `# expect:` lines.

The file-size limit is checked with a file made here (a corpus file of
32 MiB would weigh on the repository)."""

from __future__ import annotations

import pathlib
import re
import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from cli import util
from cli.main import cli
from pkapi import manifest

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "data" / "hostile"


def cases() -> list[pathlib.Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".json"))


def expectations(path: pathlib.Path) -> list[str]:
    lines = path.with_suffix(".expect").read_text().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("# expect:")]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port that accepts nothing by itself: after the command, a
    pending connection would mean pkctl sent something."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    yield s
    s.close()


def apply(path: pathlib.Path, server: socket.socket, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path):
    monkeypatch.setenv("PKCTL_CONFIG", str(tmp_path / "no-config"))
    host, port = server.getsockname()
    r = CliRunner().invoke(cli, ["--server", f"{host}:{port}", "apply", "-f", str(path)], prog_name="pkctl")
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    with pytest.raises(BlockingIOError):
        server.accept()  # nothing connected
    return r


def test_corpus_size() -> None:
    assert len(cases()) >= 10


@pytest.mark.parametrize("path", cases(), ids=lambda p: p.name)
def test_hostile_manifest_refused(path: pathlib.Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: pathlib.Path) -> None:
    want = expectations(path)
    assert want, f"{path.name} has no # expect: line"
    r = apply(path, listener, monkeypatch, tmp_path)
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: "), r.stderr
    for w in want:
        assert w in r.stderr, f"{path.name}: expected {w!r} in:\n{r.stderr}"


def test_file_over_the_size_limit_refused(listener: socket.socket, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: pathlib.Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.write(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: ")
        f.truncate(manifest.MAX_BYTES + 1)  # sparse: no 32 MiB written
    r = apply(big, listener, monkeypatch, tmp_path)
    assert r.exit_code == 1, r.output
    assert r.stderr == f"error: error reading {big}: the file is larger than the limit of {manifest.MAX_BYTES} bytes\n"


def test_stdin_over_the_size_limit_reads_only_the_limit() -> None:
    class Endless:
        def __init__(self) -> None:
            self.read_sizes: list[int] = []

        def read(self, n: int = -1) -> bytes:
            self.read_sizes.append(n)
            return b"#" * n

    src = Endless()
    data = util.read_limited(src)  # type: ignore[arg-type]
    assert len(data) == manifest.MAX_BYTES + 1 and src.read_sizes == [manifest.MAX_BYTES + 1]
    with pytest.raises(manifest.ManifestError, match="larger than the limit"):
        manifest.decode_text(data, "STDIN")


def test_alias_bomb_refused_before_composing_and_ordinary_aliases_load() -> None:
    # Refused from the event stream, before anything is composed or built.
    text = (CORPUS / "alias-bomb.yaml").read_text()
    with pytest.raises(manifest.ManifestError, match="excessive aliasing"):
        manifest._check_events(text)
    # ordinary anchors and merge keys still load (few aliases among many nodes)
    normal = ("defaults: &d {image: nginx, ports: [{containerPort: 80}]}\n"
              + "".join(f"c{i}: {{<<: *d, name: c{i}}}\n" for i in range(50)))
    (doc,) = manifest.load_all(normal)
    assert doc["c49"] == {"image": "nginx", "ports": [{"containerPort": 80}], "name": "c49"}


def test_depth_limit_is_exact() -> None:
    def nested(n: int) -> str:
        return "a: " + "[" * (n - 1) + "]" * (n - 1) + "\n"  # the top mapping is one level
    manifest.load_all(nested(manifest.MAX_DEPTH))
    with pytest.raises(manifest.ManifestError, match="exceeded max depth$"):
        manifest.load_all(nested(manifest.MAX_DEPTH + 1))


@pytest.mark.parametrize("data,msg", [
    (b"\xef\xbb\xbfa: 1\n", None),  # a UTF-8 BOM is fine
    ("a: café\n".encode(), None),
    (b"a: \"tab\tok\"\r\n", None),
    (b"a: \x7f\n", "U+007F"),
    (b"\xfe\xff\x00a", "UTF-16"),
    (b"a: \xc3\n", "invalid UTF-8 at byte offset 3"),
])
def test_decode_text(data: bytes, msg: str | None) -> None:
    if msg is None:
        assert manifest.decode_text(data, "f.yaml").lstrip("\ufeff") == data.decode("utf-8-sig")
    else:
        with pytest.raises(manifest.ManifestError, match=re.escape(msg)):
            manifest.decode_text(data, "f.yaml")


def test_c_loader_is_used_when_available() -> None:
    import yaml
    if getattr(yaml, "__with_libyaml__", False):
        assert issubclass(manifest._Loader, yaml.CSafeLoader)
