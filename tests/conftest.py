"""Shared fixtures live in tests/fixtures/, one module per subsystem:
  etcd          a real etcd on free ports (etcd_server, etcd_endpoint)
  controlplane  a real pk-controlplane process on that etcd (controlplane, client)
  docker        a reachable Docker Engine and the test images (docker_host)
  agent         real pk-agent processes / in-process hollow agents
  lab           a whole 3-node lab (e2e)
"""

pytest_plugins = [
    "tests.fixtures.etcd",
    "tests.fixtures.controlplane",
    "tests.fixtures.docker",
    "tests.fixtures.agent",
    "tests.fixtures.lab",
]
