"""Start and stop the Kubernetes HTTPS API on the running event loop.

TLS: the serving certificate comes from pkapi.pki under the PKI directory
(made on first start with the cluster CA) and names every address the API
is reached at: the listen address (every local address for 0.0.0.0), the
extra --tls-san names, loopback. HTTP/1.1 only: client-go uses HTTP/2 only
when offered, and always HTTP/1.1 for upgrades.

On every start the admin kubeconfig (<data-dir>/kubeconfig.yaml, as k3s
writes k3s.yaml) is written for this API and CA, with the gRPC address as a
cluster extension, so one file serves kubectl and pkctl.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import ssl
from pathlib import Path

import psutil
from aiohttp import web

from controlplane.apiserver.http.api import KubeAPI
from controlplane.apiserver.http.logs import AgentStub
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.watchcache import WatchCaches
from controlplane.config import ControlPlaneConfig
from pkapi import kubeconfig, pki

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 3.0
KUBECONFIG_NAME = "kubeconfig.yaml"
CONTEXT = "pocketkube"


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        return host or "0.0.0.0", int(port)
    except ValueError:
        raise ValueError(f"invalid listen address {address!r} (want host:port)") from None


def _wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def local_addresses() -> list[str]:
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            try:
                ip = ipaddress.ip_address(a.address.split("%")[0])
            except ValueError:
                continue
            out.append(str(ip))
    return out


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def pki_dir(config: ControlPlaneConfig) -> str:
    return config.pki_dir or os.path.join(config.data_dir, "pki")


class HTTPServer:
    def __init__(self, runner: web.AppRunner, api: KubeAPI, port: int) -> None:
        self.runner = runner
        self.api = api
        self.port = port

    async def stop(self) -> None:
        self.api.ready = False
        await self.runner.cleanup()


async def serve_http(config: ControlPlaneConfig, registry: Registry, caches: WatchCaches,
                     grpc_address: str, agents: AgentStub | None = None) -> HTTPServer:
    host, port = split_host_port(config.http_listen)
    hosts = [*(local_addresses() if _wildcard(host) else [host]), *config.tls_sans]
    directory = pki_dir(config)
    crt, key = pki.ensure_serving_cert(directory, hosts)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(crt), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    public = "127.0.0.1" if _wildcard(host) else host
    api = KubeAPI(registry, caches, agents=agents)
    runner = web.AppRunner(api.app(), handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host if not _wildcard(host) else None, port, ssl_context=ctx)
    await site.start()
    if port == 0:  # an ephemeral port (tests, benchmarks): the one bound
        port = runner.addresses[0][1]
    api.server_address = f"{_url_host(public)}:{port}"
    ghost, gport = split_host_port(grpc_address)
    gpublic = public if _wildcard(ghost) else ghost
    write_admin_kubeconfig(config, f"https://{_url_host(public)}:{port}", f"{_url_host(gpublic)}:{gport}")
    return HTTPServer(runner, api, port)


def write_admin_kubeconfig(config: ControlPlaneConfig, server: str, grpc_server: str) -> Path:
    directory = pki_dir(config)
    ca_pem, _ = pki.ensure_ca(directory)
    # The admin's client certificate (CN admin, O system:masters, as
    # Kubernetes reads them): kubectl needs some credential for an https
    # server, and the authenticator will check this one.
    crt, key = pki.ensure_client_cert(directory, "admin", "admin", ["system:masters"])
    user = {"client-certificate-data": base64.b64encode(crt).decode(),
            "client-key-data": base64.b64encode(key).decode()}
    path = Path(config.data_dir) / KUBECONFIG_NAME
    kubeconfig.save(path, kubeconfig.build(CONTEXT, server, ca_pem, grpc_server=grpc_server, user="admin",
                                           user_entry=user))
    log.info("admin kubeconfig for %s written to %s", server, path)
    return path
