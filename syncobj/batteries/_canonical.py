"""A total order on hashable values that is the same in every process.

Replicas must make the same choice when a method's result is "an arbitrary
element" (`ReplSet.pop`).  Python's own set order depends on string hashing,
which `PYTHONHASHSEED` changes from process to process, and on insertion
history, which a snapshot restore changes: two nodes popping "any" element
would pop different ones and their states would diverge.  So the choice is
made by this key instead, which depends only on the values themselves.
"""

from __future__ import annotations

from typing import Any

# Types ordered among themselves by their value (bool, int and float together, as numbers);
# everything else after them, by type name and repr.
_RANK = {type(None): 0, bool: 1, int: 1, float: 1, complex: 2, str: 3, bytes: 4, tuple: 5, frozenset: 6}


def canonical_key(value: Any) -> tuple:
    """A sort key that orders any mix of hashable values the same way on every node."""
    kind = type(value)
    rank = _RANK.get(kind)
    if rank is None:
        return (9, f"{kind.__module__}.{kind.__qualname__}", repr(value))
    if kind is tuple:
        return (rank, tuple(canonical_key(item) for item in value))
    if kind is frozenset:
        return (rank, tuple(sorted(canonical_key(item) for item in value)))
    if rank == 1:
        # NaN is not ordered against anything; give it a place of its own after the other numbers.
        return (rank, (1, 0) if value != value else (0, value))
    if kind is complex:
        return (rank, (canonical_key(value.real), canonical_key(value.imag)))
    return (rank, value)
