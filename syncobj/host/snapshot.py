"""The state machine's snapshot: every replicated object's state plus the host's own.

Default format (`encoding.dumps` of a dict, so it never needs pickle):

    {"format": 1, "code_version": <enabled code version>, "objects": [state0, state1, ...]}

`state0` is the SyncObj subclass's own state: the attributes it gained after
`SyncObj.__init__` (PySyncObj's rule); `state1..` are the consumers'
`_serialize()` results.  The enabled code version is host state that must
survive a restart and travel to followers with the snapshot.

With a custom `SyncObjConf.serializer` (PySyncObj's protocol, see `CustomJob`) the snapshot is
`{"format": 2, "code_version": v, "raw": raw_data, "user": <the bytes of the user's file>}`.
Compactions serialize through a job (`ForkJob`, `CustomJob`) polled by the loop, or, without
fork and without a custom serializer, with `dump` right on the loop.
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
    if isinstance(obj, dict) and obj.get("format") == CUSTOM_FORMAT:
        raise ValueError("this snapshot was written by a custom serializer (format 2): set "
                         "SyncObjConf.serializer and deserializer to load it")
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


# ---------------------------------------------------------------------------------------------
# Serializing off the loop: a fork child, or the user's own (PySyncObj) serializer.
#
# A job is started at a compaction and polled once per loop turn; `poll()` returns None while
# it runs, and the snapshot bytes (what `Raft.compact` gets and followers receive) once done.
# The state it holds is the state at `index`: the fork child sees the parent's memory as of
# the fork, and a custom serializer is told to save the state as of its call (PySyncObj's rule).

#: What a custom serializer's snapshot bytes look like inside our snapshot (format 2).
CUSTOM_FORMAT = 2


class SerializeFailed(Exception):
    """The job ended without a snapshot; the host logs it and tries again later."""


class ForkJob:
    """Encode the states in a forked child, so the loop keeps serving while a big state is encoded.

    The child writes the encoded snapshot to `tmp_path` and exits 0; it touches nothing else
    (no logging, no locks: other threads' locks are copied held).  The parent reads the file
    when the child is done.  `os.fork` copies memory lazily, so the parent's later changes are
    invisible to the child: the snapshot is exactly the state at `index`."""

    def __init__(self, index: int, code_version: int, states: list[Any], tmp_path: str) -> None:
        import os

        self.index = index
        self.tmp_path = tmp_path
        self.pid = os.fork()
        if self.pid == 0:  # the child
            code = 1
            try:
                data = dump(code_version, states)
                with open(tmp_path, "wb") as f:
                    f.write(data)
                code = 0
            except BaseException:
                code = 1
            finally:
                os._exit(code)

    def poll(self) -> bytes | None:
        import os

        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        self.pid = 0
        try:
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                raise SerializeFailed(f"the serializing child process failed (wait status {status}): "
                                      "the state cannot be encoded, or the disk refused the temporary file "
                                      f"{self.tmp_path}")
            with open(self.tmp_path, "rb") as f:
                return f.read()
        finally:
            _remove(self.tmp_path)

    def cancel(self) -> None:
        import os
        import signal

        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.pid = 0
        _remove(self.tmp_path)


class CustomJob:
    """PySyncObj's custom serializer protocol.

    `serializer(filename, raw_data)` saves the user's own state *and* `raw_data` to `filename`;
    `deserializer(filename)` restores the user's state and returns `raw_data` unchanged.  With
    `serializeChecker`, the serializer may work in the background: the job ends when the checker
    says SUCCESS or FAILED.  Without it, the serializer is done when it returns.

    The file's bytes become the snapshot (sent to followers, stored in the dump with checksums);
    `raw_data` is a tuple naming the log position, so a deserializer that returns another
    snapshot's `raw_data` is caught."""

    def __init__(self, index: int, term: int, code_version: int, conf: Any, tmp_path: str,
                 host_state: Any = None) -> None:
        self.index = index
        self.code_version = code_version
        # The host's own replicated state (the session table), encoded now: as of `index`.
        self.host_state = encoding.dumps(host_state)
        self.tmp_path = tmp_path
        self.checker = conf.serializeChecker
        self.raw = raw_data(code_version, index, term)
        _remove(tmp_path)
        try:
            conf.serializer(tmp_path, self.raw)
        except Exception as e:
            raise SerializeFailed(f"the custom serializer raised {e!r}") from e

    def poll(self) -> bytes | None:
        from ..errors import SERIALIZER_STATE

        if self.checker is not None:
            try:
                state = self.checker()
            except Exception as e:
                raise SerializeFailed(f"serializeChecker raised {e!r}") from e
            if state == SERIALIZER_STATE.FAILED:
                raise SerializeFailed("serializeChecker reported FAILED")
            if state != SERIALIZER_STATE.SUCCESS:
                return None
        try:
            with open(self.tmp_path, "rb") as f:
                user_bytes = f.read()
        except OSError as e:
            raise SerializeFailed(f"the custom serializer wrote no file {self.tmp_path} ({e})") from e
        finally:
            _remove(self.tmp_path)
        return encoding.dumps({"format": CUSTOM_FORMAT, "code_version": self.code_version, "raw": list(self.raw),
                               "host": self.host_state, "user": user_bytes})

    def cancel(self) -> None:
        _remove(self.tmp_path)


def raw_data(code_version: int, index: int, term: int) -> tuple[Any, ...]:
    """What a custom serializer stores beside the user's state and its deserializer hands back."""
    return ("syncobj", CUSTOM_FORMAT, code_version, index, term)


def load_custom(data: bytes, deserializer: Callable[[str], Any], restore_path: str) -> tuple[int, Any]:
    """Restore a custom-serializer snapshot: its file is written to `restore_path` and handed to
    the user's deserializer.  Returns (enabled code version, the host's state); ValueError when `data` is not
    such a snapshot or the deserializer returns the raw_data of another one."""
    obj = encoding.loads(data)
    if not isinstance(obj, dict) or obj.get("format") != CUSTOM_FORMAT or not isinstance(obj.get("user"), bytes):
        raise ValueError("not a syncobj custom-serializer snapshot (format 2); was it written without "
                         "SyncObjConf.serializer?")
    with open(restore_path, "wb") as f:
        f.write(obj["user"])
    got = deserializer(restore_path)
    expected = tuple(obj["raw"])
    if got is None or tuple(got) != expected:
        raise ValueError(f"the deserializer returned {got!r}, not the raw_data {expected!r} that the serializer "
                         f"was given for this snapshot (restored from {restore_path})")
    return int(obj["code_version"]), encoding.loads(obj["host"])


def _remove(path: str) -> None:
    import os

    try:
        os.remove(path)
    except OSError:
        pass
