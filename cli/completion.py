"""pkctl completion bash|zsh|fish: the shell completion script (click's),
as `source <(kubectl completion bash)` works for kubectl. Resource types
complete (util.complete_types, from pkapi.meta, no server call); object
names do not (that would need the control plane on every Tab)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class


@click.command("completion", help="""Print the shell completion script.

\b
  source <(pkctl completion bash)        # bash, this shell
  pkctl completion zsh > "${fpath[1]}/_pkctl"
  pkctl completion fish | source""")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def command(ctx: click.Context, shell: str) -> None:
    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - the Choice above allows only known shells
        raise click.UsageError(f"unsupported shell {shell}")
    root = ctx.find_root().command
    click.echo(cls(root, {}, "pkctl", "_PKCTL_COMPLETE").source())
