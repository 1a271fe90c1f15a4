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


def pytest_configure(config: object) -> None:
    """Tests Ctrl-C their pkctl children (SIGINT) and expect them to stop.
    A suite started as a background job without job control (`cmd &` in a
    script) inherits SIGINT ignored, and so would every child: pkctl would
    ignore the signal, as kubectl does then. A handler here (not inherited
    across exec) gives children the default disposition again."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    # Never read or change the user's kubeconfig: pkctl reads it (its
    # current context's gRPC address) and `pkctl lab up` merges into it.
    import os
    import tempfile

    os.environ["KUBECONFIG"] = os.path.join(tempfile.mkdtemp(prefix="pk-kubeconfig-"), "config")


def pytest_unconfigure(config: object) -> None:
    import os
    import shutil

    path = os.environ.get("KUBECONFIG", "")
    if os.path.basename(os.path.dirname(path)).startswith("pk-kubeconfig-"):
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
