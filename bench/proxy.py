"""Benchmark: PocketKube's userspace proxy vs haproxy (TCP mode) vs direct.

One fast backend (Debian's nginx on loopback), one load generator (wrk),
measured in one run:
  direct          wrk -> nginx
  pocketkube      wrk -> agent.proxy (uvloop, asyncio Protocols) -> nginx
                  (also with N worker processes sharing the port through
                  SO_REUSEPORT, --workers)
  haproxy         wrk -> haproxy "mode tcp" -> nginx (default threads, and
                  one thread: "haproxy 1thr")
each with keep-alive connections and with a new connection per request
(wrk with "Connection: close"), plus a bulk transfer of a 1 GiB file
(curl, MB/s). Every figure is the median of --runs runs; ratios are
pocketkube / haproxy from the same run. The CPU time the proxy's processes
spent per request is measured too: on a busy machine req/s swings with the
neighbours' load, CPU per request hardly does.

    make bench-proxy                       # installs nginx-light, wrk, haproxy
    .venv/bin/python bench/proxy.py --runs 5 --duration 5 --workers 1,2

Everything listens on 127.0.0.1 only. Not run by `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BULK_SIZE = 1 << 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# ------------------------------------------------------------ the proxy


def serve_proxy(port: int, backend_port: int) -> None:
    """One proxy worker process: agent.proxy's TCP forwarding on uvloop,
    exactly the code path of a Service listener."""
    import uvloop

    from agent.proxy.balancer import Balancer
    from agent.proxy.tcp import serve_tcp

    async def main() -> None:
        bal = Balancer([("127.0.0.1", backend_port)])
        await serve_tcp("127.0.0.1", port, bal, reuse_port=True)
        await asyncio.Event().wait()

    uvloop.install()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


# ------------------------------------------------------------ processes


@dataclass
class Procs:
    work: str
    procs: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_nginx(work: str, port: int) -> subprocess.Popen[bytes]:
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    # nginx's workers run as an unprivileged user: let them read the files.
    os.chmod(work, 0o755)
    os.chmod(www, 0o755)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from nginx\n")
    with open(os.path.join(www, "bulk"), "wb") as f:
        f.truncate(BULK_SIZE)  # sparse: served by sendfile, costs no disk
    for name in ("index.html", "bulk"):
        os.chmod(os.path.join(www, name), 0o644)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  server {{ listen 127.0.0.1:{port} backlog=4096; root {www}; }}
}}
""")
    os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
    return subprocess.Popen(["nginx", "-c", conf, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_haproxy(work: str, port: int, backend_port: int, threads: int = 0) -> subprocess.Popen[bytes]:
    conf = os.path.join(work, f"haproxy-{port}.cfg")
    nbthread = f"  nbthread {threads}\n" if threads else ""
    with open(conf, "w") as f:
        f.write(f"""
global
{nbthread}  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server s1 127.0.0.1:{backend_port}
""")
    return subprocess.Popen(["haproxy", "-f", conf, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_proxy(port: int, backend_port: int, workers: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve-proxy", str(port), str(backend_port)],
            cwd=REPO,
        )
        for _ in range(workers)
    ]


# ------------------------------------------------------------ measuring


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def cpu_seconds(pids: list[int]) -> float:
    """user+system CPU time of these processes so far (all threads)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wrk(port: int, duration: float, connections: int, close: bool) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, errors)"""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}/index.html")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    out = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")
    rps = float(m.group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return rps, p50, p99, errors


def bulk(port: int) -> float:
    """MB/s of one 1 GiB download."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", f"http://127.0.0.1:{port}/bulk"],
        capture_output=True, text=True, timeout=300,
    ).stdout.split()
    size, secs = int(float(out[0])), float(out[1])
    if size != BULK_SIZE:
        raise RuntimeError(f"bulk transfer got {size} bytes, expected {BULK_SIZE}")
    return size / secs / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", default="1,2", help="proxy worker process counts to measure (comma separated)")
    ap.add_argument("--bulk-runs", type=int, default=3)
    ap.add_argument("--serve-proxy", nargs=2, type=int, metavar=("PORT", "BACKEND_PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_proxy:
        serve_proxy(*args.serve_proxy)
        return
    for tool in ("nginx", "wrk", "haproxy", "curl"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found: run `make bench-proxy` (installs nginx-light, wrk, haproxy)")

    work = tempfile.mkdtemp(prefix="pk-bench-proxy-")
    nginx_port, haproxy_port, haproxy1_port = free_port(), free_port(), free_port()
    worker_counts = [int(w) for w in args.workers.split(",") if w]
    proxy_ports = {w: free_port() for w in worker_counts}
    procs = Procs(work, [start_nginx(work, nginx_port)])
    try:
        wait_port(nginx_port)
        pids: dict[str, list[int]] = {"direct": []}
        hp = start_haproxy(work, haproxy_port, nginx_port)
        hp1 = start_haproxy(work, haproxy1_port, nginx_port, threads=1)
        procs.procs += [hp, hp1]
        pids["haproxy"], pids["haproxy 1thr"] = [hp.pid], [hp1.pid]
        for w, p in proxy_ports.items():
            started = start_proxy(p, nginx_port, w)
            procs.procs += started
            pids[f"pocketkube x{w}"] = [x.pid for x in started]
        for p in (haproxy_port, haproxy1_port, *proxy_ports.values()):
            wait_port(p)
        targets = [("direct", nginx_port), ("haproxy", haproxy_port), ("haproxy 1thr", haproxy1_port)]
        targets += [(f"pocketkube x{w}", p) for w, p in proxy_ports.items()]

        rows: dict[tuple[str, str], list[tuple[float, float, float, int, float]]] = {}
        for mode, close in (("keep-alive", False), ("new-conn", True)):
            for _ in range(args.runs):
                # interleaved, so a slow moment of the machine hits all alike
                for name, port in targets:
                    c0 = cpu_seconds(pids[name])
                    rps, p50, p99, errs = wrk(port, args.duration, args.connections, close)
                    # CPU time of the proxy's processes per request: unlike
                    # req/s it hardly depends on what else the machine runs.
                    us = (cpu_seconds(pids[name]) - c0) * 1e6 / max(1.0, rps * args.duration)
                    rows.setdefault((name, mode), []).append((rps, p50, p99, errs, us))
        mbps: dict[str, list[float]] = {}
        for _ in range(args.bulk_runs):
            for name, port in targets:
                mbps.setdefault(name, []).append(bulk(port))

        med = {k: tuple(statistics.median(x[i] for x in v) for i in range(5)) for k, v in rows.items()}
        print()
        print(f"proxy benchmark: {os.cpu_count()} CPUs, wrk -t1 -c{args.connections} -d{args.duration}s, "
              f"medians of {args.runs} runs (bulk: {args.bulk_runs} x 1 GiB)")
        print(f"{'target':<16} {'mode':<11} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu us/req':>11}")
        for mode in ("keep-alive", "new-conn"):
            for name, _ in targets:
                rps, p50, p99, errs, us = med[(name, mode)]
                cpu = f"{us:>11.1f}" if pids[name] else f"{'-':>11}"
                print(f"{name:<16} {mode:<11} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f} {errs:>7.0f} {cpu}")
        print(f"\n{'target':<16} {'bulk MB/s':>10}")
        for name, _ in targets:
            print(f"{name:<16} {statistics.median(mbps[name]):>10.0f}")
        print("\nratios pocketkube / haproxy (targets: >= 0.75 req/s, >= 0.9 bulk):")
        for w in worker_counts:
            name = f"pocketkube x{w}"
            ka = med[(name, "keep-alive")][0] / med[("haproxy", "keep-alive")][0]
            nc = med[(name, "new-conn")][0] / med[("haproxy", "new-conn")][0]
            bk = statistics.median(mbps[name]) / statistics.median(mbps["haproxy"])
            print(f"  {name:<14} keep-alive {ka:.2f}x   new-conn {nc:.2f}x   bulk {bk:.2f}x")
        print("CPU efficiency, haproxy 1 thread's CPU per request / pocketkube's (1.0 = as cheap per request):")
        for w in worker_counts:
            name = f"pocketkube x{w}"
            e = [med[("haproxy 1thr", m)][4] / med[(name, m)][4] for m in ("keep-alive", "new-conn")]
            print(f"  {name:<14} keep-alive {e[0]:.2f}x   new-conn {e[1]:.2f}x")
        print(f"\nreproduce: make bench-proxy  (or: .venv/bin/python bench/proxy.py --runs {args.runs} "
              f"--duration {args.duration:g} --connections {args.connections} --workers {args.workers})")
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
