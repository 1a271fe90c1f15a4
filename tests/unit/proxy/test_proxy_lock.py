"""The service proxy's share lock (agent/proxy/sharelock.py): one file per
cluster and network namespace, held shared by every agent's proxier, removed
by the last one under its exclusive lock. A lock taken on a file that was
unlinked meanwhile must not count: the opener retries on the new file."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import pytest

from agent.proxy import sharelock


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sharelock, "lock_path", lambda suffix: str(tmp_path / f"proxy-{suffix}-1.lock"))
    return tmp_path


def test_last_one_knows_it_is_last(lock_dir: Path) -> None:
    a = sharelock.ShareLock("psabcd1234")
    b = sharelock.ShareLock("psabcd1234")
    assert a.path == b.path and os.path.exists(a.path)
    assert sharelock.nobody_holds("psabcd1234") is None
    assert not a.last_one()
    b.close()
    assert a.last_one()
    a.close()
    fd = sharelock.nobody_holds("psabcd1234")
    assert fd is not None
    os.close(fd)


def test_a_lock_on_an_unlinked_file_is_retried(lock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another agent's last proxier unlinks the file between our open and
    our flock: we must end up holding the new file, not the orphan."""
    path = str(lock_dir / "proxy-psabcd1234-1.lock")
    real_flock = fcntl.flock
    calls: list[int] = []

    def racing_flock(fd: int, op: int) -> Any:
        calls.append(fd)
        if len(calls) == 1:
            os.unlink(path)  # the other agent, under its exclusive lock
        return real_flock(fd, op)

    monkeypatch.setattr(sharelock.fcntl, "flock", racing_flock)
    lock = sharelock.ShareLock("psabcd1234")
    monkeypatch.setattr(sharelock.fcntl, "flock", real_flock)
    try:
        assert len(calls) == 2, "the lock on the unlinked file was kept"
        assert sharelock.same_file(lock.fd, path)
        # and it counts: nobody else can take the file exclusively now
        assert sharelock.nobody_holds("psabcd1234") is None
    finally:
        lock.close()


def test_same_file(tmp_path: Path) -> None:
    path = str(tmp_path / "f.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert sharelock.same_file(fd, path)
        os.unlink(path)
        assert not sharelock.same_file(fd, path)
        Path(path).touch()
        assert not sharelock.same_file(fd, path)
    finally:
        os.close(fd)


def test_the_last_lock_removed_takes_the_lock_dir_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "run").mkdir()
    d = tmp_path / "run" / "pocketkube"
    monkeypatch.setattr(sharelock, "LOCK_DIR", str(d))
    a = sharelock.ShareLock("psaaaa1111")  # two clusters' proxies in this netns
    b = sharelock.ShareLock("psbbbb2222")
    assert a.path.startswith(str(d)) and os.path.exists(a.path) and os.path.exists(b.path)
    assert a.last_one()
    sharelock.remove_lock_file(a.path, a.fd)
    a.close()
    assert not os.path.exists(a.path) and d.is_dir()  # b's lock keeps the directory
    assert b.last_one()
    sharelock.remove_lock_file(b.path, b.fd)
    b.close()
    assert not d.exists()
    # A path computed before the directory went (another proxy starting at
    # that moment): the opener makes the directory again.
    path = str(d / "proxy-pscccc3333-1.lock")
    fd = sharelock.open_locked(path, fcntl.LOCK_SH)
    try:
        assert os.path.exists(path)
    finally:
        os.close(fd)


def test_a_lock_dir_elsewhere_is_never_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "run").mkdir()
    monkeypatch.setattr(sharelock, "LOCK_DIR", str(tmp_path / "run" / "pocketkube"))
    other = tmp_path / "tmpdir"  # the fallback when /run is not writable: the system temp dir
    other.mkdir()
    path = str(other / "proxy-psdddd4444-1.lock")
    fd = sharelock.open_locked(path, fcntl.LOCK_EX)
    sharelock.remove_lock_file(path, fd)
    os.close(fd)
    assert not os.path.exists(path) and other.is_dir()
