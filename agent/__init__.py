"""pk-agent: the node agent (kubelet)."""

__version__ = "0.1.0"
