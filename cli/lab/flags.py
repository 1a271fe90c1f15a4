"""The one definition of the flags `pk-agent` and `pk-controlplane` are run
with, by the one-machine lab (`pkctl lab up`) and by the Vagrant lab's
systemd units (vagrant/units/*.service, which spell each value as
`${PK_<KEY>}` from an EnvironmentFile). tests/unit/lab/test_lab_flags.py asserts
that the units use exactly these flags. Pure: no I/O.
"""

from __future__ import annotations

from typing import Mapping

# (flag, key): the flag's value is values[key]. Order is the command line's.
AGENT_FLAGS: tuple[tuple[str, str], ...] = (
    ("--node-name", "node_name"),
    ("--node-ip", "node_ip"),
    ("--docker-host", "docker_host"),
    ("--server", "server"),
    ("--data-dir", "data_dir"),
    ("--preset", "preset"),
    # "none" in the lab (nothing may leave the machine); empty in the Vagrant
    # lab: the VM's own resolv.conf.
    ("--dns-upstreams", "dns_upstreams"),
)

CONTROLPLANE_FLAGS: tuple[tuple[str, str], ...] = (
    ("--listen", "listen"),
    ("--http-listen", "http_listen"),
    ("--etcd-servers", "etcd_servers"),
    ("--data-dir", "data_dir"),
    ("--service-cidr", "service_cidr"),
    ("--lb-pool", "lb_pool"),
    ("--preset", "preset"),
)


def argv(flags: tuple[tuple[str, str], ...], values: Mapping[str, str]) -> list[str]:
    """`--flag=value` for every flag; a missing key is a programming error."""
    missing = [key for _, key in flags if key not in values]
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return [f"{flag}={values[key]}" for flag, key in flags]


def env_name(key: str) -> str:
    """The EnvironmentFile variable a systemd unit uses for key."""
    return "PK_" + key.upper()


def unit_args(flags: tuple[tuple[str, str], ...]) -> str:
    """The ExecStart arguments of a systemd unit, values from the environment."""
    return " ".join(f"{flag}=${{{env_name(key)}}}" for flag, key in flags)
