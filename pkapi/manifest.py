"""Loading manifests: YAML or JSON, one or many documents.

Pure: no external calls or any I/O (callers read the files). Used by pkctl
(apply/create/delete -f) and by the bad-input corpus tests.

Behaviour follows kubectl (sigs.k8s.io/yaml on go-yaml):
- a key given twice in one mapping is an error with both line numbers:
      error converting YAML to JSON: yaml: unmarshal errors:
        line 9: mapping key "replicas" already defined at line 7
- timestamps stay strings (the server parses RFC 3339 itself); non-string
  keys become strings;
- YAML that does not parse: `error converting YAML to JSON: yaml: line N: ...`;
- a document without apiVersion or kind: kubectl's
      error validating data: [apiVersion not set, kind not set]
- empty documents are skipped; `kind: List` is expanded into its items.

Hostile input is refused before it can cost much (CVE-2019-11253's lesson):
- aliases are counted on the event stream before anything is composed, with
  go-yaml's rule (more than 100 aliased nodes among more than 1000 decoded,
  at a ratio above 99 % falling to 10 % between 400,000 and 4,000,000 decoded
  nodes): `yaml: document contains excessive aliasing`; a "billion laughs"
  of a few hundred bytes is refused in milliseconds instead of expanding to
  gigabytes when it is serialized;
- nesting deeper than MAX_DEPTH: `yaml: exceeded max depth`;
- bytes (`decode_text`): more than MAX_BYTES, NUL or other control bytes,
  UTF-16/32 and invalid UTF-8 are refused with the offset of the first bad
  byte.
Parsing uses libyaml (yaml.CSafeLoader) when PyYAML was built with it
(about 7x faster on a 10 MB manifest), else the pure-Python SafeLoader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml


class ManifestError(ValueError):
    """Input that is not a valid manifest stream; str() is the message."""


MAX_BYTES = 32 * 1024 * 1024  # one manifest file or stdin
MAX_DEPTH = 100  # nested mappings/sequences (protobuf's upb decodes at most 100 levels)

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for k_node, v_node in node.value:
        k = loader.construct_object(k_node, deep=True)
        if isinstance(k, bool):
            k = "true" if k else "false"
        elif not isinstance(k, str) and k is not None and not isinstance(k, (list, dict)):
            k = str(k)
        line = k_node.start_mark.line + 1
        if k in out:
            raise ManifestError(
                "error converting YAML to JSON: yaml: unmarshal errors:\n"
                f'  line {line}: mapping key "{k}" already defined at line {lines[k]}'
            )
        lines[k] = line
        out[k] = loader.construct_object(v_node, deep=True)
    return out


def _as_string(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _as_string)


def _alias_ratio(decoded: int) -> float:
    """go-yaml's allowedAliasRatio: how much of a document may come from
    aliases, by the number of nodes decoded so far."""
    low, high = 400_000, 4_000_000
    if decoded <= low:
        return 0.99
    if decoded >= high:
        return 0.10
    return 0.99 - 0.89 * (decoded - low) / (high - low)


def _check_events(text: str) -> None:
    """Depth and alias expansion of every document, from the parser's
    events (nothing composed, nothing expanded): each node counts once where
    it is written and once more each time an alias repeats it, as go-yaml
    counts the nodes it decodes."""
    sizes: dict[str, int] = {}  # anchor -> nodes its value expands to
    stack: list[list[Any]] = []  # open collections: [anchor, nodes so far]
    decoded = aliased = 0
    for ev in yaml.parse(text, Loader=_Loader):
        if isinstance(ev, yaml.DocumentStartEvent):
            decoded = aliased = 0
            continue
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise ManifestError("error converting YAML to JSON: yaml: exceeded max depth")
            stack.append([ev.anchor, 1])
            decoded += 1
            continue
        if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, n = stack.pop()
        elif isinstance(ev, yaml.ScalarEvent):
            anchor, n = ev.anchor, 1
            decoded += 1
        elif isinstance(ev, yaml.AliasEvent):
            anchor, n = None, sizes.get(ev.anchor or "", 1)
            decoded += n
            aliased += n
        else:
            continue
        if anchor is not None:
            sizes[anchor] = n
        if stack:
            stack[-1][1] += n
        if aliased > 100 and decoded > 1000 and aliased / decoded > _alias_ratio(decoded):
            raise ManifestError("error converting YAML to JSON: yaml: document contains excessive aliasing")


def decode_text(data: bytes, source: str) -> str:
    """A manifest's bytes as text, or ManifestError: at most MAX_BYTES,
    UTF-8 (a BOM allowed), no NUL or other control bytes but tab/CR/LF."""
    if len(data) > MAX_BYTES:
        raise ManifestError(f"error reading {source}: the file is larger than the limit of {MAX_BYTES} bytes")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ManifestError(f"error parsing {source}: UTF-16 and UTF-32 are not supported: save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(f"error parsing {source}: invalid UTF-8 at byte offset {e.start}: "
                            "a manifest must be UTF-8 text") from None
    bad = _CONTROL.search(text)
    if bad is not None:
        raise ManifestError(f"error converting YAML to JSON: yaml: control characters are not allowed "
                            f"(U+{ord(bad.group()):04X} at character offset {bad.start()} of {source})")
    return text


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def load_all(text: str) -> list[Any]:
    """Every document of a YAML/JSON stream (None for empty ones).
    ManifestError when it does not parse, nests too deep or aliases too much."""
    try:
        _check_events(text)
        return list(yaml.load_all(text, Loader=_Loader))  # noqa: S506 - a SafeLoader subclass
    except ManifestError:
        raise
    except yaml.MarkedYAMLError as e:
        if "nesting depth" in (e.problem or ""):  # libyaml's own limit, beyond ours
            raise ManifestError("error converting YAML to JSON: yaml: exceeded max depth") from None
        mark = e.problem_mark or e.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = (e.problem or e.context or "invalid YAML").replace("\t", "\\t")
        raise ManifestError(f"error converting YAML to JSON: yaml: {line}{problem}") from None
    except yaml.YAMLError as e:
        raise ManifestError(f"error converting YAML to JSON: yaml: {e}") from None
    except RecursionError:
        # PyYAML composes nodes recursively: nesting deeper than Python's
        # stack is refused as go-yaml refuses nesting beyond its limit.
        raise ManifestError("error converting YAML to JSON: yaml: exceeded max depth") from None


@dataclass
class Document:
    source: str
    index: int  # 0-based position in its source
    data: dict[str, Any]


def check(d: Any, source: str) -> dict[str, Any]:
    """A document must be a mapping with apiVersion and kind (kubectl's
    client-side check and wording)."""
    if not isinstance(d, dict):
        raise ManifestError(
            f'error validating "{source}": error validating data: invalid object to validate: '
            f"a document must be a mapping, not {type(d).__name__}"
        )
    missing = [f"{w} not set" for w in ("apiVersion", "kind") if not d.get(w)]
    if missing:
        raise ManifestError(
            f'error validating "{source}": error validating data: [{", ".join(missing)}]; if you choose to '
            "ignore these errors, turn validation off with --validate=false"
        )
    return d


def documents(text: str, source: str) -> list[Document]:
    """The objects of one source, checked; `kind: List` expanded."""
    return expand(load_all(text), source)


def expand(loaded: list[Any], source: str) -> list[Document]:
    """The documents load_all() returned, checked, empty ones skipped and
    `kind: List` expanded (callers that word a parse error themselves
    call load_all and this apart)."""
    out: list[Document] = []
    for i, d in enumerate(loaded):
        if d is None:
            continue
        d = check(d, source)
        if d.get("kind") == "List" and isinstance(d.get("items"), list):
            for item in d["items"]:
                out.append(Document(source, i, check(item, source)))
        else:
            out.append(Document(source, i, d))
    return out
