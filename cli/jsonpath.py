"""The JSONPath subset of `pkctl get -o jsonpath=TEMPLATE` (and
`-o custom-columns`), over the Kubernetes-shaped dicts of `-o json`.

Pure: no external calls or any I/O.

Supported, as in kubectl (https://kubernetes.io/docs/reference/kubectl/jsonpath/):
  text outside braces           printed as is
  {.a.b}  {$.a.b}  {a.b}        fields; `{.}` / `{$}` is the whole object
  {.a['b.c/d']}  {.a.b\\.c}      keys with dots (quoted or backslash-escaped)
  {.items[0]} {.items[-1]}      index (negative from the end)
  {.items[1:3]} {.items[::2]}   slices
  {.items[*].metadata.name}     wildcard over a list or a map's values; `.*` too
  {..name}                      recursive descent
  {.items[?(@.kind=="Pod")]}    filters: == != < <= > >= and `?(@.x)` (exists)
  {range .items[*]}...{end}     loops; inside, `.x` is relative to the item
  {"\\n"} {"\\t"} {'x'}          string literals with escapes
Several results of one {…} are separated by a space; maps and lists print
as compact JSON; a missing key prints nothing (kubectl's default
--allow-missing-template-keys=true). Not supported: unions of names
(`['a','b']`), functions, comparisons between two paths with arithmetic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Union


class JSONPathError(ValueError):
    """A template that does not parse; str() is the reason."""


# ------------------------------------------------------------------ paths


@dataclass(frozen=True)
class Field:
    name: str  # "*" for a wildcard


@dataclass(frozen=True)
class Recursive:
    name: str  # "*" for every descendant


@dataclass(frozen=True)
class Index:
    start: int | None
    end: int | None = None
    step: int | None = None
    is_slice: bool = False


@dataclass(frozen=True)
class Filter:
    lhs: Path
    op: str  # "", "==", "!=", "<", "<=", ">", ">="
    rhs: Any  # a literal or a Path


@dataclass(frozen=True)
class Path:
    root: bool  # $: the document root rather than the current item
    segments: tuple[Any, ...]


Segment = Union[Field, Recursive, Index, Filter]


def _read_name(s: str, i: int) -> tuple[str, int]:
    out = []
    while i < len(s) and s[i] not in ".[":
        if s[i] == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        out.append(s[i])
        i += 1
    return "".join(out), i


def _matching_bracket(s: str, i: int) -> int:
    """Index of the ']' closing the '[' at i, skipping quoted text and ()."""
    depth = 0
    quote = ""
    j = i
    while j < len(s):
        c = s[j]
        if quote:
            if c == "\\":
                j += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
            if depth == 0 and c == "]":
                return j
        j += 1
    raise JSONPathError(f"unclosed '[' in {s!r}")


def _literal(tok: str) -> Any:
    tok = tok.strip()
    if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "'\"":
        return _unquote(tok)
    if tok == "true":
        return True
    if tok == "false":
        return False
    if tok == "nil" or tok == "null":
        return None
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        pass
    if tok.startswith(("@", "$", ".")):
        return parse_path(tok)
    raise JSONPathError(f"unrecognized value {tok!r} in filter")


_FILTER_OPS = ("==", "!=", "<=", ">=", "<", ">")


def _parse_filter(inner: str) -> Filter:
    # inner is what is between "?(" and ")"
    quote = ""
    for j, c in enumerate(inner):
        if quote:
            if c == quote:
                quote = ""
            continue
        if c in "'\"":
            quote = c
            continue
        for op in _FILTER_OPS:
            if inner.startswith(op, j):
                return Filter(parse_path(inner[:j].strip()), op, _literal(inner[j + len(op):]))
    return Filter(parse_path(inner.strip()), "", None)


def _parse_bracket(body: str) -> Segment:
    b = body.strip()
    if b == "*":
        return Field("*")
    if b.startswith("?"):
        rest = b[1:].strip()
        if not (rest.startswith("(") and rest.endswith(")")):
            raise JSONPathError(f"invalid filter [{body}]")
        return _parse_filter(rest[1:-1])
    if len(b) >= 2 and b[0] == b[-1] and b[0] in "'\"":
        return Field(_unquote(b))
    if ":" in b:
        parts = b.split(":")
        if len(parts) > 3:
            raise JSONPathError(f"invalid array slice [{body}]")
        try:
            nums = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
        except ValueError:
            raise JSONPathError(f"invalid array index [{body}]") from None
        return Index(nums[0], nums[1], nums[2], is_slice=True)
    try:
        return Index(int(b))
    except ValueError:
        raise JSONPathError(f"invalid array index [{body}]") from None


def parse_path(s: str) -> Path:
    """Parse one path expression such as `.items[*].metadata.name`."""
    s = s.strip()
    i = 0
    root = False
    if s.startswith("$"):
        root, i = True, 1
    elif s.startswith("@"):
        i = 1
    segs: list[Segment] = []
    if i < len(s) and s[i] not in ".[":
        name, i = _read_name(s, i)  # "items" without a leading dot
        segs.append(Field(name))
    while i < len(s):
        c = s[i]
        if s.startswith("..", i):
            i += 2
            if i < len(s) and s[i] == "[":
                segs.append(Recursive("*"))
                continue
            name, i = _read_name(s, i)
            segs.append(Recursive(name or "*"))
        elif c == ".":
            name, i = _read_name(s, i + 1)
            if name:
                segs.append(Field(name))
        elif c == "[":
            j = _matching_bracket(s, i)
            segs.append(_parse_bracket(s[i + 1:j]))
            i = j + 1
        else:
            raise JSONPathError(f"unexpected {c!r} in {s!r}")
    return Path(root, tuple(segs))


def _unquote(tok: str) -> str:
    if tok[0] == '"':
        try:
            out = json.loads(tok)
        except json.JSONDecodeError:
            raise JSONPathError(f"invalid string literal {tok}") from None
        return str(out)
    # single quotes: only \' and \\ are escapes
    return re.sub(r"\\(['\\])", r"\1", tok[1:-1])


# -------------------------------------------------------------- evaluation


def _children(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return [v[k] for k in sorted(v)]
    if isinstance(v, list):
        return list(v)
    return []


def _descendants(v: Any) -> list[Any]:
    out = []
    for c in _children(v):
        out.append(c)
        out.extend(_descendants(c))
    return out


def _compare(a: Any, op: str, b: Any) -> bool:
    if op == "==":
        return bool(a == b or (not isinstance(b, str) and isinstance(a, str) and a == str(b)))
    if op == "!=":
        return not _compare(a, "==", b)
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if isinstance(a, str) and isinstance(b, str):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    return False


def _step(values: list[Any], seg: Segment, root: Any) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(seg, Field):
            if seg.name == "*":
                out.extend(_children(v))
            elif isinstance(v, dict) and seg.name in v:
                out.append(v[seg.name])
        elif isinstance(seg, Recursive):
            for d in [v, *_descendants(v)]:
                if seg.name == "*":
                    if d is not v:
                        out.append(d)
                elif isinstance(d, dict) and seg.name in d:
                    out.append(d[seg.name])
        elif isinstance(seg, Index):
            if not isinstance(v, list):
                continue
            if seg.is_slice:
                out.extend(v[slice(seg.start, seg.end, seg.step)])
            elif seg.start is not None and -len(v) <= seg.start < len(v):
                out.append(v[seg.start])
        elif isinstance(seg, Filter):
            for item in _children(v):
                left = evaluate(seg.lhs, root, item)
                if seg.op == "":
                    if left:
                        out.append(item)
                    continue
                right = evaluate(seg.rhs, root, item) if isinstance(seg.rhs, Path) else [seg.rhs]
                if left and right and _compare(left[0], seg.op, right[0]):
                    out.append(item)
    return out


def evaluate(path: Path, root: Any, current: Any) -> list[Any]:
    values = [root if path.root else current]
    for seg in path.segments:
        values = _step(values, seg, root)
    return values


def text(v: Any) -> str:
    """One result as kubectl prints it."""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if v is None:
        return ""
    return str(v)


# --------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Text:
    value: str


@dataclass(frozen=True)
class _Expr:
    path: Path


@dataclass(frozen=True)
class _Range:
    path: Path
    body: tuple[Any, ...]


def _actions(template: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", s) parts."""
    parts: list[tuple[str, str]] = []
    i = 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            parts.append(("text", template[i:]))
            break
        if j > i:
            parts.append(("text", template[i:j]))
        k = j + 1
        quote = ""
        while k < len(template):
            c = template[k]
            if quote:
                if c == "\\":
                    k += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "}":
                break
            k += 1
        else:
            raise JSONPathError(f"unclosed action in {template!r}")
        parts.append(("action", template[j + 1:k].strip()))
        i = k + 1
    return parts


@dataclass(frozen=True)
class Template:
    nodes: tuple[Any, ...]

    def render(self, data: Any) -> str:
        return _render(self.nodes, data, data)


def parse_template(template: str) -> Template:
    stack: list[tuple[Path | None, list[Any]]] = [(None, [])]
    for kind, s in _actions(template):
        body = stack[-1][1]
        if kind == "text":
            body.append(_Text(s))
        elif s.startswith("range ") or s.startswith("range\t"):
            stack.append((parse_path(s[6:]), []))
        elif s == "end":
            if len(stack) == 1:
                raise JSONPathError("not in range, nothing to end")
            path, inner = stack.pop()
            assert path is not None
            stack[-1][1].append(_Range(path, tuple(inner)))
        elif s[:1] in ("'", '"'):
            body.append(_Text(_unquote(s)))
        elif s == "":
            raise JSONPathError("empty action {}")
        else:
            body.append(_Expr(parse_path(s)))
    if len(stack) != 1:
        raise JSONPathError("unclosed range (missing {end})")
    return Template(tuple(stack[0][1]))


def _render(nodes: tuple[Any, ...], root: Any, current: Any) -> str:
    out: list[str] = []
    for n in nodes:
        if isinstance(n, _Text):
            out.append(n.value)
        elif isinstance(n, _Expr):
            out.append(" ".join(text(v) for v in evaluate(n.path, root, current)))
        else:
            for item in evaluate(n.path, root, current):
                out.append(_render(n.body, item, item))
    return "".join(out)


def relaxed(expr: str) -> Path:
    """A path as custom-columns and --sort-by take it: `.a.b`, `a.b` or `{.a.b}`."""
    e = expr.strip()
    if e.startswith("{") and e.endswith("}"):
        e = e[1:-1]
    if "{" in e or "}" in e:
        # kubectl's RelaxedJSONPathExpression takes one path, braced or not.
        raise JSONPathError("unexpected path string, expected a 'name1.name2' or '.name1.name2' or "
                            "'{name1.name2}' or '{.name1.name2}'")
    return parse_path(e)
