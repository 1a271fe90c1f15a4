"""RollingUpdate (Kubernetes' rolling.go): each sync takes one step.

  1. grow the new ReplicaSet while all pods <= replicas + maxSurge;
  2. else shrink old ReplicaSets while available pods stay
     >= replicas - maxUnavailable (unhealthy old pods first);
  3. when complete, clean up old ReplicaSets beyond revisionHistoryLimit.

A step changes sizes only as far as the numbers observed in the caches
allow, so neither bound is exceeded even though pods come and go between
steps; the ReplicaSet controller's expectations keep it from acting on
stale counts. The step returns what the status write needs (the
ReplicaSets and the condition decided); the controller then syncs the
rollout status (progress.py).
"""

from __future__ import annotations

from controlplane.controllers.deployment import util
from controlplane.controllers.deployment.util import Control, Deployment, ReplicaSet, Step
from pkapi import rollout as arith


async def rollout(ctl: Control, d: Deployment, rss: list[ReplicaSet]) -> Step:
    new, old, cond = await ctl.get_all(d, rss, create=True)
    every = ([new] if new is not None else []) + old
    surge, _ = util.fenceposts(d)
    # reconcileNewReplicaSet
    if new is not None:
        n = util.replicas_of(new)
        want = n
        if n > util.desired(d):
            want = util.desired(d)
        elif n < util.desired(d):
            want = arith.new_rs_replicas(True, util.desired(d), surge, util.info(new),
                                         [util.info(r) for r in every])
        if want != n:
            await ctl.scale_rs(d, new, want)
            return Step(new, old, cond)
    # reconcileOldReplicaSets
    active_old = [r for r in old if util.replicas_of(r) > 0]
    if active_old:
        sizes = arith.rolling_scale_down([util.info(r) for r in active_old],
                                         util.info(new) if new is not None else None,
                                         util.desired(d), util.max_unavailable(d))
        changed = False
        for r in active_old:
            if r.metadata.name in sizes:
                ok, _ = await ctl.scale_rs(d, r, sizes[r.metadata.name])
                changed = changed or ok
        if changed:
            return Step(new, old, cond)
    if new is not None and util.complete(d, util.calculate_status(d, new, old, ctl.clock())):
        await ctl.cleanup(d, new, old)
    return Step(new, old, cond)
