"""The replicated methods of one SyncObj's objects, by position, name and version.

Position 0 is the SyncObj itself (its subclass's `@replicated` methods),
positions 1.. are the `consumers` in the order they were passed.  A method's
versions are gathered along the class's MRO, so a subclass may add a version
of an inherited method; the same (name, version) in a subclass replaces the
base class's body.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from ..errors import SyncObjUsageError
from .commands import MethodId
from .replicated import is_replicated

Versions = dict[int, Callable[..., Any]]


@functools.lru_cache(maxsize=None)
def _class_table(cls: type) -> dict[str, Versions]:
    table: dict[str, Versions] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if is_replicated(value):
                table.setdefault(value.origName, {}).update(value._syncobj_versions)
    return table


class MethodTable:
    """Maps a call to a `MethodId` (caller side) and a `MethodId` to a function (apply side)."""

    def __init__(self, objects: list[Any]) -> None:
        self.objects = objects
        self.qualnames = [type(o).__qualname__ for o in objects]
        self.tables = [_class_table(type(o)) for o in objects]
        self._positions = {id(o): i for i, o in enumerate(objects)}  # local lookup only, never on the wire
        self.self_code_version = max((v for t in self.tables for vs in t.values() for v in vs), default=0)

    def position_of(self, obj: Any) -> int:
        pos = self._positions.get(id(obj))
        if pos is None or self.objects[pos] is not obj:
            raise SyncObjUsageError(f"this {type(obj).__qualname__} is not one of the objects of the SyncObj it "
                                    "points to")
        return pos

    def resolve(self, obj: Any, name: str, enabled_version: int) -> MethodId:
        """The method a call made now must name: the highest version not above the enabled one."""
        pos = self.position_of(obj)
        versions = self.tables[pos].get(name)
        if not versions:
            raise SyncObjUsageError(f"{self.qualnames[pos]}.{name} is not a replicated method of this object")
        usable = [v for v in versions if v <= enabled_version]
        if not usable:
            raise SyncObjUsageError(
                f"{self.qualnames[pos]}.{name} exists only in code version(s) {sorted(versions)} but the cluster "
                f"runs code version {enabled_version}: enable it first with setCodeVersion({min(versions)})")
        return MethodId(pos, self.qualnames[pos], name, max(usable))

    def lookup(self, method: MethodId) -> tuple[Any, Callable[..., Any]]:
        """The object and function to apply; LookupError with the reason when this node lacks it."""
        if method.position >= len(self.objects):
            raise LookupError(f"{method}: this node has only {len(self.objects) - 1} consumer(s)")
        if self.qualnames[method.position] != method.qualname:
            raise LookupError(f"{method}: object #{method.position} on this node is a "
                              f"{self.qualnames[method.position]} (consumers in a different order, or other code?)")
        versions = self.tables[method.position].get(method.name)
        if not versions:
            raise LookupError(f"{method}: this node's code has no replicated method {method.name!r}")
        func = versions.get(method.version)
        if func is None:
            raise LookupError(f"{method}: this node's code has versions {sorted(versions)} of {method.name!r} "
                              f"only (upgrade this node)")
        return self.objects[method.position], func
