"""Background jobs: work a login must not wait for (leftover provisioning), run by RQ on the store's Redis, or
in-process with the memory store. `queue.py` says where jobs run, `tasks.py` what they do."""
