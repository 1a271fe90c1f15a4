# Services: proxy benchmark and the node services' tests.

bench-proxy: .venv/.installed ## proxy benchmark: direct vs PocketKube proxy vs haproxy (installs nginx-light, wrk, haproxy)
	@scripts/apt-install.sh nginx-light wrk haproxy curl
	$(PY) bench/proxy.py $(BENCH_PROXY_ARGS)

test-proxy: .venv/.installed ## the service proxy's and cluster DNS's unit tests
	$(PYTEST) -q tests/unit/proxy

.PHONY: bench-proxy test-proxy
