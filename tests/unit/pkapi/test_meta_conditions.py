"""pkapi.meta.set_condition and copy: the one condition setter and message copy."""

from pkapi import meta
from pkapi.v1 import apps_pb2, core_pb2


def test_a_new_condition_gets_its_transition_time():
    st = core_pb2.NodeStatus()
    assert meta.set_condition(st.conditions, "Ready", "True", "KubeletReady", "ok", now=100.9)
    c = meta.condition(st.conditions, "Ready")
    assert (c.status, c.reason, c.message, c.last_transition_time.seconds) == ("True", "KubeletReady", "ok", 100)
    assert not c.HasField("last_update_time")


def test_the_transition_time_moves_only_when_the_status_changes():
    st = core_pb2.NodeStatus()
    meta.set_condition(st.conditions, "Ready", "True", "A", "m", now=100)
    assert meta.set_condition(st.conditions, "Ready", "True", "B", "m2", now=200)
    c = meta.condition(st.conditions, "Ready")
    assert (c.reason, c.message, c.last_transition_time.seconds) == ("B", "m2", 100)
    assert meta.set_condition(st.conditions, "Ready", "Unknown", "B", "m2", now=300)
    assert c.last_transition_time.seconds == 300 and len(st.conditions) == 1


def test_an_unchanged_condition_is_left_alone():
    st = core_pb2.PodStatus()
    meta.set_condition(st.conditions, "PodScheduled", "False", "Unschedulable", "0/3 nodes", now=100)
    assert not meta.set_condition(st.conditions, "PodScheduled", "False", "Unschedulable", "0/3 nodes", now=200)
    assert meta.condition(st.conditions, "PodScheduled").last_transition_time.seconds == 100


def test_deployment_style_ignores_the_message_and_keeps_an_update_time():
    st = apps_pb2.DeploymentStatus()
    kw = {"message_counts": False, "update_time": True}
    assert meta.set_condition(st.conditions, "Progressing", "True", "ReplicaSetUpdated", "one", now=100, **kw)
    assert not meta.set_condition(st.conditions, "Progressing", "True", "ReplicaSetUpdated", "two", now=200, **kw)
    c = meta.condition(st.conditions, "Progressing")
    assert c.message == "one" and c.last_update_time.seconds == 100
    assert meta.set_condition(st.conditions, "Progressing", "True", "NewReplicaSetAvailable", "done", now=300, **kw)
    assert (c.last_update_time.seconds, c.last_transition_time.seconds) == (300, 100)


def test_copy_is_deep_and_of_the_same_type():
    pod = core_pb2.Pod()
    pod.metadata.labels["a"] = "1"
    out = meta.copy(pod)
    out.metadata.labels["a"] = "2"
    assert type(out) is core_pb2.Pod and pod.metadata.labels["a"] == "1"
