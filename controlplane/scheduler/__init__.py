"""The scheduler: pure filters and scores in pkapi.scheduling, the loop in
controlplane.scheduler.scheduler (see README.md beside this file)."""
