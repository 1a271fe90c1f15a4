# pk-agent: its unit tests on their own.

test-agent: .venv/.installed ## pk-agent's unit tests (pod worker, teardown gate, flags, fake runtime)
	$(PYTEST) -q tests/unit/agent

.PHONY: test-agent
