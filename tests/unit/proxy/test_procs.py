"""The proxy's worker processes, parent side (agent/proxy/procs.py): stop()
ends every child it is given and collects it, a child that already exited
included."""

from __future__ import annotations

import signal
import subprocess
import sys

from agent.proxy import procs


def test_stop_terminates_and_collects_every_child() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    children = [subprocess.Popen(sleeper) for _ in range(2)]
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait(30)
    children.append(done)
    try:
        procs.stop(children)
        assert [p.returncode for p in children] == [-signal.SIGTERM, -signal.SIGTERM, 0]
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
                p.wait()
