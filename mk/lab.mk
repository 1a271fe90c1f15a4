# The one-machine lab (pkctl lab), the demo, the failover benchmark and the Vagrant checks.

PKCTL := .venv/bin/pkctl

demo: setup ## the tour: a 3-node lab, the seed's web app, a node killed under load, scale, update, undo (root)
	@scripts/with-dockerd.sh $(MAKE) --no-print-directory images
	@scripts/with-dockerd.sh scripts/demo.sh

demo-down: lab-down ## remove the demo's lab

lab-up: setup ## bring up a 3-node lab on this machine with its registry (root; NODES=3 PRESET=lab)
	@scripts/with-dockerd.sh $(MAKE) --no-print-directory images
	scripts/with-dockerd.sh $(PKCTL) lab up --nodes $(or $(NODES),3) --preset $(or $(PRESET),lab)

lab-down: ## remove the lab (every process, namespace, link, route, mount and file it made)
	@if [ -x $(PKCTL) ]; then $(PKCTL) lab down; else echo "no virtualenv: nothing to remove"; fi

bench-failover: setup ## five hard node kills under a request loop: time to NotReady, to all Ready, failed requests (root)
	@scripts/with-dockerd.sh $(MAKE) --no-print-directory images
	scripts/with-dockerd.sh $(PY) bench/failover.py

vagrant-check: ## vagrant validate the Vagrantfile and shellcheck the provisioning and demo scripts
	@scripts/apt-install.sh shellcheck vagrant >/dev/null 2>&1 || true
	@if command -v shellcheck >/dev/null; then shellcheck vagrant/provision.sh scripts/demo.sh && echo "shellcheck: ok"; \
	 else echo "shellcheck not installed (apt-get install shellcheck): skipped"; fi
	@if command -v vagrant >/dev/null; then \
	   cd vagrant && for n in 1 3; do PK_WORKERS=$$n vagrant validate --ignore-provider >/dev/null || exit 1; done && \
	   echo "vagrant validate: ok (1 and 3 workers)"; \
	 else echo "vagrant cannot be installed here (Debian package vagrant): vagrant validate skipped"; fi

.PHONY: demo demo-down lab-up lab-down bench-failover vagrant-check

test-lab: .venv/.installed ## pkctl lab's unit tests (plan, flags, processes, Vagrant units)
	$(PYTEST) -q tests/unit/lab

.PHONY: test-lab
