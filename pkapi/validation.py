"""Validation with Kubernetes' field paths and wording.

Pure: no external calls or any I/O. validate(obj) returns every cause as a
string `path: Kind of error: detail`, in Kubernetes' words, e.g.
    spec.replicas: Invalid value: -1: must be greater than or equal to 0
The API server wraps them into `The Deployment "web" is invalid: ...`
(pkapi.errors.invalid), one `* cause` line each when there are several.

Objects are validated after defaulting, as in Kubernetes.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Mapping

from google.protobuf.message import Message

from pkapi import intstr, quantity, selectors
from pkapi.errors import field_duplicate, field_forbidden, field_invalid, field_required, field_unsupported

# ----------------------------------------------------------- name formats

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
PERCENT = r"[0-9]+%"

_MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    f"end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL}')"
)
_MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{DNS1123_SUBDOMAIN}')"
)
_MSG_1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    f"validation is '{DNS1035_LABEL}')"
)
_MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    f"for validation is '{LABEL_VALUE}')"
)
_MSG_QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{QUALIFIED_NAME}')"
)
_MSG_PERCENT = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex "
    f"used for validation is '{PERCENT}')"
)
_MSG_PORT_RANGE = "must be between 1 and 65535, inclusive"
_MSG_NONNEG = "must be greater than or equal to 0"
_MSG_IMMUTABLE = "field is immutable"


_COMPILED: dict[str, re.Pattern[str]] = {}


def _full(rx: str, s: str) -> bool:
    pat = _COMPILED.get(rx)
    if pat is None:
        pat = _COMPILED[rx] = re.compile(rx)
    return pat.fullmatch(s) is not None


def dns1123_label(s: str) -> list[str]:
    out = []
    if len(s) > 63:
        out.append("must be no more than 63 characters")
    if not _full(DNS1123_LABEL, s):
        out.append(_MSG_LABEL)
    return out


def dns1123_subdomain(s: str) -> list[str]:
    out = []
    if len(s) > 253:
        out.append("must be no more than 253 characters")
    if not _full(DNS1123_SUBDOMAIN, s):
        out.append(_MSG_SUBDOMAIN)
    return out


def dns1035_label(s: str) -> list[str]:
    out = []
    if len(s) > 63:
        out.append("must be no more than 63 characters")
    if not _full(DNS1035_LABEL, s):
        out.append(_MSG_1035)
    return out


def qualified_name(s: str) -> list[str]:
    """A label key: [prefix/]name."""
    prefix, slash, name = s.rpartition("/")
    out = []
    if slash:
        if not prefix:
            out.append("prefix part must be non-empty")
        else:
            out += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    if name and not _full(QUALIFIED_NAME, name):
        out.append(_MSG_QUALIFIED)
    return out


def label_value(s: str) -> list[str]:
    out = []
    if len(s) > 63:
        out.append("must be no more than 63 characters")
    if not _full(LABEL_VALUE, s):
        out.append(_MSG_LABEL_VALUE)
    return out


def iana_svc_name(s: str) -> list[str]:
    out = []
    if len(s) > 15:
        out.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", s):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in s:
        out.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", s):
        out.append("must contain at least one letter (a-z)")
    if s.startswith("-") or s.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


# Which name format each kind's metadata.name must have.
NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "Service": dns1035_label,
    "Namespace": dns1123_label,
}


# ------------------------------------------------------------ go-ish values


def go_map(m: Mapping[str, str]) -> str:
    if not m:
        return "map[string]string(nil)"
    return "map[string]string{" + ", ".join(f'"{k}":"{m[k]}"' for k in sorted(m)) + "}"


def go_selector(sel: Any) -> str:
    exprs = "[]v1.LabelSelectorRequirement(nil)"
    if sel.match_expressions:
        parts = []
        for e in sel.match_expressions:
            vals = "[]string{" + ", ".join(f'"{v}"' for v in e.values) + "}" if e.values else "[]string(nil)"
            parts.append(f'v1.LabelSelectorRequirement{{Key:"{e.key}", Operator:"{e.operator}", Values:{vals}}}')
        exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return f"v1.LabelSelector{{MatchLabels:{go_map(sel.match_labels)}, MatchExpressions:{exprs}}}"


class _Raw:
    """A value printed as is (not quoted) in `Invalid value: ...`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------- helpers


def _labels(path: str, labels: Mapping[str, str]) -> list[str]:
    out = []
    for k in sorted(labels):
        for m in qualified_name(k):
            out.append(field_invalid(path, k, m))
        for m in label_value(labels[k]):
            out.append(field_invalid(path, labels[k], m))
    return out


def _port(path: str, port: int, required: bool = True) -> list[str]:
    if port == 0 and required:
        return [field_required(path)]
    if not 1 <= port <= 65535 and port != 0:
        return [field_invalid(path, port, _MSG_PORT_RANGE)]
    return []


# Kubernetes' limits (MaxDNSNameservers, MaxDNSSearchPaths, MaxDNSSearchListChars).
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_CHARS = 2048


def _dns_config(path: str, spec: Any) -> list[str]:
    """Kubernetes' validatePodDNSConfig, with its wording."""
    out: list[str] = []
    none = spec.dns_policy == "None"
    if not spec.HasField("dns_config"):
        if none:
            out.append(field_required(path, "must provide `dnsConfig` when `dnsPolicy` is None"))
        return out
    cfg = spec.dns_config
    if none and not cfg.nameservers:
        out.append(field_required(f"{path}.nameservers",
                                  "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if len(cfg.nameservers) > MAX_DNS_NAMESERVERS:
        out.append(field_invalid(f"{path}.nameservers", list(cfg.nameservers),
                                 f"must not have more than {MAX_DNS_NAMESERVERS} nameservers"))
    for i, ns in enumerate(cfg.nameservers):
        try:
            ipaddress.ip_address(ns)
        except ValueError:
            out.append(field_invalid(f"{path}.nameservers[{i}]", ns, "must be valid IP address"))
    if len(cfg.searches) > MAX_DNS_SEARCH_PATHS:
        out.append(field_invalid(f"{path}.searches", list(cfg.searches),
                                 f"must not have more than {MAX_DNS_SEARCH_PATHS} search paths"))
    if len(" ".join(cfg.searches)) > MAX_DNS_SEARCH_CHARS:
        out.append(field_invalid(f"{path}.searches", list(cfg.searches),
                                 f"must not have more than {MAX_DNS_SEARCH_CHARS} characters (including spaces) "
                                 "in the search list"))
    for i, s in enumerate(cfg.searches):
        if s == ".":
            continue
        for m in dns1123_subdomain(s.removesuffix(".")):
            out.append(field_invalid(f"{path}.searches[{i}]", s, m))
    for i, o in enumerate(cfg.options):
        if not o.name:
            out.append(field_required(f"{path}.options[{i}]", "must not be empty"))
    return out


def _nonneg(path: str, v: int) -> list[str]:
    return [field_invalid(path, v, _MSG_NONNEG)] if v < 0 else []


def _int_or_port_name(path: str, v: Any) -> list[str]:
    try:
        x = intstr.value(v)
    except ValueError as e:
        return [field_invalid(path, _Raw(str(v)), str(e))]
    if x is None:
        return [field_required(path)]
    if isinstance(x, int):
        return _port(path, x)
    if not x:
        return [field_required(path)]
    return [field_invalid(path, x, m) for m in iana_svc_name(x)]


# ---------------------------------------------------------------- metadata


def validate_meta(kind: str, md: Any, namespaced: bool) -> list[str]:
    out: list[str] = []
    rule = NAME_RULES.get(kind, dns1123_subdomain)
    if not md.name and not md.generate_name:
        out.append(field_required("metadata.name", "name or generateName is required"))
    if md.generate_name:
        # A prefix: a trailing '-' is fine (Kubernetes masks it).
        g = md.generate_name[:-1] + "a" if md.generate_name.endswith("-") else md.generate_name
        for m in rule(g):
            out.append(field_invalid("metadata.generateName", md.generate_name, m))
    if md.name:
        for m in rule(md.name):
            out.append(field_invalid("metadata.name", md.name, m))
    if namespaced and md.namespace:
        for m in dns1123_label(md.namespace):
            out.append(field_invalid("metadata.namespace", md.namespace, m))
    out += _labels("metadata.labels", md.labels)
    for k in sorted(md.annotations):
        for m in qualified_name(k):
            out.append(field_invalid("metadata.annotations", k, m))
    for i, ref in enumerate(md.owner_references):
        p = f"metadata.ownerReferences[{i}]"
        if not ref.api_version:
            out.append(field_invalid(f"{p}.apiVersion", ref.api_version, "version must not be empty"))
        if not ref.kind:
            out.append(field_invalid(f"{p}.kind", ref.kind, "kind must not be empty"))
        if not ref.name:
            out.append(field_invalid(f"{p}.name", ref.name, "name must not be empty"))
        if not ref.uid:
            out.append(field_invalid(f"{p}.uid", ref.uid, "uid must not be empty"))
    return out


# -------------------------------------------------------------------- pods

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
TAINT_EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"]
RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _probe(path: str, p: Any, liveness_or_startup: bool) -> list[str]:
    out: list[str] = []
    handlers = [h for h in ("exec", "http_get", "tcp_socket") if p.HasField(h)]
    if not handlers:
        out.append(field_required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        out.append(field_forbidden(f"{path}.{_camel(handlers[1])}", "may not specify more than 1 handler type"))
    if p.HasField("http_get"):
        out += _int_or_port_name(f"{path}.httpGet.port", p.http_get.port)
        if p.http_get.scheme not in ("", "HTTP", "HTTPS"):
            out.append(field_unsupported(f"{path}.httpGet.scheme", p.http_get.scheme, ["HTTP", "HTTPS"]))
    if p.HasField("tcp_socket"):
        out += _int_or_port_name(f"{path}.tcpSocket.port", p.tcp_socket.port)
    if p.HasField("exec") and not p.exec.command:
        out.append(field_required(f"{path}.exec.command"))
    for name in ("initial_delay_seconds", "timeout_seconds", "period_seconds", "success_threshold",
                 "failure_threshold"):
        out += _nonneg(f"{path}.{_camel(name)}", getattr(p, name))
    if liveness_or_startup and p.success_threshold not in (0, 1):
        out.append(field_invalid(f"{path}.successThreshold", p.success_threshold, "must be 1"))
    return out


def _camel(s: str) -> str:
    head, *rest = s.split("_")
    return head + "".join(w.capitalize() if w != "ip" else "IP" for w in rest)


def _container(path: str, c: Any, names: set[str]) -> list[str]:
    out: list[str] = []
    if not c.name:
        out.append(field_required(f"{path}.name"))
    else:
        for m in dns1123_label(c.name):
            out.append(field_invalid(f"{path}.name", c.name, m))
        if c.name in names:
            out.append(field_duplicate(f"{path}.name", c.name))
        names.add(c.name)
    if not c.image:
        out.append(field_required(f"{path}.image"))
    elif c.image != c.image.strip():
        out.append(field_invalid(f"{path}.image", c.image, "must not have leading or trailing whitespace"))
    if c.image_pull_policy and c.image_pull_policy not in PULL_POLICIES:
        out.append(field_unsupported(f"{path}.imagePullPolicy", c.image_pull_policy, PULL_POLICIES))
    port_names: set[str] = set()
    for i, p in enumerate(c.ports):
        pp = f"{path}.ports[{i}]"
        out += _port(f"{pp}.containerPort", p.container_port)
        if p.host_port:
            out += _port(f"{pp}.hostPort", p.host_port)
        if p.protocol and p.protocol not in PROTOCOLS:
            out.append(field_unsupported(f"{pp}.protocol", p.protocol, PROTOCOLS))
        if p.name:
            for m in iana_svc_name(p.name):
                out.append(field_invalid(f"{pp}.name", p.name, m))
            if p.name in port_names:
                out.append(field_duplicate(f"{pp}.name", p.name))
            port_names.add(p.name)
    for i, e in enumerate(c.env):
        if not e.name:
            out.append(field_required(f"{path}.env[{i}].name"))
        elif not re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", e.name):
            out.append(field_invalid(
                f"{path}.env[{i}].name", e.name,
                "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or "
                "'.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
                "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"))
        if e.value and e.HasField("value_from"):
            out.append(field_invalid(f"{path}.env[{i}].valueFrom", _Raw(""),
                                     "may not be specified when `value` is not empty"))
    out += _resources(f"{path}.resources", c.resources)
    if c.HasField("liveness_probe"):
        out += _probe(f"{path}.livenessProbe", c.liveness_probe, True)
    if c.HasField("readiness_probe"):
        out += _probe(f"{path}.readinessProbe", c.readiness_probe, False)
    if c.HasField("startup_probe"):
        out += _probe(f"{path}.startupProbe", c.startup_probe, True)
    return out


def _resources(path: str, r: Any) -> list[str]:
    out: list[str] = []
    parsed: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for which in ("limits", "requests"):
        m = getattr(r, which)
        for name in sorted(m):
            p = f"{path}.{which}[{name}]"
            v = m[name]
            text = quantity._text(v) if v.WhichOneof("kind") in ("number_value", "string_value") else str(v)
            try:
                q = quantity.parse(v)
            except quantity.QuantityError as e:
                out.append(field_invalid(p, text, str(e)))
                continue
            if q < 0:
                out.append(field_invalid(p, text, _MSG_NONNEG))
            parsed[which][name] = (q, text)
    for name, (q, text) in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        if lim is not None and q > lim[0]:
            out.append(field_invalid(f"{path}.requests", text, f"must be less than or equal to {name} limit of {lim[1]}"))
    return out


def validate_pod_spec(path: str, spec: Any) -> list[str]:
    out: list[str] = []
    if not spec.containers:
        out.append(field_required(f"{path}.containers"))
    names: set[str] = set()
    for i, c in enumerate(spec.containers):
        out += _container(f"{path}.containers[{i}]", c, names)
    if spec.restart_policy not in RESTART_POLICIES:
        if spec.restart_policy:
            out.append(field_unsupported(f"{path}.restartPolicy", spec.restart_policy, RESTART_POLICIES))
        else:
            out.append(field_required(f"{path}.restartPolicy"))
    if spec.dns_policy and spec.dns_policy not in DNS_POLICIES:
        out.append(field_unsupported(f"{path}.dnsPolicy", spec.dns_policy, DNS_POLICIES))
    out += _dns_config(f"{path}.dnsConfig", spec)
    if spec.HasField("termination_grace_period_seconds"):
        out += _nonneg(f"{path}.terminationGracePeriodSeconds", spec.termination_grace_period_seconds)
    out += _labels(f"{path}.nodeSelector", spec.node_selector)
    if spec.node_name:
        for m in dns1123_subdomain(spec.node_name):
            out.append(field_invalid(f"{path}.nodeName", spec.node_name, m))
    for i, t in enumerate(spec.tolerations):
        tp = f"{path}.tolerations[{i}]"
        if t.operator not in ("", "Equal", "Exists"):
            out.append(field_unsupported(f"{tp}.operator", t.operator, ["Equal", "Exists"]))
        if t.operator == "Exists" and t.value:
            out.append(field_invalid(f"{tp}.operator", t.operator, "value must be empty when `operator` is 'Exists'"))
        if not t.key and t.operator != "Exists":
            out.append(field_invalid(f"{tp}.operator", t.operator,
                                     "operator must be Exists when `key` is empty, which means \"match all values "
                                     "and all keys\""))
        if t.key:
            for m in qualified_name(t.key):
                out.append(field_invalid(f"{tp}.key", t.key, m))
        if t.effect and t.effect not in TAINT_EFFECTS:
            out.append(field_unsupported(f"{tp}.effect", t.effect, TAINT_EFFECTS))
        if t.HasField("toleration_seconds") and t.effect != "NoExecute":
            out.append(field_invalid(f"{tp}.effect", t.effect,
                                     "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    return out


def _pod(p: Any) -> list[str]:
    return validate_pod_spec("spec", p.spec)


# ------------------------------------------------------------- workloads


def _selector_and_template(spec: Any, kind: str) -> list[str]:
    out: list[str] = []
    if not spec.HasField("selector"):
        out.append(field_required("spec.selector"))
    else:
        sel = spec.selector
        if not sel.match_labels and not sel.match_expressions:
            out.append(field_invalid("spec.selector", _Raw(go_selector(sel)), "empty selector is invalid for deployment"))
        else:
            out += _labels("spec.selector.matchLabels", sel.match_labels)
            for i, e in enumerate(sel.match_expressions):
                ep = f"spec.selector.matchExpressions[{i}]"
                if e.operator not in selectors.OPERATORS:
                    out.append(field_invalid(f"{ep}.operator", e.operator, "not a valid selector operator"))
                elif e.operator in ("In", "NotIn") and not e.values:
                    out.append(field_required(f"{ep}.values",
                                              "must be specified when `operator` is 'In' or 'NotIn'"))
                elif e.operator in ("Exists", "DoesNotExist") and e.values:
                    out.append(field_forbidden(f"{ep}.values",
                                               "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
                for m in qualified_name(e.key):
                    out.append(field_invalid(f"{ep}.key", e.key, m))
            if not out:
                tlabels = spec.template.metadata.labels
                try:
                    matches = selectors.from_label_selector(sel).matches(tlabels)
                except selectors.SelectorError:
                    matches = True
                if not matches:
                    out.append(field_invalid("spec.template.metadata.labels", _Raw(go_map(tlabels)),
                                             "`selector` does not match template `labels`"))
    if not spec.HasField("template"):
        out.append(field_required("spec.template"))
        return out
    out += _labels("spec.template.metadata.labels", spec.template.metadata.labels)
    out += validate_pod_spec("spec.template.spec", spec.template.spec)
    rp = spec.template.spec.restart_policy
    if rp in RESTART_POLICIES and rp != "Always":
        out.append(field_unsupported("spec.template.spec.restartPolicy", rp, ["Always"]))
    return out


def _replicas(spec: Any) -> list[str]:
    if spec.HasField("replicas"):
        return _nonneg("spec.replicas", spec.replicas)
    return []


def _intstr_field(path: str, v: Any, percent_max: bool) -> tuple[list[str], int | None]:
    """Validate an int-or-percent; returns (causes, value: int or percent)."""
    try:
        x = intstr.value(v)
    except ValueError as e:
        return [field_invalid(path, _Raw(str(v).strip()), str(e))], None
    if x is None:
        return [], None
    if isinstance(x, int):
        if x < 0:
            return [field_invalid(path, x, _MSG_NONNEG)], None
        return [], x
    if not _full(PERCENT, x):
        return [field_invalid(path, x, _MSG_PERCENT)], None
    p = int(x[:-1])
    if percent_max and p > 100:
        return [field_invalid(path, x, "must not be greater than 100%")], None
    return [], p


def _deployment(d: Any) -> list[str]:
    s = d.spec
    out = _replicas(s) + _selector_and_template(s, "Deployment")
    st = s.strategy
    if st.type not in ("Recreate", "RollingUpdate"):
        out.append(field_unsupported("spec.strategy.type", st.type, ["Recreate", "RollingUpdate"]))
    elif st.type == "Recreate" and st.HasField("rolling_update"):
        out.append(field_forbidden("spec.strategy.rollingUpdate",
                                   "may not be specified when strategy `type` is 'Recreate'"))
    elif st.type == "RollingUpdate":
        ru = st.rolling_update
        c1, unavail = _intstr_field("spec.strategy.rollingUpdate.maxUnavailable", ru.max_unavailable, True)
        c2, surge = _intstr_field("spec.strategy.rollingUpdate.maxSurge", ru.max_surge, False)
        out += c2 + c1
        if not c1 and not c2 and unavail == 0 and surge == 0:
            out.append(field_invalid("spec.strategy.rollingUpdate.maxUnavailable",
                                     _Raw(_intstr_text(ru.max_unavailable)), "may not be 0 when `maxSurge` is 0"))
    out += _nonneg("spec.minReadySeconds", s.min_ready_seconds)
    if s.HasField("revision_history_limit"):
        out += _nonneg("spec.revisionHistoryLimit", s.revision_history_limit)
    if s.HasField("progress_deadline_seconds"):
        out += _nonneg("spec.progressDeadlineSeconds", s.progress_deadline_seconds)
        if s.progress_deadline_seconds <= s.min_ready_seconds:
            out.append(field_invalid("spec.progressDeadlineSeconds", s.progress_deadline_seconds,
                                     "must be greater than minReadySeconds"))
    return out


def _intstr_text(v: Any) -> str:
    x = intstr.value(v)
    return f'"{x}"' if isinstance(x, str) else str(x)


def _replica_set(rs: Any) -> list[str]:
    s = rs.spec
    return _replicas(s) + _selector_and_template(s, "ReplicaSet") + _nonneg("spec.minReadySeconds", s.min_ready_seconds)


# ---------------------------------------------------------------- services

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def _service(svc: Any) -> list[str]:
    s = svc.spec
    out: list[str] = []
    if s.type not in SERVICE_TYPES:
        out.append(field_unsupported("spec.type", s.type, SERVICE_TYPES))
    headless = s.cluster_ip == "None"
    if s.type == "ExternalName":
        if not s.external_name:
            out.append(field_required("spec.externalName"))
        else:
            for m in dns1123_subdomain(s.external_name.rstrip(".")):
                out.append(field_invalid("spec.externalName", s.external_name, m))
    elif not s.ports and not headless:
        out.append(field_required("spec.ports"))
    if s.session_affinity not in ("ClientIP", "None"):
        out.append(field_unsupported("spec.sessionAffinity", s.session_affinity, ["ClientIP", "None"]))
    if s.session_affinity == "ClientIP":
        cfg = s.session_affinity_config.client_ip
        if cfg.HasField("timeout_seconds") and not 0 < cfg.timeout_seconds <= 86400:
            out.append(field_invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", cfg.timeout_seconds,
                                     "must be greater than 0 and less than 86400"))
    if s.cluster_ip and not headless:
        try:
            ipaddress.ip_address(s.cluster_ip)
        except ValueError:
            out.append(field_invalid("spec.clusterIPs[0]", s.cluster_ip,
                                     "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    for i, ip in enumerate(s.external_ips):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            out.append(field_invalid(f"spec.externalIPs[{i}]", ip,
                                     "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for i, p in enumerate(s.ports):
        pp = f"spec.ports[{i}]"
        if len(s.ports) > 1 and not p.name:
            out.append(field_required(f"{pp}.name"))
        elif p.name:
            for m in dns1123_label(p.name):
                out.append(field_invalid(f"{pp}.name", p.name, m))
            if p.name in names:
                out.append(field_duplicate(f"{pp}.name", p.name))
            names.add(p.name)
        if p.port == 0:
            out.append(field_invalid(f"{pp}.port", 0, _MSG_PORT_RANGE))
        else:
            out += _port(f"{pp}.port", p.port)
        if p.protocol not in PROTOCOLS:
            out.append(field_unsupported(f"{pp}.protocol", p.protocol, PROTOCOLS))
        if intstr.is_set(p.target_port):
            out += _int_or_port_name(f"{pp}.targetPort", p.target_port)
        if p.node_port:
            if not 1 <= p.node_port <= 65535:
                out.append(field_invalid(f"{pp}.nodePort", p.node_port, _MSG_PORT_RANGE))
            elif s.type in ("ClusterIP", "ExternalName"):
                out.append(field_forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{s.type}'"))
        if (p.port, p.protocol) in seen and p.port:
            out.append(field_duplicate(f"{pp}", _Raw(f"core.ServicePort{{Name:\"{p.name}\", Protocol:\"{p.protocol}\", "
                                                     f"Port:{p.port}}}")))
        seen.add((p.port, p.protocol))
    out += _labels("spec.selector", s.selector)
    if s.external_traffic_policy and s.external_traffic_policy not in ("Cluster", "Local"):
        out.append(field_unsupported("spec.externalTrafficPolicy", s.external_traffic_policy, ["Cluster", "Local"]))
    if s.internal_traffic_policy and s.internal_traffic_policy not in ("Cluster", "Local"):
        out.append(field_unsupported("spec.internalTrafficPolicy", s.internal_traffic_policy, ["Cluster", "Local"]))
    return out


# ------------------------------------------------------------ other kinds


def _node(n: Any) -> list[str]:
    out: list[str] = []
    for i, t in enumerate(n.spec.taints):
        tp = f"spec.taints[{i}]"
        if not t.key:
            out.append(field_required(f"{tp}.key"))
        else:
            for m in qualified_name(t.key):
                out.append(field_invalid(f"{tp}.key", t.key, m))
        if t.effect not in TAINT_EFFECTS:
            out.append(field_unsupported(f"{tp}.effect", t.effect, TAINT_EFFECTS))
    return out


def _endpoints(ep: Any) -> list[str]:
    out: list[str] = []
    for i, sub in enumerate(ep.subsets):
        for j, a in enumerate(list(sub.addresses) + list(sub.not_ready_addresses)):
            try:
                ipaddress.ip_address(a.ip)
            except ValueError:
                which = "addresses" if j < len(sub.addresses) else "notReadyAddresses"
                k = j if j < len(sub.addresses) else j - len(sub.addresses)
                out.append(field_invalid(f"subsets[{i}].{which}[{k}].ip", a.ip,
                                         "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        for j, p in enumerate(sub.ports):
            out += _port(f"subsets[{i}].ports[{j}].port", p.port)
            if p.protocol and p.protocol not in PROTOCOLS:
                out.append(field_unsupported(f"subsets[{i}].ports[{j}].protocol", p.protocol, PROTOCOLS))
    return out


def _event(ev: Any) -> list[str]:
    out: list[str] = []
    if ev.type and ev.type not in ("Normal", "Warning"):
        out.append(field_unsupported("type", ev.type, ["Normal", "Warning"]))
    if ev.involved_object.namespace and ev.metadata.namespace and \
            ev.involved_object.namespace != ev.metadata.namespace:
        out.append(field_invalid("involvedObject.namespace", ev.involved_object.namespace,
                                 "does not match event.namespace"))
    return out


def _lease(lease: Any) -> list[str]:
    if lease.spec.HasField("lease_duration_seconds") and lease.spec.lease_duration_seconds <= 0:
        return [field_invalid("spec.leaseDurationSeconds", lease.spec.lease_duration_seconds,
                              "must be greater than 0")]
    return []


_BY_KIND: dict[str, Callable[[Any], list[str]]] = {
    "Deployment": _deployment,
    "ReplicaSet": _replica_set,
    "Pod": _pod,
    "Service": _service,
    "Node": _node,
    "Endpoints": _endpoints,
    "Event": _event,
    "Lease": _lease,
}

_NAMESPACED = {"Namespace": False, "Node": False}


def validate(msg: Message) -> list[str]:
    """Every cause that makes `msg` invalid (empty: valid)."""
    kind = msg.DESCRIPTOR.name
    out = validate_meta(kind, msg.metadata, _NAMESPACED.get(kind, True))  # type: ignore[attr-defined]
    fn = _BY_KIND.get(kind)
    if fn is not None:
        out += fn(msg)
    return out


# ------------------------------------------------------------------ update


def validate_update(old: Message, new: Message) -> list[str]:
    """Causes that forbid changing `old` into `new` (immutable fields)."""
    kind = new.DESCRIPTOR.name
    o: Any = old
    n: Any = new
    out: list[str] = []
    if kind in ("Deployment", "ReplicaSet") and o.spec.selector != n.spec.selector:
        out.append(field_invalid("spec.selector", _Raw(go_selector(n.spec.selector)), _MSG_IMMUTABLE))
    if kind == "Service":
        if (o.spec.cluster_ip and n.spec.cluster_ip != o.spec.cluster_ip and n.spec.type != "ExternalName"
                and o.spec.type != "ExternalName"):
            out.append(field_invalid("spec.clusterIP", n.spec.cluster_ip, _MSG_IMMUTABLE))
    if kind == "Pod":
        if o.spec.node_name and n.spec.node_name != o.spec.node_name:
            out.append(field_invalid("spec.nodeName", n.spec.node_name, _MSG_IMMUTABLE))
        oc = [(c.name, c.image) for c in o.spec.containers]
        nc = [(c.name, c.image) for c in n.spec.containers]
        if [x[0] for x in oc] != [x[0] for x in nc]:
            out.append(field_forbidden("spec", "pod updates may not change fields other than "
                                       "`spec.containers[*].image`, `spec.nodeName` (once), "
                                       "`spec.tolerations` (only additions to existing tolerations)"))
    if o.metadata.HasField("deletion_timestamp"):
        added = set(n.metadata.finalizers) - set(o.metadata.finalizers)
        if added:
            out.append(field_forbidden("metadata.finalizers",
                                       f"no new finalizers can be added if the object is being deleted, found new "
                                       f"finalizers []string{{{', '.join(repr(f).replace(chr(39), chr(34)) for f in sorted(added))}}}"))
    return out


def validate_status(msg: Message) -> list[str]:
    """Status writes: the few enumerations Kubernetes checks."""
    kind = msg.DESCRIPTOR.name
    m: Any = msg
    out: list[str] = []
    if kind == "Pod":
        phases = ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
        if m.status.phase and m.status.phase not in phases:
            out.append(field_unsupported("status.phase", m.status.phase, phases))
    if kind in ("Pod", "Node", "Deployment", "ReplicaSet"):
        for i, c in enumerate(m.status.conditions):
            if c.status not in ("True", "False", "Unknown"):
                out.append(field_unsupported(f"status.conditions[{i}].status", c.status, ["False", "True", "Unknown"]))
    return out
