"""The proxies' share lock, and the collection of what dead clusters left.

One lock file per cluster and network namespace on this machine,
`LOCK_DIR/proxy-<ps tag>-<netns inode>.lock`:

    agent A's proxier ──flock SH──┐
    agent B's proxier ──flock SH──┤  proxy-psXXXXXXXX-<netns>.lock
                                  │
    stopping: flock EX|NB succeeds? ── yes: the last one — remove the
                                  │         ClusterIPs, the file, and
                                  │         LOCK_DIR if now empty
                                  └─ no: others still serve them: leave all

    starting: for every labelled address of another cluster on lo / the LB
              device, flock EX|NB that cluster's file; if it is free, no
              proxy of it runs here: delete its addresses (and its file)

Only the agent's own proxier takes the lock; worker processes manage no
addresses and never open it.

A lock file is unlinked only under its exclusive lock, so an opener that
locked a file unlinked meanwhile (between its open and its flock) holds
nothing: open_locked checks the inode and retries on the new file.

Concurrency: blocking calls (flock with LOCK_NB, stat, unlink); the address
calls are awaited. Used by one coroutine (the proxier's run) at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile

from agent.proxy import addresses

log = logging.getLogger(__name__)

# Made by the first proxy, removed by the last (when it leaves it empty).
LOCK_DIR = "/run/pocketkube"


def lock_path(suffix: str) -> str:
    """The lock file of the cluster whose ClusterIP label suffix is `suffix`
    (`ps<tag>`), in this network namespace; LOCK_DIR, or the system temp dir
    when /run is not writable."""
    try:
        netns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        netns = 0
    d = LOCK_DIR if os.access(os.path.dirname(LOCK_DIR), os.W_OK) else tempfile.gettempdir()
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"proxy-{suffix}-{netns}.lock")


def remove_lock_file(path: str, fd: int) -> None:
    """Unlink our lock file (the caller holds it exclusively), then LOCK_DIR
    if that left it empty: another cluster's lock keeps it, and an opener
    that finds it gone makes it again (open_locked)."""
    if same_file(fd, path):
        os.unlink(path)
    d = os.path.dirname(path)
    if d == LOCK_DIR:
        with contextlib.suppress(OSError):  # not empty: in use
            os.rmdir(d)


def same_file(fd: int, path: str) -> bool:
    """Whether fd is still the file at path: a lock file is unlinked only
    under its exclusive lock, so a lock taken on a file that is no longer
    there (unlinked between our open and our flock) counts nothing."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def open_locked(path: str, op: int) -> int:
    """An fd of the lock file at path holding flock `op` (OSError if a
    non-blocking op would block), retried while the file is replaced."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            # The directory went after lock_path made it: the last proxy
            # of another cluster stopped and removed it as empty.
            os.makedirs(os.path.dirname(path), exist_ok=True)
            continue
        try:
            fcntl.flock(fd, op)
        except OSError:
            os.close(fd)
            raise
        if same_file(fd, path):
            return fd
        os.close(fd)


class ShareLock:
    """A shared flock held by every proxy of one cluster in one network
    namespace on this machine; at exit, whoever can upgrade it to an
    exclusive lock is the last one, removes the ClusterIPs and the file."""

    def __init__(self, suffix: str) -> None:
        self.path = lock_path(suffix)
        self.fd = open_locked(self.path, fcntl.LOCK_SH)

    def last_one(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def remove_file(self) -> None:
        """Only after last_one() said True."""
        remove_lock_file(self.path, self.fd)

    def close(self) -> None:
        os.close(self.fd)


def nobody_holds(suffix: str) -> int | None:
    """An fd holding the exclusive lock of that cluster if no proxy of it
    runs in this network namespace (the caller removes its addresses, then
    closes the fd), else None."""
    try:
        return open_locked(lock_path(suffix), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None


async def collect_dead_clusters(own_suffix: str, lb_dev: str) -> None:
    """Remove the addresses other clusters' proxies left on lo and `lb_dev`
    when no proxy of theirs runs here any more (killed agents of finished
    test clusters): their lock is free. Then their lock files. `own_suffix`
    (`ps<tag>`) is this proxy's cluster, whose addresses it adopts instead."""
    try:
        for dev in sorted({"lo", lb_dev or "lo"}):
            for label, ips in (await addresses.by_label(dev)).items():
                _, _, suffix = label.partition(":")
                kind, tag = suffix[:2], suffix[2:]
                if kind not in (addresses.SVC_LABEL_PREFIX, addresses.LB_LABEL_PREFIX) or len(tag) != 8:
                    continue
                if addresses.SVC_LABEL_PREFIX + tag == own_suffix:
                    continue  # ours: adopted by the caller
                fd = nobody_holds(addresses.SVC_LABEL_PREFIX + tag)
                if fd is None:
                    continue  # that cluster still has a proxy here
                try:
                    for ip in sorted(ips):
                        await addresses.delete(ip, dev)
                    log.info("removed %s left on %s by a cluster no longer here", ",".join(sorted(ips)), dev)
                finally:
                    os.close(fd)
        _collect_lock_files(lock_path(own_suffix))
    except Exception:  # noqa: BLE001 - housekeeping must never stop the proxy
        log.exception("collecting addresses of dead clusters")


def _collect_lock_files(mine: str) -> None:
    """Unlink the lock files, beside ours and of our network namespace, of
    clusters with no proxy here any more."""
    d, _, base = mine.rpartition("/")
    netns_part = base.rsplit("-", 1)[1]
    try:
        names = os.listdir(d)
    except FileNotFoundError:  # removed as empty by a stopping proxy: nothing to collect
        names = []
    for name in names:
        path = os.path.join(d, name)
        if path == mine or not (name.startswith("proxy-") and name.endswith("-" + netns_part)):
            continue
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if same_file(fd, path):
                os.unlink(path)
        except OSError:
            pass
        finally:
            os.close(fd)
