"""pkctl: PocketKube's kubectl-shaped command line.

Every verb lives in its own module under cli/ and exports one click
command (or group) named in COMMANDS below.

To add a command: write cli/<verb>.py with a click command, e.g.

    @click.command("scale", help="Set a new size for a Deployment or ReplicaSet.")
    @click.argument("args", nargs=-1)
    @click.pass_context
    def command(ctx, args): ...

and add one line `"scale=cli.scale:command",` to COMMANDS: the name users
type, then where the command object lives. The module is imported only when
that command runs (or for --help), so one command's heavy imports do not
slow every pkctl call. An entry whose module or command does not exist is a
bug and fails loudly (ImportError naming the entry), never a silently missing
verb; tests/unit/cli checks that every entry loads.

Every command automatically accepts the global flags (--server,
-n/--namespace, -A/--all-namespaces, --request-timeout); read them with
`cli.util.settings(ctx)`, get a client with `cli.util.client(ctx)`, run the
command's coroutine with `cli.util.run`, and report user mistakes with
`cli.util.fail(msg)` (exit 1, no traceback).

Exit codes follow kubectl: 0 on success, 1 on any error including usage
errors (click's default would be 2), the remote command's code for exec,
130 after Ctrl-C.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from cli import util

# "name=module:attribute" of each command (`pkctl --help` sorts them).
COMMANDS: list[str] = [
    "create=cli.create:command",
    "apply=cli.apply:command",
    "get=cli.get:command",
    "describe=cli.describe:command",
    "delete=cli.delete:command",
    "edit=cli.edit:command",
    "events=cli.events:command",
    "logs=cli.logs:command",
    "wait=cli.wait:command",
    "label=cli.label:label",
    "annotate=cli.label:annotate",
    "exec=cli.exec:command",
    "port-forward=cli.port_forward:command",
    "expose=cli.expose:command",
    "rollout=cli.rollout:command",
    "scale=cli.scale:command",
    "set=cli.setimage:command",
    "patch=cli.patch:command",
    "cordon=cli.nodes:cordon",
    "uncordon=cli.nodes:uncordon",
    "drain=cli.nodes:drain",
    "api-resources=cli.api_resources:command",
    "cluster-info=cli.cluster_info:command",
    "config=cli.cluster_info:config_group",
    "version=cli.version:command",
    "completion=cli.completion:command",
    "lab=cli.lab:command",
]


def _usage_message(e: click.UsageError) -> str:
    msg = e.format_message()
    if isinstance(e, click.NoSuchOption):
        msg = f"unknown flag: {e.option_name}"
        if e.possibilities:
            msg += f" (did you mean {' or '.join(sorted(e.possibilities))}?)"
    elif msg.startswith("No such command "):
        name = msg[len("No such command "):].split(".")[0].strip("'\"")
        msg = f'unknown command "{name}" for "pkctl"'
    return msg


class PkctlGroup(click.Group):
    """The root group: commands imported on first use, kubectl's exit codes
    and usage-error wording."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            cmd = load(cmd_name, self.lazy[cmd_name])
            util.add_global_options(cmd)
            self.add_command(cmd, cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `pkctl describe pods | head -1`: the reader went away; not an
            # error. Caught here because click's main() would turn it into
            # exit status 1. Later flushes go to /dev/null.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name or "pkctl", complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            click.echo(f"error: {_usage_message(e)}", err=True)
            path = e.ctx.command_path if e.ctx is not None else "pkctl"
            click.echo(f"See '{path} --help' for usage.", err=True)
            rv = 1
        except click.ClickException as e:
            click.echo(f"error: {e.format_message()}", err=True)
            rv = 1
        except click.Abort:
            rv = 130  # Ctrl-C: quietly, as a shell reports SIGINT
        except util.CliError as e:
            # util.fail() in a command's argument checks before util.run: the
            # same `error: ...` and exit 1 as inside it, never a traceback.
            click.echo(f"error: {e}", err=True)
            rv = 1
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=PkctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """pkctl controls a PocketKube cluster, as kubectl controls Kubernetes.

    The control plane's address comes from --server, else $PKCTL_SERVER,
    else the config file ($PKCTL_CONFIG or ~/.pocketkube/config, written by
    `pkctl lab up`), else 127.0.0.1:6444.
    """
    ctx.ensure_object(util.Settings)


def load(name: str, spec: str) -> click.Command:
    """The click command of COMMANDS entry `name=spec` ("module:attribute");
    ImportError naming the entry when it is not there."""
    module, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ImportError(f'pkctl command "{name}": no module {module} ({e})') from e
    cmd = getattr(mod, attr, None)
    if not isinstance(cmd, click.Command):
        raise ImportError(f'pkctl command "{name}": {spec} is not a click command')
    return cmd


util.add_global_options(cli)
for _spec in COMMANDS:
    _name, _, _where = _spec.partition("=")
    cli.lazy[_name] = _where  # type: ignore[attr-defined]


def main() -> None:
    cli.main(prog_name="pkctl")


if __name__ == "__main__":
    main()
