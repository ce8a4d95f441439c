"""The state machine's snapshot: every replicated object's state plus the host's own.

Default format (`encoding.dumps` of a dict, so it never needs pickle):

    {"format": 1, "code_version": <enabled code version>, "objects": [state0, state1, ...]}

`state0` is the SyncObj subclass's own state: the attributes it gained after
`SyncObj.__init__` (PySyncObj's rule); `state1..` are the consumers'
`_serialize()` results.  The enabled code version is host state that must
survive a restart and travel to followers with the snapshot.

Seam for the durability work: a custom `SyncObjConf.serializer` / `deserializer`
(PySyncObj's file-based, possibly forked, serializer with `SERIALIZER_STATE`)
will replace `dump`/`load` below; the rest of the host only calls these two.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import encoding

FORMAT = 1


def dump(code_version: int, states: list[Any]) -> bytes:
    """Raises TypeError naming the value that cannot be encoded."""
    return encoding.dumps({"format": FORMAT, "code_version": code_version, "objects": states})


def load(data: bytes) -> tuple[int, list[Any]]:
    """Returns (enabled code version, per-object states); ValueError when `data` is not a snapshot."""
    obj = encoding.loads(data)
    if (not isinstance(obj, dict) or obj.get("format") != FORMAT or not isinstance(obj.get("objects"), list)
            or not isinstance(obj.get("code_version"), int)):
        raise ValueError("not a syncobj snapshot (format 1)")
    return obj["code_version"], obj["objects"]


def owner_state(owner: Any, excluded: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in vars(owner).items() if k not in excluded}


def first_unencodable(states: list[Any], describe: Callable[[int], str]) -> str:
    """Name the object (and attribute) whose state cannot be encoded, for a useful error."""
    for i, state in enumerate(states):
        try:
            encoding.dumps(state)
        except TypeError as e:
            if isinstance(state, dict):
                for k, v in state.items():
                    try:
                        encoding.dumps(v)
                    except TypeError as e2:
                        return f"{describe(i)} attribute {k!r}: {e2}"
            return f"{describe(i)}: {e}"
    return "unknown value"
