# The store (controlplane/store, controlplane/etcdproc.py): its contract suite on the MemoryStore fake and on a real etcd.

test-store: .venv/.installed ## store contract on MemoryStore and real etcd, etcd restart/compaction, EtcdProcess (~15 s)
	$(PYTEST) -q tests/unit/store tests/integration/test_store_etcd.py tests/integration/test_etcdproc.py

.PHONY: test-store
