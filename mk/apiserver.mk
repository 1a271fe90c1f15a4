# The API server: its benchmark and a quick test target.

bench-api: .venv/.installed ## API benchmark: create/update/get at 1, 4, 16 clients + 100-watcher fan-out (real etcd + pk-controlplane)
	$(PY) bench/api.py $(BENCH_API_ARGS)

test-apiserver: .venv/.installed ## the API server's unit and integration tests (real etcd)
	$(PYTEST) -q tests/unit/test_selectors.py tests/unit/test_intstr.py tests/unit/test_quantity.py \
	  tests/unit/test_decode.py tests/unit/test_validation.py tests/unit/test_defaults.py \
	  tests/unit/test_badinput.py tests/unit/test_apiserver_watchcache.py tests/unit/test_apiserver_registry.py tests/unit/test_controlplane_main.py tests/integration/test_apiserver*.py

.PHONY: bench-api test-apiserver
