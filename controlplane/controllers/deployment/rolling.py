"""RollingUpdate (Kubernetes' rolling.go): each sync takes one step.

  1. grow the new ReplicaSet while all pods <= replicas + maxSurge;
  2. else shrink old ReplicaSets while available pods stay
     >= replicas - maxUnavailable (unhealthy old pods first);
  3. when complete, clean up old ReplicaSets beyond revisionHistoryLimit.

A step changes sizes only as far as the numbers observed in the caches
allow, so neither bound is exceeded even though pods come and go between
steps; the ReplicaSet controller's expectations keep it from acting on
stale counts.
"""

from __future__ import annotations

from typing import Any

from controlplane.controllers.deployment import progress, sync
from pkapi import rollout as arith


async def rollout(ctl: Any, d: Any, rss: list[Any]) -> None:
    new, old = await sync.get_all(ctl, d, rss, create=True)
    every = ([new] if new is not None else []) + old
    surge, _ = sync.fenceposts(d)
    # reconcileNewReplicaSet
    if new is not None:
        n = sync.replicas_of(new)
        want = n
        if n > sync.desired(d):
            want = sync.desired(d)
        elif n < sync.desired(d):
            want = arith.new_rs_replicas(True, sync.desired(d), surge, sync.info(new),
                                                 [sync.info(r) for r in every])
        if want != n:
            await sync.scale_rs(ctl, d, new, want)
            await progress.sync_rollout_status(ctl, d, new, old)
            return
    # reconcileOldReplicaSets
    active_old = [r for r in old if sync.replicas_of(r) > 0]
    if active_old:
        sizes = arith.rolling_scale_down([sync.info(r) for r in active_old],
                                                 sync.info(new) if new is not None else None,
                                                 sync.desired(d), sync.max_unavailable(d))
        changed = False
        for r in active_old:
            if r.metadata.name in sizes:
                ok, _ = await sync.scale_rs(ctl, d, r, sizes[r.metadata.name])
                changed = changed or ok
        if changed:
            await progress.sync_rollout_status(ctl, d, new, old)
            return
    if new is not None and progress.complete(d, sync.calculate_status(d, new, old, ctl.clock())):
        await sync.cleanup(ctl, d, new, old)
    await progress.sync_rollout_status(ctl, d, new, old)

