"""Background jobs: work nobody should wait for (leftover provisioning, bulk provisioning, review --apply),
run by RQ on the store's Redis (`broker worker`), or in-process with the memory store. `queue.py` says where
jobs run and how to enqueue one, `registry.py` which tasks exist, `tasks.py` the leftover provisioning."""
