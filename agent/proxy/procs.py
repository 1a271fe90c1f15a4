"""Starting and stopping the proxy's worker processes (the parent's side;
worker.py is the child's entry point).

    run_proxy (agent) ──spawn(count)──▶ python -m agent.proxy.worker ×count
                      ◀──stop()─────── SIGTERM, 5 s, then SIGKILL

A child dies with its parent too (PR_SET_PDEATHSIG, set between fork and
exec), so a killed agent leaves no worker behind.

Concurrency: blocking (Popen, wait); run_proxy calls stop in a thread.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(server: str, node_name: str, node_ip: str, count: int) -> list[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "agent.proxy.worker", "--server", server, "--node-name", node_name,
           "--node-ip", node_ip]
    return [subprocess.Popen(cmd, preexec_fn=_die_with_parent) for _ in range(count)]  # noqa: PLW1509


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
