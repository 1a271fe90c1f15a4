"""The three patch types: RFC 6902 (Appendix A's examples), RFC 7386
(Appendix A's table) and Kubernetes' strategic merge patch (the behaviour its
docs describe for Deployments, Pods, Services and Nodes)."""

import copy
import json

import pytest

from pkapi import patch as P
from pkapi.patch import PatchError

# ------------------------------------------------------------------ RFC 6902, Appendix A

RFC6902_OK = [
    # A.1 adding an object member
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    # A.2 adding an array element
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    # A.3 removing an object member
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    # A.4 removing an array element
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    # A.5 replacing a value
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    # A.6 moving a value
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    # A.7 moving an array element
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    # A.8 testing a value: success
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    # A.10 adding a nested member object
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    # A.11 ignoring unrecognized elements
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    # A.14 ~ escape ordering
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    # A.16 adding an array value
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
    # copy (section 4.5)
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
]


@pytest.mark.parametrize("doc,ops,want", RFC6902_OK)
def test_json_patch_rfc6902_examples(doc, ops, want):
    before = copy.deepcopy(doc)
    assert P.json_patch(doc, ops) == want
    assert doc == before  # the input is not changed


RFC6902_FAIL = [
    # A.9 testing a value: error
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    # A.12 adding to a nonexistent target
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    # A.15 comparing strings and numbers
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]),
    # removing what is not there; an index past the end
    ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}]),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/5", "value": 2}]),
]


@pytest.mark.parametrize("doc,ops", RFC6902_FAIL)
def test_json_patch_that_does_not_apply_is_422(doc, ops):
    with pytest.raises(PatchError) as e:
        P.json_patch(doc, ops)
    assert (e.value.code, e.value.reason) == (422, "Invalid")


def test_json_patch_is_atomic():
    # A later failing operation leaves nothing of the earlier ones (the input is untouched).
    doc = {"a": 1}
    with pytest.raises(PatchError):
        P.json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}])
    assert doc == {"a": 1}


@pytest.mark.parametrize("ops", [
    {"op": "add", "path": "/a", "value": 1},  # not a list
    ["add"],  # not operations
    [{"path": "/a", "value": 1}],  # no op
    [{"op": "frobnicate", "path": "/a"}],  # unknown op
    [{"op": "add", "value": 1}],  # no path
])
def test_json_patch_malformed_is_400(ops):
    with pytest.raises(PatchError) as e:
        P.json_patch({"a": 0}, ops)
    assert (e.value.code, e.value.reason) == (400, "BadRequest")


def test_json_patch_rollout_undo_shape():
    # kubectl rollout undo sends a replace of the template and annotations.
    d = {"metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "2"}},
         "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}
    tmpl = {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}
    out = P.apply_patch(d, json.dumps([
        {"op": "replace", "path": "/spec/template", "value": tmpl},
        {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "1"}},
    ]).encode(), "application/json-patch+json", "Deployment")
    assert out["spec"]["template"] == tmpl
    assert out["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}


# ------------------------------------------------------------------ RFC 7386, Appendix A

RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target,patch,want", RFC7386)
def test_merge_patch_rfc7386_examples(target, patch, want):
    before = copy.deepcopy(target)
    assert P.merge_patch(target, patch) == want
    assert target == before


def test_merge_patch_replaces_lists_of_containers():
    # Unlike SMP, a merge patch knows no merge keys: the list is replaced.
    d = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}
    out = P.apply_patch(d, '{"spec":{"containers":[{"name":"a","image":"z"}]}}', "application/merge-patch+json", "Pod")
    assert out["spec"]["containers"] == [{"name": "a", "image": "z"}]


def test_merge_patch_body_must_be_object():
    with pytest.raises(PatchError) as e:
        P.apply_patch({"a": 1}, b"[1]", "application/merge-patch+json", "Pod")
    assert (e.value.code, e.value.reason) == (400, "BadRequest")
    assert "cannot unmarshal array" in e.value.message


# ------------------------------------------------------------------ apply_patch: errors, content types


def test_body_not_json_is_400():
    for ct in P.PATCH_TYPES:
        with pytest.raises(PatchError) as e:
            P.apply_patch({}, b"{nope", ct, "Pod")
        assert (e.value.code, e.value.reason) == (400, "BadRequest")
        assert e.value.status() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": e.value.message, "reason": "BadRequest", "code": 400}


def test_unknown_content_type_is_415():
    with pytest.raises(PatchError) as e:
        P.apply_patch({}, b"{}", "application/json", "Pod")
    assert (e.value.code, e.value.reason) == (415, "UnsupportedMediaType")
    assert "application/strategic-merge-patch+json" in e.value.message


def test_content_type_parameters_ignored():
    out = P.apply_patch({"a": 1}, b'{"b":2}', "application/merge-patch+json; charset=utf-8", "Pod")
    assert out == {"a": 1, "b": 2}


def test_smp_body_must_be_object():
    with pytest.raises(PatchError) as e:
        P.apply_patch({}, b'[{"op":"add"}]', "application/strategic-merge-patch+json", "Pod")
    assert (e.value.code, e.value.reason) == (400, "BadRequest")


def test_bytes_not_utf8_is_400():
    with pytest.raises(PatchError) as e:
        P.apply_patch({}, b"\xff\xfe", "application/merge-patch+json", "Pod")
    assert e.value.code == 400


# ------------------------------------------------------------------ strategic merge patch


def smp(obj, patch, kind="Deployment"):
    before = copy.deepcopy(obj)
    out = P.strategic_merge_patch(obj, patch, kind)
    assert obj == before  # never changes its input
    return out


def deployment(containers, **spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"},
            "spec": {"replicas": 2, **spec, "template": {"metadata": {"labels": {"app": "nginx"}},
                                                          "spec": {"containers": containers}}}}


def containers_of(d):
    return d["spec"]["template"]["spec"]["containers"]


def test_smp_adds_container_by_name_and_keeps_the_old_one():
    # The docs' patch-demo: the new container comes first, the existing one stays.
    d = deployment([{"name": "patch-demo-ctr", "image": "nginx"}])
    out = smp(d, {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}})
    assert containers_of(out) == [{"name": "patch-demo-ctr-2", "image": "redis"},
                                  {"name": "patch-demo-ctr", "image": "nginx"}]
    assert out["spec"]["replicas"] == 2


def test_smp_changes_one_container_field_in_place():
    d = deployment([{"name": "a", "image": "x", "args": ["-v"]}, {"name": "b", "image": "y"}])
    out = smp(d, {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y2"}]}}}})
    assert containers_of(out) == [{"name": "a", "image": "x", "args": ["-v"]}, {"name": "b", "image": "y2"}]


def test_smp_tolerations_have_no_strategy_and_are_replaced():
    # The docs' second example: PodSpec.tolerations is replaced, not merged.
    d = deployment([{"name": "c", "image": "nginx"}])
    d["spec"]["template"]["spec"]["tolerations"] = [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}]
    out = smp(d, {"spec": {"template": {"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype",
                                                                    "value": "ssd"}]}}}})
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"effect": "NoSchedule", "key": "disktype",
                                                                "value": "ssd"}]


def test_smp_retain_keys_drops_rolling_update_for_recreate():
    # The docs' retainKeys example: type Recreate with $retainKeys [type] removes rollingUpdate.
    d = deployment([{"name": "c", "image": "nginx"}],
                   strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    out = smp(d, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    # Without $retainKeys the map merges and rollingUpdate stays (which validation then refuses).
    out = smp(d, {"spec": {"strategy": {"type": "Recreate"}}})
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}


def test_smp_retain_keys_errors():
    d = deployment([], strategy={"type": "RollingUpdate"})
    with pytest.raises(PatchError) as e:
        smp(d, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}})
    assert (e.value.code, e.value.message) == (400, "invalid patch format of retainKeys")
    with pytest.raises(PatchError) as e:
        smp(d, {"spec": {"strategy": {"$retainKeys": "type"}}})
    assert (e.value.code, e.value.message) == (400, "invalid patch format of retainKeys")


def test_smp_null_deletes_and_unmatched_null_is_dropped():
    d = deployment([{"name": "c", "image": "nginx"}])
    d["metadata"]["labels"] = {"a": "1", "b": "2"}
    out = smp(d, {"metadata": {"labels": {"a": None, "c": "3"}, "annotations": {"x": None, "y": "1"}},
                  "spec": {"paused": None}})
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["metadata"]["annotations"] == {"y": "1"}  # the null for a missing key is not stored
    assert "paused" not in out["spec"]


def test_smp_patch_delete_removes_list_element_by_merge_key():
    d = deployment([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    out = smp(d, {"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}})
    assert containers_of(out) == [{"name": "b", "image": "y"}]


def test_smp_patch_delete_needs_the_merge_key():
    d = deployment([{"name": "a", "image": "x"}])
    with pytest.raises(PatchError) as e:
        smp(d, {"spec": {"template": {"spec": {"containers": [{"image": "x", "$patch": "delete"}]}}}})
    assert e.value.code == 400 and "does not contain declared merge key: name" in e.value.message


def test_smp_patch_replace_in_list_replaces_it():
    d = deployment([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    out = smp(d, {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "z"}, {"$patch": "replace"}]}}}})
    assert containers_of(out) == [{"name": "c", "image": "z"}]


def test_smp_patch_replace_and_delete_in_map():
    d = deployment([], strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    d["metadata"]["labels"] = {"a": "1"}
    out = smp(d, {"metadata": {"labels": {"$patch": "replace", "b": "2"}}})
    assert out["metadata"]["labels"] == {"b": "2"}
    out = smp(d, {"spec": {"strategy": {"$patch": "delete"}}})
    assert out["spec"]["strategy"] == {}
    out = smp(d, {"metadata": {"labels": {"$patch": "merge", "b": "2"}}})
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_smp_unknown_patch_directive_is_400():
    with pytest.raises(PatchError) as e:
        smp(deployment([]), {"metadata": {"labels": {"$patch": "frob"}}})
    assert e.value.code == 400 and "unknown patch type: frob" in e.value.message


def test_smp_directives_in_new_values_are_not_stored():
    d = {"metadata": {"name": "x"}}
    out = smp(d, {"metadata": {"labels": {"$patch": "replace", "a": "1", "b": None}}}, "Pod")
    assert out["metadata"]["labels"] == {"a": "1"}
    out = smp({"spec": {}}, {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]},
                                                    {"name": "b", "$patch": "delete"}]}}, "Pod")
    assert out["spec"]["containers"] == [{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]}]


def test_smp_nested_lists_merge_by_their_keys():
    # ports by containerPort, env by name, volumeMounts by mountPath.
    c = {"name": "web", "image": "nginx",
         "ports": [{"containerPort": 80, "name": "http"}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    out = smp(deployment([c]), {"spec": {"template": {"spec": {"containers": [{
        "name": "web",
        "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
        "env": [{"name": "B", "value": "3"}],
        "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}]}}}})
    got = containers_of(out)[0]
    assert got["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]
    assert got["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert got["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]


def test_smp_set_element_order_orders_the_merged_list():
    # kubectl apply sends the full order; the elements it changes, only.
    d = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}])
    out = smp(d, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
        "containers": [{"name": "a", "image": "1b"}]}}}})
    assert [(x["name"], x["image"]) for x in containers_of(out)] == [("c", "3"), ("a", "1b"), ("b", "2")]


def test_smp_set_element_order_without_the_list_only_reorders():
    d = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    out = smp(d, {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}}})
    assert [x["name"] for x in containers_of(out)] == ["b", "a"]


def test_smp_set_element_order_with_an_add_and_a_delete():
    # What kubectl apply sends after a manifest renames container b to d.
    d = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    out = smp(d, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "d"}],
        "containers": [{"name": "d", "image": "4"}, {"name": "b", "$patch": "delete"}]}}}})
    assert [(x["name"], x["image"]) for x in containers_of(out)] == [("a", "1"), ("d", "4")]


def test_smp_set_element_order_inconsistent_with_patch_is_400():
    d = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    for order in ([{"name": "a"}], [{"name": "b"}, {"name": "a"}], "a"):
        with pytest.raises(PatchError) as e:
            smp(d, {"spec": {"template": {"spec": {"$setElementOrder/containers": order,
                                                   "containers": [{"name": "a"}, {"name": "b"}]}}}})
        assert (e.value.code, e.value.message) == (400, "invalid patch format of setElementOrder list")


def test_smp_scalar_lists_with_merge_strategy_are_unions():
    # ObjectMeta.finalizers has patchStrategy merge; the new value goes first.
    d = {"metadata": {"name": "n", "finalizers": ["a", "b"]}}
    out = smp(d, {"metadata": {"finalizers": ["c", "a"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]
    out = smp(d, {"metadata": {"$setElementOrder/finalizers": ["a", "b", "c"], "finalizers": ["c"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]


def test_smp_delete_from_primitive_list():
    d = {"metadata": {"name": "n", "finalizers": ["a", "b", "c"]}}
    out = smp(d, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["a", "c"]
    out = smp(d, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["d"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["d", "b", "c"]
    with pytest.raises(PatchError) as e:
        smp(d, {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "Pod")
    assert (e.value.code, e.value.message) == (400, "invalid patch format of primitive list")


def test_smp_lists_without_strategy_are_replaced():
    # Container.args and Service.spec.externalIPs have no patch strategy.
    d = deployment([{"name": "a", "image": "x", "args": ["1", "2"]}])
    out = smp(d, {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["3"]}]}}}})
    assert containers_of(out)[0]["args"] == ["3"]
    s = {"spec": {"externalIPs": ["1.2.3.4"], "ports": [{"port": 80, "targetPort": 8080}]}}
    assert smp(s, {"spec": {"externalIPs": ["5.6.7.8"]}}, "Service")["spec"]["externalIPs"] == ["5.6.7.8"]


def test_smp_empty_merge_list_is_a_no_op():
    d = deployment([{"name": "a", "image": "x"}])
    assert containers_of(smp(d, {"spec": {"template": {"spec": {"containers": []}}}})) == [{"name": "a", "image": "x"}]


def test_smp_service_ports_merge_by_port():
    s = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
    out = smp(s, {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}, "Service")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "protocol": "TCP"}, {"port": 443}]


def test_smp_node_cordon_and_conditions_by_type():
    # kubectl cordon: {"spec":{"unschedulable":true}}; status conditions merge by type.
    n = {"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.0.0.0/24"]},
         "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}],
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}
    out = smp(n, {"spec": {"unschedulable": True},
                  "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletDown"}],
                             "addresses": [{"type": "Hostname", "address": "node-1"}]}}, "Node")
    assert out["spec"] == {"podCIDRs": ["10.0.0.0/24"], "unschedulable": True}
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "False", "reason": "KubeletDown"},
                                           {"type": "MemoryPressure", "status": "False"}]
    assert out["status"]["addresses"] == [{"type": "Hostname", "address": "node-1"},
                                          {"type": "InternalIP", "address": "10.0.0.1"}]


def test_smp_owner_references_by_uid():
    d = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "ReplicaSet"}]}}
    out = smp(d, {"metadata": {"ownerReferences": [{"uid": "1", "controller": True}, {"uid": "2", "name": "b"}]}},
              "Pod")
    assert out["metadata"]["ownerReferences"] == [{"uid": "1", "name": "a", "kind": "ReplicaSet", "controller": True},
                                                  {"uid": "2", "name": "b"}]


def test_smp_kubectl_rollout_restart_and_set_image_shapes():
    d = deployment([{"name": "web", "image": "nginx:1"}])
    out = P.apply_patch(d, json.dumps({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-03T18:00:00Z"}}}}}), "application/strategic-merge-patch+json",
        "Deployment")
    assert out["spec"]["template"]["metadata"] == {"labels": {"app": "nginx"}, "annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-03T18:00:00Z"}}
    out = P.apply_patch(d, b'{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}',
                        "application/strategic-merge-patch+json", "Deployment")
    assert containers_of(out) == [{"name": "web", "image": "nginx:2"}]


def test_smp_volumes_retain_keys_switches_the_source():
    # PodSpec.volumes is merge,retainKeys: kubectl sends $retainKeys to switch emptyDir -> hostPath.
    p = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}], "containers": []}}
    out = smp(p, {"spec": {"volumes": [{"name": "v", "$retainKeys": ["hostPath", "name"],
                                        "hostPath": {"path": "/tmp"}}]}}, "Pod")
    assert out["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/tmp"}}]


def test_smp_type_change_replaces():
    d = {"spec": {"x": {"a": 1}, "y": [1]}}
    out = smp(d, {"spec": {"x": "s", "y": {"b": 2}}}, "Pod")
    assert out["spec"] == {"x": "s", "y": {"b": 2}}


def test_smp_list_item_without_merge_key_is_400():
    d = deployment([{"name": "a", "image": "x"}])
    with pytest.raises(PatchError) as e:
        smp(d, {"spec": {"template": {"spec": {"containers": [{"image": "y"}]}}}})
    assert e.value.code == 400 and "merge key: name" in e.value.message


def test_smp_unknown_kind_merges_maps_and_replaces_lists():
    out = smp({"a": {"b": 1}, "l": [1, 2]}, {"a": {"c": 2}, "l": [3]}, "Widget")
    assert out == {"a": {"b": 1, "c": 2}, "l": [3]}
