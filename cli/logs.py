"""pkctl logs: print (or follow) a container's log.

The control plane proxies ResourceService.PodLogs to the pod's node agent;
chunks are written to stdout as they arrive, so `-f` shows lines live until
Ctrl-C or until the container's log ends. `deploy/NAME`, `rs/NAME` and
`svc/NAME` pick one of the object's pods as kubectl does (ready, running,
older first) and say which on stderr when there were several.
"""

from __future__ import annotations

import asyncio
from typing import BinaryIO

import click
import grpc
from google.protobuf.message import Message

from cli import util
from pkapi import meta, selectors
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError
from pkapi.v1 import api_pb2


def _rank(pod: Message) -> tuple[int, int, int, int]:
    """Sort key: the pod kubectl would log from first."""
    st = pod.status  # type: ignore[attr-defined]
    ready = meta.condition(st.conditions, "Ready")
    is_ready = ready is not None and ready.status == "True"
    ts = pod.metadata.creation_timestamp  # type: ignore[attr-defined]
    return (0 if pod.spec.node_name else 1,  # type: ignore[attr-defined]
            0 if st.phase == "Running" else 1,
            0 if is_ready else 1,
            ts.seconds)


async def resolve_pod(c: ClusterClient, ctx: click.Context, ref: str, verb: str) -> Message:
    """POD, pod/NAME, or TYPE/NAME of a Deployment, ReplicaSet or Service."""
    s = util.settings(ctx)
    ns = s.namespace
    typ, slash, name = ref.partition("/")
    if not slash:
        return await c.get("pods", ns, ref)
    kind = util.lookup_kind(typ)
    if not name:
        util.fail(f"arguments in resource/name form must have a single resource and name: {ref}")
    if kind.kind == "Pod":
        return await c.get("pods", ns, name)
    if kind.kind not in ("Deployment", "ReplicaSet", "Service"):
        util.fail(f"cannot {verb} from {kind.qualified}: only pods, deployments, replicasets and services")
    owner = await c.get(kind.resource, ns, name)
    if kind.kind == "Service":
        sel = ",".join(f"{k}={v}" for k, v in sorted(owner.spec.selector.items()))  # type: ignore[attr-defined]
        if not sel:
            util.fail(f'service "{name}" has no selector, so it has no pods')
    else:
        sel = selectors.selector_string(owner.spec.selector)  # type: ignore[attr-defined]
    pods, _ = await c.list("pods", ns, label_selector=sel)
    pods = [p for p in pods if not p.metadata.deletion_timestamp.seconds]  # type: ignore[attr-defined]
    if not pods:
        util.fail(f"no pods found for {kind.lower}/{name}" if verb == "exec" else
                  f"timed out waiting for the condition (no pods of {kind.lower}/{name})")
    pods.sort(key=_rank)
    if len(pods) > 1:
        util.err(f"Found {len(pods)} pods, using pod/{pods[0].metadata.name}")  # type: ignore[attr-defined]
    return pods[0]


def pick_container(pod: Message, container: str | None) -> str:
    names = [c.name for c in pod.spec.containers]  # type: ignore[attr-defined]
    pod_name = pod.metadata.name  # type: ignore[attr-defined]
    if container:
        if container not in names:
            util.fail(f"container {container} is not valid for pod {pod_name}")
        return container
    default = pod.metadata.annotations.get("kubectl.kubernetes.io/default-container", "")  # type: ignore[attr-defined]
    if default in names:
        return str(default)
    if len(names) > 1:
        util.err(f'Defaulted container "{names[0]}" out of: {", ".join(names)}')
    return str(names[0]) if names else ""


async def stream(c: ClusterClient, req: api_pb2.LogsRequest, timeout: float | None, out: BinaryIO,
                 prefix: bytes = b"") -> None:
    """Copy one container's log to `out`; with a prefix, whole lines only
    (several streams then never mix within a line)."""
    call = c.resources.PodLogs(req, timeout=timeout)
    pending = b""
    try:
        async for chunk in call:
            if not prefix:
                out.write(chunk.data)
            else:
                pending += chunk.data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    out.write(prefix + line + b"\n")
            out.flush()
        if pending:
            out.write(prefix + pending + b"\n")
            out.flush()
    except grpc.aio.AioRpcError as e:
        raise util.convert_rpc_error(e, c.address) from None
    finally:
        call.cancel()


@click.command("logs", help="""Print the log of a container in a pod.

\b
  pkctl logs web-5d8f7c-abcde
  pkctl logs -f deploy/web
  pkctl logs web-5d8f7c-abcde -c sidecar --tail 20
  pkctl logs web-5d8f7c-abcde --previous
  pkctl logs -l app=web --prefix -f""")
@click.argument("pod", required=False, metavar="(POD | TYPE/NAME)")
@click.argument("container_arg", metavar="[CONTAINER]", required=False)
@click.option("-c", "--container", default=None, help="The container (default: the only or first one).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until Ctrl-C.")
@click.option("--tail", type=int, default=None, help="Only the last N lines (default: all; 10 with -l).")
@click.option("-p", "--previous", is_flag=True, help="The log of the previous (terminated) instance.")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its RFC 3339 timestamp.")
@click.option("--since", default=None, metavar="DURATION", help="Only lines newer than this, e.g. 5s, 2m, 1h.")
@click.option("-l", "--selector", default="", metavar="SELECTOR", help="The logs of every pod matching this selector.")
@click.option("--all-containers", is_flag=True, help="Every container of the pod(s), not just one.")
@click.option("--prefix", is_flag=True, help="Start each line with [pod/NAME/CONTAINER].")
@click.option("--max-log-requests", type=int, default=5, show_default=True,
              help="With -l -f: at most this many concurrent streams.")
@click.pass_context
def command(ctx: click.Context, pod: str | None, container_arg: str | None, container: str | None, follow: bool,
            tail: int | None, previous: bool, timestamps: bool, since: str | None, selector: str,
            all_containers: bool, prefix: bool, max_log_requests: int) -> None:
    async def main() -> None:
        s = util.settings(ctx)
        since_s: int | None = None
        if since is not None:
            try:
                since_s = max(1, int(util.parse_duration(since)))
            except ValueError:
                util.fail(f"invalid --since {since!r}: use e.g. 5s, 2m, 1h")
        if pod and selector:
            util.fail("only one of a pod name and a selector (-l) may be given")
        if not pod and not selector:
            util.fail("expected POD or TYPE/NAME, or a selector: pkctl logs POD [-c CONTAINER]")
        wanted = container or container_arg
        lines = tail if tail is not None else (10 if selector else -1)
        out = util.binary_stream("stdout")
        async with util.client(ctx) as c:
            if selector:
                pods, _ = await c.list("pods", s.namespace, label_selector=selector)
                if not pods:
                    util.err(f"No resources found in {s.namespace} namespace.")
                    return
            else:
                assert pod is not None
                pods = [await resolve_pod(c, ctx, pod, "logs")]
            streams: list[tuple[Message, str]] = []
            for p in pods:
                names = [x.name for x in p.spec.containers]  # type: ignore[attr-defined]
                if all_containers:
                    streams += [(p, n) for n in names]
                elif selector and not wanted:
                    streams.append((p, names[0] if names else ""))
                else:
                    streams.append((p, pick_container(p, wanted)))
            if follow and len(streams) > max_log_requests:
                util.fail(f"you are attempting to follow {len(streams)} log streams, but maximum allowed "
                          f"concurrency is {max_log_requests}, use --max-log-requests to increase the limit")

            def request(p: Message, cname: str) -> api_pb2.LogsRequest:
                req = api_pb2.LogsRequest(namespace=p.metadata.namespace, pod=p.metadata.name,  # type: ignore[attr-defined]
                                          container=cname, follow=follow, previous=previous, timestamps=timestamps)
                if lines >= 0:
                    req.tail_lines = lines
                if since_s is not None:
                    req.since_seconds = since_s
                return req

            def tag(p: Message, cname: str) -> bytes:
                return f"[pod/{p.metadata.name}/{cname}] ".encode() if prefix else b""  # type: ignore[attr-defined]

            timeout = None if follow else s.request_timeout
            if follow:
                # Every stream at once; each writes whole lines (with --prefix).
                await asyncio.gather(*(stream(c, request(p, n), timeout, out, tag(p, n)) for p, n in streams))
            else:
                for p, n in streams:
                    await stream(c, request(p, n), timeout, out, tag(p, n))

    util.run(main())


__all__ = ["command", "resolve_pod", "pick_container", "ApiError"]
