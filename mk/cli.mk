# pkctl: its tests on their own.

test-cli: .venv/.installed ## pkctl's tests: printers/jsonpath/describe units, then against a real control plane (+ agent and Docker for logs/exec)
	$(PYTEST) tests/unit/cli -q
	scripts/with-dockerd.sh $(PYTEST) tests/integration/test_cli.py tests/integration/test_cli_logs_exec.py -q

.PHONY: test-cli
