"""Addresses the proxy needs on this node's interfaces, managed with
iproute2 (`ip`), plus gratuitous ARP for LoadBalancer addresses.

- ClusterIPs go on the loopback device as /32 with the label "lo:ps<tag>"
  (<tag>: cluster_tag(), one per cluster), so
  pods and processes on the node reach clusterIP:port locally and the proxy
  can bind them; the label lets a restarted agent find and remove the ones
  whose Service is gone (the addresses outlive a crashed agent).
- A LoadBalancer address this node holds goes on the interface that carries
  the node IP, label "<dev>:pl<tag>", followed by a gratuitous ARP (arping -U
  when installed, else one raw ARP frame on an AF_PACKET socket) so that
  neighbours' ARP caches learn the move at once.

Several agents on one machine (integration tests) share one loopback: they
add the same ClusterIPs (adding an existing one is a no-op) and bind the
same clusterIP:port with SO_REUSEPORT.

Concurrency: calls are serialized by the proxier's single sync task.
Failures (no CAP_NET_ADMIN, no `ip`) are logged and reported as False; the
proxy keeps working for addresses that already exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import socket
import struct

log = logging.getLogger(__name__)

SVC_LABEL_PREFIX = "ps"  # "lo:ps<cluster tag>": ClusterIPs
LB_LABEL_PREFIX = "pl"  # "<dev>:pl<cluster tag>": LoadBalancer addresses


def cluster_tag(control_plane_address: str) -> str:
    """8 hex digits naming the cluster (from its control plane's address),
    part of every address label: agents of two clusters on one machine
    (integration tests of several subsystems at once) must never adopt or
    remove each other's addresses."""
    return hashlib.sha1(control_plane_address.encode()).hexdigest()[:8]


async def _ip(*args: str) -> tuple[int, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except FileNotFoundError:
        return 127, "ip: not found"
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def label_for(dev: str, suffix: str) -> str:
    label = f"{dev}:{suffix}"
    return label if len(label) <= 15 else ""


async def labelled(label: str) -> set[str]:
    """IPv4 addresses carrying this label."""
    rc, out = await _ip("-o", "-4", "addr", "show", "label", label)
    if rc != 0:
        return set()
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            found.add(parts[parts.index("inet") + 1].split("/")[0])
    return found


async def by_label(dev: str) -> dict[str, set[str]]:
    """The device's IPv4 addresses grouped by label."""
    rc, out = await _ip("-o", "-4", "addr", "show", "dev", dev)
    found: dict[str, set[str]] = {}
    if rc != 0:
        return found
    for line in out.splitlines():
        parts = line.split("\\")[0].split()
        if "inet" not in parts:
            continue
        ip = parts[parts.index("inet") + 1].split("/")[0]
        label = parts[-1] if parts[-1] not in ("dynamic", "noprefixroute", "secondary") else dev
        found.setdefault(label, set()).add(ip)
    return found


async def add(ip: str, dev: str, label: str) -> bool:
    args = ["addr", "add", f"{ip}/32", "dev", dev]
    if label:
        args += ["label", label]
    rc, out = await _ip(*args)
    # Already there (another agent of the cluster on this machine added it):
    # iproute2 says "File exists" or "Address already assigned".
    if rc != 0 and "File exists" not in out and "already assigned" not in out:
        log.warning("ip %s: %s", " ".join(args), out.strip())
        return False
    return True


async def delete(ip: str, dev: str) -> bool:
    rc, out = await _ip("addr", "del", f"{ip}/32", "dev", dev)
    if rc != 0 and "Cannot assign" not in out:
        log.warning("ip addr del %s dev %s: %s", ip, dev, out.strip())
        return False
    return True


async def device_of(ip: str) -> str:
    """The interface carrying `ip` ("lo" for 127.x that is not configured
    explicitly)."""
    rc, out = await _ip("-o", "-4", "addr", "show", "to", f"{ip}/32")
    if rc == 0:
        for line in out.splitlines():
            parts = line.split()
            if len(parts) > 1:
                return parts[1].split("@")[0]
    return "lo"


async def gratuitous_arp(dev: str, ip: str) -> None:
    """Announce that `ip` is now at this interface's MAC (no-op on lo)."""
    if dev == "lo":
        return
    arping = shutil.which("arping")
    if arping:
        proc = await asyncio.create_subprocess_exec(
            arping, "-U", "-c", "2", "-I", dev, ip,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        if await proc.wait() == 0:
            return
    try:
        await asyncio.to_thread(_raw_garp, dev, ip)
    except OSError as err:
        log.warning("gratuitous ARP for %s on %s: %s", ip, dev, err)


def garp_frame(mac: bytes, ip: str) -> bytes:
    """Pure. A broadcast Ethernet frame carrying a gratuitous ARP request
    (sender and target protocol address both `ip`, RFC 5227 announcement)."""
    pa = socket.inet_aton(ip)
    frame = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
    return frame + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + pa + b"\x00" * 6 + pa


def _raw_garp(dev: str, ip: str) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.bind((dev, 0))
        # The MAC comes from the bound socket, i.e. from the device in OUR
        # network namespace. /sys/class/net/<dev> would be the wrong one
        # under `nsenter --net` (the lab's nodes): sysfs stays the host's,
        # and the frame would announce the host's eth0 MAC.
        mac = s.getsockname()[4]
        if len(mac) != 6:
            return
        frame = garp_frame(mac, ip)
        for _ in range(2):
            s.send(frame)
    finally:
        s.close()


def can_manage() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None
