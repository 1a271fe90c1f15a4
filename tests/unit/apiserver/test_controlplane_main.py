"""pk-controlplane's flags (controlplane.main.parse_args): presets, overrides
and refused values (argparse exits 2 with a message, no traceback)."""

from __future__ import annotations

import pytest

from controlplane.main import parse_args


def test_preset_and_overrides() -> None:
    c = parse_args(["--preset", "kubernetes", "--heartbeat-interval", "2.5",
                    "--etcd-servers", " http://a:1, ,http://b:2", "--service-node-port-range", "31000-31010"])
    assert (c.heartbeat_interval, c.node_grace_period, c.default_unreachable_toleration) == (2.5, 40.0, 300)
    assert c.etcd_servers == ["http://a:1", "http://b:2"]
    assert c.service_node_port_range == (31000, 31010)
    assert parse_args([]).etcd_servers == []


@pytest.mark.parametrize("argv, msg", [
    (["--heartbeat-interval", "-1"], "--heartbeat-interval: invalid value '-1': must be a number of seconds greater than 0"),
    (["--node-grace-period", "0"], "--node-grace-period: invalid value '0': must be a number of seconds greater than 0"),
    (["--node-grace-period", "soon"], "--node-grace-period: invalid value 'soon'"),
    (["--service-node-port-range", "5-1"], "invalid port range '5-1'"),
    (["--preset", "fast"], "invalid choice: 'fast'"),
])
def test_refused_flags(argv: list[str], msg: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
