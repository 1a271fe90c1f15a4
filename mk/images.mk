# The images (images/build.sh: Debian packages via mmdebstrap) and the agent's benchmark.

images: ## build the images (base pocketkube/debian:bookworm, nginx:latest, pocketkube/hello:1,2 crash:1 flaky:1) into $DOCKER_HOST's engine and images/out/images.tar
	@scripts/apt-install.sh mmdebstrap
	@scripts/with-dockerd.sh images/build.sh

bench-pod-startup: images ## pod apply->Ready p50/p99 over 30 pods on one real node (etcd, control plane, pk-agent, Docker)
	scripts/with-dockerd.sh $(PY) bench/pod_startup.py

.PHONY: images bench-pod-startup
