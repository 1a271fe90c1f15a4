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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class ManifestError(ValueError):
    """Input that is not a valid manifest stream; str() is the message."""


class _Loader(yaml.SafeLoader):
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


def load_all(text: str) -> list[Any]:
    """Every document of a YAML/JSON stream (None for empty ones).
    ManifestError when it does not parse."""
    try:
        return list(yaml.load_all(text, Loader=_Loader))  # noqa: S506 - a SafeLoader subclass
    except ManifestError:
        raise
    except yaml.MarkedYAMLError as e:
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
