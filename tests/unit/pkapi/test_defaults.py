import json

from pkapi import decode, defaults
from pkapi.v1 import core_pb2

SEED = """{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-web-app-deployment","labels":{"app":"my-web-app"}},
"spec":{"replicas":3,"selector":{"matchLabels":{"app":"my-web-app"}},"template":{"metadata":{"labels":{"app":"my-web-app"}},
"spec":{"containers":[{"name":"my-web-app-container","image":"nginx:latest","ports":[{"containerPort":80}]}]}}}}"""


def test_deployment_defaults_and_idempotent():
    d = decode.decode_json(SEED)
    d.ClearField("spec")
    d.spec.template.spec.containers.add(name="c", image="nginx")
    defaults.apply(d)
    s = d.spec
    assert s.replicas == 1
    assert s.strategy.type == "RollingUpdate"
    assert s.strategy.rolling_update.max_surge.string_value == "25%"
    assert s.strategy.rolling_update.max_unavailable.string_value == "25%"
    assert s.revision_history_limit == 10 and s.progress_deadline_seconds == 600
    ps = s.template.spec
    assert ps.restart_policy == "Always" and ps.termination_grace_period_seconds == 30
    assert ps.dns_policy == "ClusterFirst" and ps.scheduler_name == "default-scheduler"
    assert ps.containers[0].image_pull_policy == "Always"
    before = d.SerializeToString(deterministic=True)
    defaults.apply(d)
    assert d.SerializeToString(deterministic=True) == before


def test_explicit_values_are_kept():
    d = decode.decode_json(SEED)
    d.spec.replicas = 0
    d.spec.strategy.type = "Recreate"
    defaults.apply(d)
    assert d.spec.replicas == 0 and d.spec.strategy.type == "Recreate"
    assert not d.spec.strategy.HasField("rolling_update")
    assert d.spec.template.spec.containers[0].ports[0].protocol == "TCP"


def test_image_pull_policy():
    assert defaults.image_pull_policy("nginx") == "Always"
    assert defaults.image_pull_policy("nginx:latest") == "Always"
    assert defaults.image_pull_policy("nginx:1.25") == "IfNotPresent"
    assert defaults.image_pull_policy("registry:5000/nginx") == "Always"
    assert defaults.image_pull_policy("registry:5000/nginx:1") == "IfNotPresent"
    assert defaults.image_pull_policy("nginx@sha256:abc") == "IfNotPresent"


def test_service_defaults():
    svc = decode.decode_json(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                         "spec": {"ports": [{"port": 80}, {"port": 81, "targetPort": "http"}],
                                                  "sessionAffinity": "ClientIP"}}))
    defaults.apply(svc)
    s = svc.spec
    assert s.type == "ClusterIP" and s.ports[0].protocol == "TCP"
    assert s.ports[0].target_port.number_value == 80 and s.ports[1].target_port.string_value == "http"
    assert s.session_affinity_config.client_ip.timeout_seconds == 10800
    plain = core_pb2.Service()
    defaults.apply(plain)
    assert plain.spec.session_affinity == "None"


def test_probe_defaults():
    p = core_pb2.Pod()
    c = p.spec.containers.add(name="c", image="i:1")
    c.readiness_probe.http_get.port.number_value = 80
    defaults.apply(p)
    r = c.readiness_probe
    assert (r.timeout_seconds, r.period_seconds, r.success_threshold, r.failure_threshold) == (1, 10, 1, 3)
    assert r.http_get.path == "/" and r.http_get.scheme == "HTTP"
    assert c.image_pull_policy == "IfNotPresent"


def test_empty_resources_is_no_resources():
    # kubectl rollout undo sends `resources: {}`: the same template as none (a rollout target match)
    spec = core_pb2.PodSpec()
    spec.containers.add(name="a", image="x").resources.SetInParent()
    spec.containers.add(name="b", image="x").resources.limits["cpu"].string_value = "1"
    defaults.pod_spec(spec)
    assert not spec.containers[0].HasField("resources")
    assert spec.containers[1].resources.limits["cpu"].string_value == "1"
