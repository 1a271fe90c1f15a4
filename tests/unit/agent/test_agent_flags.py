"""pk-agent's node-service flags (--node-services, --proxy-workers,
--dns-upstreams, --dns-port, --dns-bridge): values, their environment
variable defaults (PK_*), and errors that name the flag and where the bad
value came from; pk-agent exits 1 on them without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.main import UsageError, parse_args

ENV = ("PK_NODE_SERVICES", "PK_PROXY_WORKERS", "PK_DNS_UPSTREAMS", "PK_DNS_PORT", "PK_DNS_BRIDGE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    c = parse_args([])
    assert (c.node_services, c.proxy_workers, c.dns_upstreams, c.dns_port, c.dns_bridge) == (True, 1, None, 53, "")


def test_flags() -> None:
    c = parse_args(["--no-node-services", "--proxy-workers", "4", "--dns-upstreams", "127.0.0.1:5353, 10.0.0.2",
                    "--dns-port", "5300", "--dns-bridge", "docker0"])
    assert not c.node_services
    assert c.proxy_workers == 4
    assert c.dns_upstreams == [("127.0.0.1", 5353), ("10.0.0.2", 53)]
    assert (c.dns_port, c.dns_bridge) == (5300, "docker0")
    assert parse_args(["--dns-upstreams=none"]).dns_upstreams == []
    assert parse_args(["--dns-upstreams="]).dns_upstreams is None  # the host's resolv.conf
    assert parse_args(["--node-services"]).node_services


def test_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PK_NODE_SERVICES", "0")
    monkeypatch.setenv("PK_PROXY_WORKERS", "2")
    monkeypatch.setenv("PK_DNS_UPSTREAMS", "none")
    monkeypatch.setenv("PK_DNS_PORT", "5353")
    monkeypatch.setenv("PK_DNS_BRIDGE", "br0")
    c = parse_args([])
    assert (c.node_services, c.proxy_workers, c.dns_upstreams, c.dns_port, c.dns_bridge) == (False, 2, [], 5353, "br0")
    # a flag wins over its variable, even a bad one
    monkeypatch.setenv("PK_PROXY_WORKERS", "lots")
    c = parse_args(["--node-services", "--proxy-workers", "3", "--dns-upstreams", "127.0.0.1"])
    assert (c.node_services, c.proxy_workers, c.dns_upstreams) == (True, 3, [("127.0.0.1", 53)])


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--proxy-workers", "0"], r'"0" for --proxy-workers: must be an integer from 1 to 64'),
        (["--proxy-workers", "65"], r"--proxy-workers: must be an integer from 1 to 64"),
        (["--proxy-workers", "two"], r'"two" for --proxy-workers'),
        (["--dns-port", "0"], r'"0" for --dns-port: must be a port number from 1 to 65535'),
        (["--dns-port", "65536"], r"--dns-port: must be a port number"),
        (["--dns-port", "dns"], r"--dns-port: must be a port number"),
        (["--dns-upstreams", "dns.example"], r'"dns.example" is not IPv4\[:PORT\]'),
        (["--dns-upstreams", "10.0.0"], r'"10.0.0" is not IPv4'),
        (["--dns-upstreams", "127.0.0.1:0"], r'"127.0.0.1:0": port must be a port number from 1 to 65535'),
        (["--dns-upstreams", "127.0.0.1:x"], r'"127.0.0.1:x": port must be'),
        (["--dns-upstreams", "127.0.0.1,"], r'"" is not IPv4'),
        (["--dns-bridge", "a/b"], r'"a/b" for --dns-bridge: must be a network device name'),
        (["--dns-bridge", "x" * 16], r"--dns-bridge: must be a network device name"),
        (["--node-services=yes"], r"--node-services"),
    ],
)
def test_bad_flags(argv: list[str], msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        parse_args(argv)


@pytest.mark.parametrize(
    "var, value, msg",
    [
        ("PK_PROXY_WORKERS", "0", r'"0" for --proxy-workers \(from \$PK_PROXY_WORKERS\): must be'),
        ("PK_DNS_PORT", "x", r"--dns-port \(from \$PK_DNS_PORT\)"),
        ("PK_DNS_UPSTREAMS", "resolver", r"--dns-upstreams \(from \$PK_DNS_UPSTREAMS\)"),
        ("PK_DNS_BRIDGE", "bad name", r"--dns-bridge \(from \$PK_DNS_BRIDGE\)"),
        ("PK_NODE_SERVICES", "2", r'"2" for --node-services \(from \$PK_NODE_SERVICES\): must be 1 or 0'),
    ],
)
def test_bad_environment(monkeypatch: pytest.MonkeyPatch, var: str, value: str, msg: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(UsageError, match=msg):
        parse_args([])


def test_pk_agent_exits_1_without_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.main", "--dns-port", "99999"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'error: invalid value "99999" for --dns-port: must be a port number from 1 to 65535'


def test_max_parallel_teardowns() -> None:
    assert parse_args([]).max_parallel_teardowns == 2
    assert parse_args(["--max-parallel-teardowns", "5"]).max_parallel_teardowns == 5
    with pytest.raises(UsageError, match="--max-parallel-teardowns: must be >= 1"):
        parse_args(["--max-parallel-teardowns", "0"])
