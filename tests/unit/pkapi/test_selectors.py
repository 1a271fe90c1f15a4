import pytest

from pkapi import selectors
from pkapi.selectors import SelectorError, parse_field_selector, parse_label_selector
from pkapi.v1 import core_pb2, meta_pb2

L = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    "sel,labels,want",
    [
        ("", {}, True),
        ("app=web", L, True),
        ("app==web", L, True),
        ("app=db", L, False),
        ("app!=db", L, True),
        ("app!=web", L, False),
        ("missing!=x", L, True),
        ("env in (prod,staging)", L, True),
        ("env in (dev)", L, False),
        ("env notin (dev, qa)", L, True),
        ("env notin (prod)", L, False),
        ("missing notin (prod)", L, True),
        ("missing in (prod)", L, False),
        ("app", L, True),
        ("missing", L, False),
        ("!missing", L, True),
        ("!app", L, False),
        ("app=web,tier=front", L, True),
        ("app=web,tier=back", L, False),
        ("app=web, env in (prod,qa), !legacy, tier", L, True),
        ("example.com/role=x", {"example.com/role": "x"}, True),
        ("app=", {"app": ""}, True),
        ("app=", L, False),
    ],
)
def test_label_selector(sel, labels, want):
    assert parse_label_selector(sel).matches(labels) is want


@pytest.mark.parametrize(
    "bad", ["app in ()", "app in (a", "a b", "=x", "app=web,", "app=-bad-", "in (a)", "x)y", "app=" + "a" * 64]
)
def test_label_selector_errors(bad):
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_label_selector_error_says_what_was_not_understood_once():
    # The API server prefixes "unable to parse requirement: "; the reason
    # must not repeat it.
    with pytest.raises(SelectorError) as e:
        parse_label_selector("a notin b")
    assert str(e.value).startswith("'a notin b': expected ") and "unable to parse" not in str(e.value)


def test_from_message():
    msg = meta_pb2.LabelSelector(
        match_labels={"app": "web"},
        match_expressions=[
            meta_pb2.LabelSelectorRequirement(key="env", operator="In", values=["prod", "qa"]),
            meta_pb2.LabelSelectorRequirement(key="legacy", operator="DoesNotExist"),
            meta_pb2.LabelSelectorRequirement(key="tier", operator="Exists"),
            meta_pb2.LabelSelectorRequirement(key="zone", operator="NotIn", values=["b"]),
        ],
    )
    sel = selectors.from_label_selector(msg)
    assert sel.matches(L)
    assert not sel.matches({**L, "legacy": "1"})
    assert not sel.matches({**L, "env": "dev"})
    assert not sel.matches({"app": "web", "env": "prod"})
    assert not sel.matches({**L, "zone": "b"})
    assert str(sel) == "app=web,env in (prod,qa),!legacy,tier,zone notin (b)"
    assert selectors.from_label_selector(meta_pb2.LabelSelector()).matches({})
    assert not selectors.from_label_selector(None).matches({})
    with pytest.raises(SelectorError):
        selectors.from_label_selector(
            meta_pb2.LabelSelector(match_expressions=[meta_pb2.LabelSelectorRequirement(key="a", operator="Bogus")])
        )


def test_round_trip_string():
    s = "app=web,env in (prod,qa),!legacy,tier"
    assert str(parse_label_selector(s)) == s


def test_field_selectors():
    pod = core_pb2.Pod()
    pod.metadata.name = "p1"
    pod.metadata.namespace = "default"
    pod.spec.node_name = "n1"
    pod.status.phase = "Running"
    f = selectors.object_fields(pod)
    assert parse_field_selector("metadata.name=p1").matches(f)
    assert parse_field_selector("metadata.name==p1,metadata.namespace=default").matches(f)
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Pending").matches(f)
    assert not parse_field_selector("spec.nodeName=n2").matches(f)
    assert parse_field_selector("spec.nodeName!=").matches(f)
    assert parse_field_selector("").matches(f)
    unbound = core_pb2.Pod()
    assert parse_field_selector("spec.nodeName=").matches(selectors.object_fields(unbound))
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name")


def test_event_fields_and_support():
    ev = core_pb2.Event()
    ev.metadata.name = "e"
    ev.involved_object.kind = "Pod"
    ev.involved_object.name = "p1"
    ev.involved_object.namespace = "ns"
    f = selectors.object_fields(ev)
    assert parse_field_selector("involvedObject.name=p1,involvedObject.kind=Pod,involvedObject.namespace=ns").matches(f)
    selectors.check_field_selector("Pod", parse_field_selector("spec.nodeName=x"))
    with pytest.raises(Exception, match="field label not supported: spec.bogus"):
        selectors.check_field_selector("Pod", parse_field_selector("spec.bogus=x"))
