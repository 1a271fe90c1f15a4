"""Pod sync: the agent's pods as containers (manager, worker, probes, status)."""
