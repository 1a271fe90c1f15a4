"""Container runtimes: the Runtime protocol (base), DockerRuntime, FakeRuntime."""

from agent.runtime.base import (
    ContainerConfig,
    ContainerEvent,
    ContainerNotFound,
    ContainerState,
    CreateError,
    ImageNotFound,
    ImagePullError,
    PortBinding,
    PortInUse,
    Runtime,
    RuntimeInfo,
    RuntimeUnavailable,
)
from agent.runtime.fake import FakeRuntime

__all__ = [
    "ContainerConfig",
    "ContainerEvent",
    "ContainerNotFound",
    "ContainerState",
    "CreateError",
    "FakeRuntime",
    "ImageNotFound",
    "ImagePullError",
    "PortBinding",
    "PortInUse",
    "Runtime",
    "RuntimeInfo",
    "RuntimeUnavailable",
]
