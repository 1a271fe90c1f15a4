# The API server: its benchmark and a quick test target.

bench-api: .venv/.installed ## API benchmark: create/update/get at 1, 4, 16 clients + 100-watcher fan-out (real etcd + pk-controlplane)
	$(PY) bench/api.py $(BENCH_API_ARGS)

bench-rest: .venv/.installed ## HTTP API vs gRPC API: create/update/get/list at 1 and 16 clients, 100-watcher fan-out, kubectl vs pkctl get pods (real etcd + pk-controlplane)
	$(PY) bench/rest.py $(BENCH_REST_ARGS)

test-apiserver: .venv/.installed ## the API server's unit and integration tests (real etcd)
	$(PYTEST) -q tests/unit/apiserver tests/unit/pkapi tests/integration/test_apiserver*.py

.PHONY: bench-api bench-rest test-apiserver
