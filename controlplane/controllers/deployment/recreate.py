"""Recreate (Kubernetes' recreate.go): scale every old ReplicaSet to 0,
wait until none of their pods exists any more (terminating pods count:
their containers may still run), and only then create / scale up the new
ReplicaSet. So an old and a new pod never run at the same time. As a
rolling step, a step returns what the rollout status write needs.
"""

from __future__ import annotations

from controlplane.controllers.deployment import util
from controlplane.controllers.deployment.util import Control, Deployment, ReplicaSet, Step


def old_pods_running(ctl: Control, old: list[ReplicaSet]) -> bool:
    for rs in old:
        if rs.status.replicas > 0:
            return True
        for pod in ctl.pods.by_index("owner", rs.metadata.uid):
            if pod.status.phase not in ("Succeeded", "Failed"):
                return True
    return False


async def rollout(ctl: Control, d: Deployment, rss: list[ReplicaSet]) -> Step:
    new, old, cond = await ctl.get_all(d, rss, create=False)
    changed = False
    for rs in old:
        if util.replicas_of(rs) != 0:
            ok, _ = await ctl.scale_rs(d, rs, 0)
            changed = changed or ok
    if changed:
        return Step(new, old, cond)
    if old_pods_running(ctl, old):
        return Step(new, old, cond)
    if new is None:
        new, old, created = await ctl.get_all(d, rss, create=True)
        cond = created or cond
    if new is not None and util.replicas_of(new) != util.desired(d):
        await ctl.scale_rs(d, new, util.desired(d))
        return Step(new, old, cond)
    if new is not None and util.complete(d, util.calculate_status(d, new, old, ctl.clock())):
        await ctl.cleanup(d, new, old)
    return Step(new, old, cond)
