"""Node registration and heartbeat (NodeService).

    reg = NodeRegistrar(config, client, runtime, agent_port)
    await reg.run()          # forever: register, then heartbeat

Behaviour: run() registers the Node (idempotent on the server) and then
calls Heartbeat every config.heartbeat_interval (the server renews the
node's Lease); every CHECK_EVERY heartbeats it also reads the Node, so a
deleted Node object is registered again. Any failure (control plane unreachable, Node deleted) makes
it retry with jittered exponential backoff (0.2 s doubling to 5 s, each
up to 20% longer: pkapi.client.retry) and register
again before the next heartbeat, so a restarted control plane, an expired
node or a deleted Node object all heal. Nothing here touches containers:
pods keep running while the control plane is away.

`registered` is set once the first registration succeeded; `connected`
reflects the last call's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import socket

import psutil
from google.protobuf import struct_pb2

from agent import __version__
from agent.config import AgentConfig
from agent.runtime.base import Runtime, RuntimeInfo
from pkapi import meta
from pkapi.client.retry import RetryDelay
from pkapi.errors import is_not_found
from pkapi.v1 import core_pb2

log = logging.getLogger(__name__)

# Every this many heartbeats, check that the Node object still exists.
CHECK_EVERY = 5


def _q(s: str) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=s)


def build_node(config: AgentConfig, info: RuntimeInfo, agent_port: int) -> core_pb2.Node:
    """The Node object this agent registers. Reads host facts (psutil)."""
    node = core_pb2.Node(api_version="v1", kind="Node")
    node.metadata.name = config.node_name
    labels = node.metadata.labels
    labels["kubernetes.io/hostname"] = config.node_name
    labels["kubernetes.io/os"] = info.operating_system or "linux"
    labels["kubernetes.io/arch"] = info.architecture or platform.machine()
    labels.update(config.labels)
    cpu = config.capacity_cpu or str(psutil.cpu_count() or 1)
    mem = config.capacity_memory or f"{psutil.virtual_memory().total // 1024}Ki"
    for m in (node.status.capacity, node.status.allocatable):
        m["cpu"].CopyFrom(_q(cpu))
        m["memory"].CopyFrom(_q(mem))
        m["pods"].CopyFrom(_q(str(config.max_pods)))
    node.status.addresses.add(type="InternalIP", address=config.node_ip)
    node.status.addresses.add(type="Hostname", address=config.node_name)
    ready = node.status.conditions.add(
        type="Ready", status="True", reason="KubeletReady", message="pk-agent is posting ready status"
    )
    meta.set_timestamp(ready.last_heartbeat_time)
    meta.set_timestamp(ready.last_transition_time)
    ni = node.status.node_info
    ni.machine_id = _machine_id()
    ni.kernel_version = info.kernel_version or platform.release()
    ni.os_image = info.os_image
    ni.container_runtime_version = f"{info.name}://{info.version}"
    ni.kubelet_version = f"pk-agent/{__version__}"
    ni.operating_system = info.operating_system or "linux"
    ni.architecture = info.architecture
    node.status.daemon_endpoints.kubelet_endpoint.port = agent_port
    return node


def _machine_id() -> str:
    try:
        with open("/etc/machine-id") as f:
            return f.read().strip()
    except OSError:
        return socket.gethostname()


class NodeRegistrar:
    def __init__(self, config: AgentConfig, client: object, runtime: Runtime, agent_port: int) -> None:
        self.config = config
        self.client = client
        self.runtime = runtime
        self.agent_port = agent_port
        self.registered = asyncio.Event()
        self.connected = False
        self.node: core_pb2.Node | None = None

    async def register(self) -> core_pb2.Node:
        info = await self.runtime.info()
        node = build_node(self.config, info, self.agent_port)
        out: core_pb2.Node = await self.client.register_node(node)  # type: ignore[attr-defined]
        self.node = out
        return out

    async def run(self) -> None:
        delay = RetryDelay(0.2, 5.0)
        need_register = True
        beats = 0
        while True:
            try:
                if need_register:
                    await self.register()
                    if not self.registered.is_set():
                        log.info("registered node %s (%s)", self.config.node_name, self.config.node_ip)
                    else:
                        log.info("re-registered node %s", self.config.node_name)
                    self.registered.set()
                    need_register = False
                await self.client.heartbeat(self.config.node_name)  # type: ignore[attr-defined]
                beats += 1
                if beats % CHECK_EVERY == 0:
                    # Heartbeats renew the Lease only: a deleted Node object
                    # would stay deleted. Look now and then; NotFound below
                    # re-registers it.
                    await self.client.get("nodes", "", self.config.node_name)  # type: ignore[attr-defined]
                if not self.connected:
                    log.info("control plane at %s reachable", self.config.server)
                self.connected = True
                delay.reset()
                await asyncio.sleep(self.config.heartbeat_interval)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure: back off, re-register
                if self.connected or delay.failures == 0:
                    log.warning("heartbeat failed (%s); retrying with backoff", err)
                self.connected = False
                # NotFound: the Node was deleted; anything else: the control
                # plane may have lost track of us. Registering again is cheap
                # and idempotent.
                need_register = True
                if is_not_found(err):
                    delay.reset()
                await asyncio.sleep(delay.next())
