"""Which objects a pkctl verb acts on (kubectl's resource.Builder).

A verb's arguments are `TYPE[,TYPE…] [NAME…]`, `TYPE/NAME…` or `-f FILE`
documents; a TYPE without a NAME means every object that the selectors
match. `resolve` and `from_documents` turn those into Refs, each with the
namespace to use (none for cluster-scoped kinds); `named` is for verbs that
need a name for every target (scale, set image).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from cli import util
from pkapi.client.cluster import ClusterClient
from pkapi.meta import Kind


@dataclass(frozen=True)
class Ref:
    kind: Kind
    namespace: str
    name: str
    uid: str = ""  # set when the object was listed


def from_documents(docs: Iterable[util.Document], s: util.Settings) -> list[Ref]:
    """The objects that -f documents name, in the command's namespace unless
    a document sets its own."""
    out = []
    for doc in docs:
        k = doc.resolve_kind()
        out.append(Ref(k, (doc.namespace or s.namespace) if k.namespaced else "", doc.name))
    return out


async def resolve(c: ClusterClient, targets: Iterable[util.Target], s: util.Settings, selector: str = "",
                  field_selector: str = "") -> list[Ref]:
    """Named targets as they are (not read: a verb reports NotFound in its
    own words); a TYPE alone is listed with the selectors."""
    out = []
    for t in targets:
        ns = util.scope_namespace(t.kind, s)
        if t.name is not None:
            out.append(Ref(t.kind, ns, t.name))
            continue
        items, _ = await c.list(t.kind.resource, ns, selector, field_selector)
        for o in items:
            md = o.metadata  # type: ignore[attr-defined]
            out.append(Ref(t.kind, md.namespace, md.name, md.uid))
    return out


def named(args: Iterable[str], verb: str, s: util.Settings, kinds: Collection[str] | None = None,
          unsupported: str = "") -> list[Ref]:
    """Targets that must each have a name, of one of `kinds` (if given:
    `unsupported` is the error, with {resource} and {name} filled in)."""
    out = []
    for t in util.parse_targets(list(args), verb):
        if kinds is not None and t.kind.kind not in kinds:
            util.fail(unsupported.format(resource=t.kind.resource, lower=t.kind.lower, name=t.name))
        if t.name is None:
            util.fail("resource(s) were provided, but no name was specified")
        out.append(Ref(t.kind, s.namespace if t.kind.namespaced else "", t.name))
    return out
