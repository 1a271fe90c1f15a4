# The API server: its benchmark and a quick test target.

bench-api: .venv/.installed ## API benchmark: create/update/get at 1, 4, 16 clients + 100-watcher fan-out (real etcd + pk-controlplane)
	$(PY) bench/api.py $(BENCH_API_ARGS)

test-apiserver: .venv/.installed ## the API server's unit and integration tests (real etcd)
	$(PYTEST) -q tests/unit/apiserver tests/unit/pkapi tests/integration/test_apiserver*.py

.PHONY: bench-api test-apiserver
