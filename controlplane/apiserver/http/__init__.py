"""The Kubernetes HTTP API (kubectl, client libraries); see ../README.md."""
