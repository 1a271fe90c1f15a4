"""Recreate (Kubernetes' recreate.go): scale every old ReplicaSet to 0,
wait until none of their pods exists any more (terminating pods count:
their containers may still run), and only then create / scale up the new
ReplicaSet. So an old and a new pod never run at the same time.
"""

from __future__ import annotations

from typing import Any

from controlplane.controllers.deployment import progress, sync


def old_pods_running(ctl: Any, old: list[Any]) -> bool:
    for rs in old:
        if rs.status.replicas > 0:
            return True
        for pod in ctl.pods.by_index("owner", rs.metadata.uid):
            if pod.status.phase not in ("Succeeded", "Failed"):
                return True
    return False


async def rollout(ctl: Any, d: Any, rss: list[Any]) -> None:
    new, old = await sync.get_all(ctl, d, rss, create=False)
    changed = False
    for rs in old:
        if sync.replicas_of(rs) != 0:
            ok, _ = await sync.scale_rs(ctl, d, rs, 0)
            changed = changed or ok
    if changed:
        await progress.sync_rollout_status(ctl, d, new, old)
        return
    if old_pods_running(ctl, old):
        await progress.sync_rollout_status(ctl, d, new, old)
        return
    if new is None:
        new, old = await sync.get_all(ctl, d, rss, create=True)
    if new is not None and sync.replicas_of(new) != sync.desired(d):
        await sync.scale_rs(ctl, d, new, sync.desired(d))
        await progress.sync_rollout_status(ctl, d, new, old)
        return
    if new is not None and progress.complete(d, sync.calculate_status(d, new, old, ctl.clock())):
        await sync.cleanup(ctl, d, new, old)
    await progress.sync_rollout_status(ctl, d, new, old)
