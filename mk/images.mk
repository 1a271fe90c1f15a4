# Test images built without a registry (images/build.sh), and the agent's benchmark.

images: ## build the local test images (pocketkube/hello:1,2 crash:1 flaky:1, nginx:latest) into $DOCKER_HOST's engine and images/out/*.tar
	@images/build.sh

bench-pod-startup: images ## pod apply->Ready p50/p99 over 30 pods on one real node (etcd, control plane, pk-agent, Docker)
	$(PY) bench/pod_startup.py

.PHONY: images bench-pod-startup
