"""pkctl's argument errors: kubectl's `error: ...` and exit 1, never a traceback."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args,message", [
    (["set", "image", "deploy/x", "foo"], "error: at least one image update is required\n"),
    (["set", "image", "deploy/x", "bad="], "error: invalid image update: 'bad=': expected CONTAINER_NAME=IMAGE\n"),
    (["scale", "deploy/x"], "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal "
                            "to 0\n"),
])
def test_argument_errors_before_the_command_runs_are_kubectl_errors(args, message) -> None:
    # A command's checks that fail() before util.run still print `error: …` and exit 1 (no traceback).
    from click.testing import CliRunner

    from cli.main import cli

    r = CliRunner().invoke(cli, ["--server", "127.0.0.1:1", *args], prog_name="pkctl")
    assert (r.exit_code, r.stderr) == (1, message)
    assert r.exception is None or isinstance(r.exception, SystemExit)
