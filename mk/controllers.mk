# Controllers, scheduler, leader election: tests and the scheduler benchmark.

test-controllers: .venv/.installed ## controllers/scheduler/leader unit + integration tests (real etcd + pk-controlplane, hollow agents)
	$(PYTEST) -q tests/unit/controllers tests/unit/pkapi \
	  tests/integration/test_controllers.py tests/integration/test_controllers_cli.py \
	  tests/integration/test_scheduler.py tests/integration/test_leader.py tests/integration/test_controller_process.py tests/integration/test_controllers_docker.py

bench-scheduler: .venv/.installed ## scheduler benchmark: 100 hollow nodes x 3,000 pods (bound/s, time to Running), 1,000 nodes x 10,000 pods (peak RSS)
	$(PY) bench/scheduler.py $(BENCH_SCHEDULER_ARGS)

.PHONY: test-controllers bench-scheduler
