"""The driver-agnostic host: turns calls on replicated objects into proposals and
committed log entries back into method calls.

Walk one call through it: `replicated.py` (the decorator) → `syncobj.py`
(`SyncObj`, the public object) → `core.py` (queue, kernel, batches) →
`commands.py` (what an entry's bytes mean) → back in `core.py`, the apply and
the caller's callback.  `driver.py` says what a driver (io_tcp, io_sim) must do.
"""
