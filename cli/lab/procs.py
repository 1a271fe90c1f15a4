"""The lab's long-running processes (etcd, pk-controlplane, and per node
dockerd and pk-agent): started detached, recorded by PID, stopped by PID.

- start() runs a command in its own session (so it outlives the pkctl that
  started it and no terminal signal reaches it), optionally inside a node's
  network namespace with `nsenter --net=` (which execs, so the recorded PID
  is the daemon's own), stdout+stderr appended to a log file.
- A PID file holds "PID START_TIME"; a process counts as ours only while a
  process with that PID *and* that start time runs, so a recycled PID is
  never signalled.
- stop() signals the process and, if asked, every descendant (the agent's
  proxy workers; dockerd's containerd and docker-proxy), then waits.

Single-threaded use; no locking: one pkctl changes a lab at a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from cli.lab.net import NETNS_DIR

_started: list[subprocess.Popen[bytes]] = []


def start(
    argv: list[str],
    log_path: str,
    pid_path: str,
    netns: str | None = None,
    env: dict[str, str] | None = None,
) -> psutil.Process:
    if netns:
        argv = ["nsenter", f"--net={NETNS_DIR}/{netns}", "--", *argv]
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    Path(pid_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    # The process is the lab's, not this pkctl's: nobody waits for it here.
    # The Popen object is kept so that it is not finalized (with a "still
    # running" warning) while the process runs; Python reaps it if it dies
    # while this process still runs.
    _started.append(popen)
    proc = psutil.Process(popen.pid)
    tmp = pid_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{proc.pid} {proc.create_time()}\n")
    os.replace(tmp, pid_path)
    return proc


def read(pid_path: str) -> psutil.Process | None:
    """The live process recorded in pid_path, or None."""
    try:
        pid_s, started_s = Path(pid_path).read_text().split()
        proc = psutil.Process(int(pid_s))
        if abs(proc.create_time() - float(started_s)) > 0.05:
            return None  # the PID was recycled: not ours
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(proc.pid)
            return None
        return proc
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(pid_path: str) -> bool:
    return read(pid_path) is not None


def _reap(pid: int) -> None:
    """Collect a dead child of ours (a no-op for anyone else's process)."""
    for popen in _started:
        if popen.pid == pid:
            if popen.poll() is not None:
                _started.remove(popen)
            return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_live(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_all(procs: list[psutil.Process], sig: int = signal.SIGKILL, timeout: float = 10.0) -> list[psutil.Process]:
    """Stop every process first (so none restarts another while we go), then
    send sig to all and wait; returns those still alive at the deadline."""
    live = []
    for p in procs:
        try:
            if sig == signal.SIGKILL:
                p.send_signal(signal.SIGSTOP)
            live.append(p)
        except psutil.NoSuchProcess:
            pass
    for p in live:
        try:
            p.send_signal(sig)
            if sig != signal.SIGKILL:
                p.send_signal(signal.SIGCONT)
        except psutil.NoSuchProcess:
            pass
    return wait_dead(live, timeout)


def wait_dead(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until none of procs is live; a zombie counts as dead (its parent,
    often init, reaps it when it gets to it). Returns those still live."""
    deadline = time.monotonic() + timeout
    while True:
        still = [p for p in procs if is_live(p)]
        # After the check: one that died just before it is collected too
        # (else our child stays a zombie whose Popen is finalized later
        # with "subprocess N is still running").
        for p in procs:
            _reap(p.pid)
        if not still or time.monotonic() > deadline:
            return still
        time.sleep(0.02)


def stop(pid_path: str, grace: float = 5.0, hard: bool = False) -> bool:
    """Stop the recorded process and its descendants. Gracefully: SIGTERM to
    the process alone (dockerd stops its own containerd), then after grace
    SIGKILL to whatever of the group is left. hard: SIGKILL to the whole
    group at once. Removes the PID file. True if something was running."""
    proc = read(pid_path)
    found = proc is not None
    if proc is not None:
        group = [proc] + descendants(proc)
        if hard:
            kill_all(group)
        else:
            try:
                proc.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
            wait_dead([proc], grace)
            kill_all([p for p in group if is_live(p)])
    try:
        os.unlink(pid_path)
    except FileNotFoundError:
        pass
    return found
