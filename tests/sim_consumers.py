"""Small replicated consumers shared by the simulated API tests."""

from __future__ import annotations

from syncobj import SyncObjConsumer, replicated


class Journal(SyncObjConsumer):
    """Appends items; each call returns the new length, so a call applied twice shows."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list = []

    @replicated
    def append(self, item):
        self.items.append(item)
        return len(self.items)
