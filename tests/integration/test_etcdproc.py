"""EtcdProcess (controlplane.etcdproc) with the real /usr/bin/etcd: starts
healthy, stops by PID leaving no process, restarts on the same ports and
data, reports a failed start with etcd's own words, and does not outlive a
crashed parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from controlplane.etcdproc import EtcdProcess, EtcdStartError, _healthy
from controlplane.store import EtcdStore

pytestmark = pytest.mark.integration


def processes_using(path: str) -> list[psutil.Process]:
    """Live processes whose command line mentions path (ours, by data dir)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and any(path in a for a in p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


async def wait_gone(path: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while processes_using(path):
        if time.monotonic() > deadline:
            pytest.fail(f"processes still running with {path} after {timeout}s: {processes_using(path)}")
        await asyncio.sleep(0.05)


def has_data_and_log(data_dir: str, log_path: str) -> bool:
    return os.path.isdir(os.path.join(data_dir, "member")) and os.path.getsize(log_path) > 0


def run_python(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[str]:
    d = str(tmp_path / "etcd")
    yield d
    # Whatever a failing test left behind: ours by data dir, ended by PID.
    for p in processes_using(d):
        p.kill()


async def test_start_stop_leaves_no_process(data_dir: str) -> None:
    etcd = EtcdProcess(data_dir, auto_compaction_retention="")
    await etcd.start()
    assert etcd.running and etcd.pid is not None
    assert etcd.endpoint == f"http://127.0.0.1:{etcd.client_port}"
    assert await _healthy(etcd.client_port)
    assert has_data_and_log(data_dir, etcd.log_path)
    pid = etcd.pid
    await etcd.stop()
    assert not etcd.running
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert processes_using(data_dir) == []
    assert not await _healthy(etcd.client_port)


async def test_restart_keeps_ports_and_data(data_dir: str) -> None:
    async with EtcdProcess(data_dir, auto_compaction_retention="") as etcd:
        endpoint = etcd.endpoint
        store = EtcdStore(endpoint)
        rev = await store.create("/registry/keep/me", b"v")
        await etcd.stop()
        await etcd.start()
        assert etcd.endpoint == endpoint
        kv = await store.get("/registry/keep/me")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"v", rev)
        await store.close()
    assert processes_using(data_dir) == []


async def test_stop_escalates_to_sigkill(data_dir: str) -> None:
    etcd = EtcdProcess(data_dir, auto_compaction_retention="")
    await etcd.start()
    await etcd.stop(grace=0)
    assert processes_using(data_dir) == []


async def test_failed_start_reports_the_log_tail(data_dir: str) -> None:
    etcd = EtcdProcess(data_dir, extra_args=["--no-such-flag"])
    with pytest.raises(EtcdStartError) as err:
        await etcd.start(timeout=10)
    msg = str(err.value)
    assert "exited with code" in msg and etcd.log_path in msg
    assert "no-such-flag" in msg  # etcd's own complaint, from its log
    assert not etcd.running


async def test_busy_port_is_refused_not_mistaken_for_health(data_dir: str) -> None:
    async with EtcdProcess(data_dir + "-first", auto_compaction_retention="") as first:
        # The first etcd would answer a health probe on this port.
        second = EtcdProcess(data_dir, client_port=first.client_port)
        with pytest.raises(EtcdStartError, match=f"port {first.client_port} on 127.0.0.1 is in use"):
            await second.start(timeout=10)
        assert not second.running


async def test_start_deadline_stops_an_unhealthy_etcd(data_dir: str, tmp_path: Path) -> None:
    fake = tmp_path / "fake-etcd"
    fake.write_text("#!/bin/sh\necho fake etcd that never serves\nexec sleep 60\n")
    fake.chmod(0o755)
    etcd = EtcdProcess(data_dir, binary=str(fake))
    with pytest.raises(EtcdStartError, match="not healthy after 0.5s") as err:
        await etcd.start(timeout=0.5)
    assert "fake etcd that never serves" in str(err.value)
    assert not etcd.running
    await wait_gone(data_dir)


async def test_missing_binary_is_a_clear_error(data_dir: str) -> None:
    with pytest.raises(EtcdStartError, match="apt-get install etcd-server"):
        await EtcdProcess(data_dir, binary="/nonexistent/etcd").start()


async def test_etcd_dies_with_a_crashed_parent(data_dir: str) -> None:
    if not any(os.access(os.path.join(d, "setpriv"), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
        pytest.skip("setpriv(1) not installed: no parent-death signal")
    script = textwrap.dedent(f"""
        import asyncio, time
        from controlplane.etcdproc import EtcdProcess
        async def main():
            e = EtcdProcess({data_dir!r}, auto_compaction_retention="")
            await e.start()
            print(e.pid, flush=True)
            time.sleep(60)
        asyncio.run(main())
    """)
    parent = run_python(script)
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 20)
        etcd_pid = int(line)
        assert psutil.pid_exists(etcd_pid)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    await wait_gone(data_dir)
