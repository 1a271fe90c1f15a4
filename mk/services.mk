# Services: proxy benchmark (helper "services").

bench-proxy: .venv/.installed ## proxy benchmark: direct vs PocketKube proxy vs haproxy (installs nginx-light, wrk, haproxy)
	@scripts/apt-install.sh nginx-light wrk haproxy curl
	$(PY) bench/proxy.py $(BENCH_PROXY_ARGS)

.PHONY: bench-proxy
