"""What every pkctl command shares: settings, the client, running a
coroutine, errors, TYPE/NAME arguments and manifest files.

Concurrency: a command runs one coroutine in one fresh event loop
(`run`), creating its ClusterClient inside that loop (grpc.aio channels
belong to the loop that made them). Nothing here keeps state between
commands, so the CLI can be invoked many times in one process (tests).

Errors: a command raises CliError (`fail(msg)`: printed `error: msg`),
pkapi ApiError (printed in kubectl's wording, `Error from server
(NotFound): ...`) or ServerUnreachable; `run` prints them on stderr and
exits 1. A user mistake never shows a traceback.

For authors of new commands (see cli/main.py):

    from cli import util

    @click.command("scale")
    @click.argument("args", nargs=-1)
    @click.pass_context
    def scale(ctx, args):
        s = util.settings(ctx)             # .namespace .all_namespaces .server
        targets = util.parse_targets(args) # [(Kind, name | None)]
        async def main():
            async with util.client(ctx) as c:
                ...
        util.run(main())

The global flags (--server, -n, -A, --request-timeout) are added to every
command by cli/main.py, so `pkctl scale -n x ...` works without declaring them.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Coroutine, NoReturn, TypeVar

import click

from cli import config
from pkapi import manifest, meta
from pkapi.client.cluster import ClusterClient, ServerUnreachable
from pkapi.client.cluster import convert_rpc_error as convert_rpc_error  # for logs, exec, edit
from pkapi.errors import ApiError, is_conflict, is_not_found
from pkapi.meta import Kind

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # seconds per request unless --request-timeout says otherwise


class CliError(Exception):
    """A user-facing error: printed as `error: <message>`, exit 1."""


class ExitCode(Exception):
    """Exit quietly with this code (exec passes the remote exit code on)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fail(message: str) -> NoReturn:
    raise CliError(message)


# ---------------------------------------------------------------- settings


@dataclass
class Settings:
    """The global flags, merged from the group and the command (the last
    one given wins, so `pkctl -n a get pods -n b` uses b)."""

    server_flag: str | None = None
    namespace_flag: str | None = None
    all_namespaces: bool = False
    request_timeout: float | None = DEFAULT_TIMEOUT
    request_timeout_explicit: bool = False
    _env: dict[str, str] | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        try:
            return config.resolve_server(self.server_flag, self._env)
        except config.ConfigError as err:
            fail(str(err))

    @property
    def namespace(self) -> str:
        try:
            return config.resolve_namespace(self.namespace_flag, self._env)
        except config.ConfigError as err:
            fail(str(err))

    @property
    def namespace_explicit(self) -> bool:
        return bool(self.namespace_flag)


def settings(ctx: click.Context) -> Settings:
    s = ctx.find_object(Settings)
    if s is None:
        s = ctx.find_root().ensure_object(Settings)
    return s


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text: str) -> float:
    """kubectl's durations: "0", "30", "500ms", "5s", "2m", "1h" -> seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(text)
    n = float(m.group(1))
    unit = m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def _set(attr: str) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or value is False:
            return value
        s = settings(ctx)
        if attr == "request_timeout":
            try:
                t = parse_duration(value)
            except ValueError:
                raise click.BadParameter(
                    "invalid timeout value. Timeout must be a single integer in seconds, or an integer "
                    "followed by a corresponding time unit (e.g. 1s | 2m | 3h)", ctx=ctx, param=param) from None
            s.request_timeout = t if t > 0 else None
            s.request_timeout_explicit = True
        else:
            setattr(s, attr, value)
        return value

    return callback


def global_options() -> list[click.Option]:
    """Fresh Option objects for the global flags (one set per command).
    Their parameter names are prefixed (pk_server, …) so a command's own
    parameter called `namespace` or `server` does not collide with them."""
    return [
        click.Option(["-s", "--server", "pk_server"], metavar="HOST:PORT", expose_value=False, callback=_set("server_flag"),
                     help="The control plane's address (else $PKCTL_SERVER, ~/.pocketkube/config, 127.0.0.1:6444)."),
        click.Option(["-n", "--namespace", "pk_namespace"], metavar="NS", expose_value=False, callback=_set("namespace_flag"),
                     help="The namespace (default: the config file's, else 'default')."),
        click.Option(["-A", "--all-namespaces", "pk_all_namespaces"], is_flag=True, default=False, expose_value=False,
                     callback=_set("all_namespaces"), help="Across all namespaces."),
        click.Option(["--request-timeout", "pk_request_timeout"], metavar="DURATION", expose_value=False, callback=_set("request_timeout"),
                     help="Time limit per request: 0 (none), 30s, 2m (default 30s)."),
    ]


def add_global_options(cmd: click.Command) -> None:
    """Give `cmd` (and a group's subcommands) the global flags it does not
    already declare, so kubectl's `pkctl get pods -n x` works as well as
    `pkctl -n x get pods`."""
    taken = {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
    for opt in global_options():
        if not (set(opt.opts) & taken):
            cmd.params.append(opt)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_global_options(sub)


# ------------------------------------------------------------------ running


def client(ctx: click.Context, timeout: float | None | str = "default") -> ClusterClient:
    """A ClusterClient for the resolved server; create it inside the running
    event loop and close it (`async with`)."""
    s = settings(ctx)
    t = s.request_timeout if timeout == "default" else timeout
    try:
        return ClusterClient(s.server, timeout=t)  # type: ignore[arg-type]
    except ValueError as err:  # a bad --server list
        fail(f"invalid server address: {err}")


async def get_or_none(c: ClusterClient, resource: str, namespace: str, name: str) -> Any:
    """The object, or None when it does not exist (other errors raise)."""
    try:
        return await c.get(resource, namespace, name)
    except ApiError as e:
        if is_not_found(e):
            return None
        raise


async def update_retrying(c: ClusterClient, resource: str, namespace: str, name: str,
                          change: Callable[[Any], bool], attempts: int = 10,
                          dry_run: bool = False) -> tuple[Any, bool]:
    """Read, change, write (CAS on the version read), again on Conflict: a
    controller's status write between the read and the write moves the
    resourceVersion without touching what the user changes, and kubectl
    does not fail for it either (its scale retries on conflict; label,
    cordon, rollout pause/resume/restart and set image send patches).
    change(obj) edits obj in place (and may fail() on a precondition,
    checked afresh each time) and returns False when there is nothing to
    write. dry_run: the server checks the write without storing it.
    Returns (object, written)."""
    delay = 0.05
    for attempt in range(attempts):
        obj = await c.get(resource, namespace, name)
        if not change(obj):
            return obj, False
        try:
            written = await (c.update(obj, dry_run=True) if dry_run else c.update(obj))
            return written, True
        except ApiError as e:
            if not is_conflict(e) or attempt == attempts - 1:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")


def err(message: str) -> None:
    click.echo(message, err=True)


def api_error_text(e: ApiError) -> str:
    return e.kubectl()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; print errors as kubectl does and exit 1."""
    try:
        return asyncio.run(coro)
    except ApiError as e:
        err(api_error_text(e))
    except ServerUnreachable as e:
        err(f"error: {unreachable_text(e)}")
    except CliError as e:
        err(f"error: {e}")
    except ExitCode as e:
        sys.exit(e.code)
    sys.exit(1)


def unreachable_text(e: ServerUnreachable) -> str:
    """`cannot reach the control plane at ADDR: connection refused`: gRPC's
    long detail ("failed to connect to all addresses; last error: ...")
    shortened to what a user can act on."""
    d = e.detail
    low = d.lower()
    if "connection refused" in low:
        d = "connection refused (is pk-controlplane running there? see --server)"
    elif "deadline" in low or "timeout" in low or "timed out" in low:
        d = "timed out (is the address right? see --server and --request-timeout)"
    elif any(w in low for w in ("dns resolution failed", "name or service not known", "domain name not found",
                                "errors resolving", "address lookup failed")):
        d = "unknown host (see --server)"
    return f"cannot reach the control plane at {e.address}: {d}"


def binary_stream(name: str) -> BinaryIO:
    """stdin/stdout/stderr as bytes (also under click's CliRunner)."""
    stream: BinaryIO = getattr(sys, name).buffer
    return stream


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


# ---------------------------------------------------- TYPE NAME arguments

# kubectl's "all" category, as far as PocketKube serves its kinds.
ALL = ("pods", "services", "deployments", "replicasets")


def lookup_kind(name: str) -> Kind:
    k = meta.lookup(name)
    if k is None:
        fail(f'the server doesn\'t have a resource type "{name}"')
    return k


def kinds_of(spec: str) -> list[Kind]:
    """"deploy,svc" or "all" -> kinds, in the order given."""
    out: list[Kind] = []
    for part in spec.split(","):
        if not part:
            fail(f'the server doesn\'t have a resource type "{spec}"')
        names = ALL if part == "all" else (part,)
        for n in names:
            k = lookup_kind(n)
            if k not in out:
                out.append(k)
    return out


@dataclass(frozen=True)
class Target:
    kind: Kind
    name: str | None  # None: every object of the kind (a list)


def parse_targets(args: tuple[str, ...] | list[str], verb: str = "get") -> list[Target]:
    """kubectl's resource arguments: `TYPE[,TYPE…] [NAME…]` or `TYPE/NAME…`."""
    if not args:
        return []
    slashed = sum("/" in a for a in args)
    if slashed and slashed != len(args):
        fail(f"there is no need to specify a resource type as a separate argument when passing arguments in "
             f"resource/name form (e.g. 'pkctl {verb} resource/<resource_name>' instead of "
             f"'pkctl {verb} resource resource/<resource_name>'")
    if slashed:
        out = []
        for a in args:
            typ, _, name = a.partition("/")
            if "/" in name:
                fail("arguments in resource/name form may not have more than one slash")
            if not typ or not name or "," in typ:
                fail("arguments in resource/name form must have a single resource and name")
            out.append(Target(lookup_kind(typ), name))
        return out
    kinds = kinds_of(args[0])
    names = list(args[1:])
    if names and len(kinds) > 1:
        fail(f"you must specify only one resource type when passing names: {args[0]}")
    if not names:
        return [Target(k, None) for k in kinds]
    return [Target(kinds[0], n) for n in names]


def complete_types(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of the first TYPE argument (get, describe, delete, …)."""
    from click.shell_completion import CompletionItem

    if ctx.params.get(param.name or ""):
        return []  # only the first argument is a type
    names = sorted({n for k in meta.KINDS for n in (k.resource, *k.short_names) if n} | {"all"})
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def scope_namespace(kind: Kind, s: Settings) -> str:
    """The namespace to ask about: "" for cluster-scoped kinds and -A."""
    if not kind.namespaced or s.all_namespaces:
        return ""
    return s.namespace


# ---------------------------------------------------------------- manifests


@dataclass
class Document:
    source: str  # file path, or "STDIN"
    data: dict[str, Any]

    @property
    def kind_name(self) -> str:
        return str(self.data.get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion") or "")

    @property
    def name(self) -> str:
        md = self.data.get("metadata")
        return str(md.get("name") or "") if isinstance(md, dict) else ""

    @property
    def namespace(self) -> str:
        md = self.data.get("metadata")
        return str(md.get("namespace") or "") if isinstance(md, dict) else ""

    def resolve_kind(self) -> Kind:
        """The served Kind, or CliError in kubectl's words."""
        if not self.kind_name or not self.api_version:
            missing = [w for w, v in (("apiVersion", self.api_version), ("kind", self.kind_name)) if not v]
            fail(f'error validating "{self.source}": error validating data: [{", ".join(f"{m} not set" for m in missing)}]')
        k = meta.kind_by_name(self.kind_name)
        if k is None or k.api_version != self.api_version:
            fail(f'resource mapping not found for name: "{self.name}" namespace: "{self.namespace}" from '
                 f'"{self.source}": no matches for kind "{self.kind_name}" in version "{self.api_version}"\n'
                 f"ensure CRDs are installed first")
        return k

    def json(self) -> str:
        return json.dumps(self.data)


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _files(path: str, recursive: bool) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
        return files
    if not p.exists():
        fail(f'the path "{path}" does not exist')
    return [p]


def parse_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML or JSON stream, each checked to
    have apiVersion and kind; `kind: List` is expanded into its items.
    CliError (kubectl's wording) when it does not parse or check."""
    try:
        docs = manifest.load_all(text)
    except manifest.ManifestError as e:
        fail(f"error parsing {source}: {e}")
    try:
        return [d.data for d in manifest.expand(docs, source)]
    except manifest.ManifestError as e:
        fail(str(e))


def read_limited(fh: BinaryIO) -> bytes:
    """At most one byte more than a manifest may have (so an endless or
    huge input is refused by manifest.decode_text without being read whole)."""
    return fh.read(manifest.MAX_BYTES + 1)


def read_manifests(paths: tuple[str, ...] | list[str], recursive: bool = False) -> list[Document]:
    """Read and parse every -f argument before anything is sent, so a file
    that does not parse changes nothing."""
    docs: list[Document] = []
    for path in paths:
        if path == "-":
            sources = [("STDIN", read_limited(binary_stream("stdin")))]
        else:
            sources = []
            for f in _files(path, recursive):
                try:
                    with f.open("rb") as fh:
                        sources.append((str(f), read_limited(fh)))
                except OSError as e:
                    fail(f"cannot read {f}: {e.strerror}")
        for source, data in sources:
            try:
                text = manifest.decode_text(data, source)
            except manifest.ManifestError as e:
                fail(str(e))
            docs.extend(Document(source, d) for d in parse_documents(text, source))
    if not docs:
        fail("no objects passed to " + (click.get_current_context().info_name or "apply"))
    return docs


def check_namespace(doc: Document, s: Settings) -> None:
    """kubectl refuses a manifest whose namespace contradicts an explicit -n."""
    if s.namespace_explicit and doc.namespace and doc.namespace != s.namespace:
        fail(f'the namespace from the provided object "{doc.namespace}" does not match the namespace '
             f'"{s.namespace}". You must pass \'--namespace={doc.namespace}\' to perform this operation.')
