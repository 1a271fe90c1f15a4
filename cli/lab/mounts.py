"""Mounts the lab leaves behind (dockerd's overlay and netns mounts under a
node's data-root and exec-root outlive a killed dockerd: they belong to the
host's mount namespace), and a directory removal that never crosses into a
mount. Single-threaded."""

from __future__ import annotations

import os
import shutil
import subprocess


def _unescape(path: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 3 < len(path) and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below prefix, deepest first."""
    prefix = os.path.abspath(prefix).rstrip("/")
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = _unescape(line.split()[4])
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(set(found), key=lambda p: (-len([c for c in p.split("/") if c]), p))


def unmount_all(prefix: str) -> list[str]:
    """Lazily unmount everything at or below prefix (repeating while mounts
    stacked on one point remain); returns what could not be unmounted."""
    for _ in range(5):
        points = mounts_under(prefix)
        if not points:
            return []
        for p in points:
            subprocess.run(["umount", "-l", p], capture_output=True, timeout=30)
    return mounts_under(prefix)


def safe_rmtree(path: str) -> None:
    """rm -rf path, refusing if anything is still mounted below it (removing
    through a mount would delete the mounted filesystem's files)."""
    if not os.path.lexists(path):
        return
    left = mounts_under(path)
    if left:
        raise RuntimeError(f"not removing {path}: still mounted: {', '.join(left)}")
    shutil.rmtree(path, ignore_errors=False)
