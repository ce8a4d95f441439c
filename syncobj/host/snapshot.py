"""The state machine's snapshot: every replicated object's state plus the host's own.

Default format (`encoding.dumps` of a dict, so it never needs pickle):

    {"format": 1, "code_version": <enabled code version>, "objects": [state0, state1, ...]}

`state0` is the SyncObj subclass's own state: the attributes it gained after
`SyncObj.__init__` (PySyncObj's rule); `state1..` are the consumers'
`_serialize()` results.  The enabled code version is host state that must
survive a restart and travel to followers with the snapshot.

With a custom `SyncObjConf.serializer` (PySyncObj's protocol, see `CustomJob`) the snapshot is
`{"format": 2, "code_version": v, "raw": raw_data, "user": <the bytes of the user's file>}`.
Compactions serialize through a job polled by the loop: `ForkJob` (useFork: a child encodes and
writes the dump), `ThreadJob` (a helper thread encodes a consistent copy and writes the dump),
`CustomJob` (the user's serializer).  Under the simulator (no threads, no files of its own)
`dump` runs right on the loop.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from typing import Any, Callable

import msgpack

from .. import encoding
from ..kernel import Snapshot, SnapshotMeta

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
    """Encode the states in a forked child that also writes the whole dump, so the loop neither
    encodes nor writes a big state.

    The child (it touches nothing but its own file: no logging, no locks, since other threads'
    locks are copied held) encodes the states, writes them with `meta` as a complete dump to
    `target.temp_path("fork-<its pid>")`, fsyncs it and exits 0.  The loop polls it with
    `waitpid(WNOHANG)`; then a helper thread reads the data back (the kernel keeps the snapshot
    in memory to send it to followers), so the loop never waits for the child nor for the file.
    `os.fork` copies memory lazily, so the parent's later changes are invisible to the child:
    the snapshot is exactly the state at `index`.  The loop then compacts the kernel and
    `store` has the file renamed into place (`driver.adopt_snapshot`).

    Crash safety: a child killed while writing leaves the old dump alone (its file has a name of
    its own and is removed, or swept by the next job); a parent killed while the child runs
    leaves at worst such a file behind, which the next job on restart deletes."""

    def __init__(self, index: int, code_version: int, states: list[Any], target: Any, meta: Any) -> None:
        import os

        self.index = index
        self.meta = meta
        self.target = target
        target.remove_stale()
        self._reader: _Background | None = None
        self.pid = os.fork()
        if self.pid == 0:  # the child
            code = 1
            try:
                target.write_temp(target.temp_path(f"fork-{os.getpid()}"), Snapshot(meta, dump(code_version, states)))
                code = 0
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        self.tmp_path = target.temp_path(f"fork-{self.pid}")

    def poll(self) -> bytes | None:
        import os

        if self._reader is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return None
            self.pid = 0
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                _remove(self.tmp_path)
                raise SerializeFailed(f"the serializing child process failed (wait status {status}): "
                                      "the state cannot be encoded, or the disk refused the temporary file "
                                      f"{self.tmp_path}")
            self._reader = _Background(lambda: self.target.read_temp(self.tmp_path), "read back the fork's dump")
        if not self._reader.done():
            return None
        try:
            snap = self._reader.result()
        except Exception as e:
            _remove(self.tmp_path)
            raise SerializeFailed(f"the dump the child wrote cannot be read back: {e}") from e
        if snap.meta != self.meta:
            _remove(self.tmp_path)
            raise SerializeFailed(f"the child's dump covers {snap.meta}, not {self.meta}")
        return snap.data

    def store(self, driver: Any, snap: Any) -> bool:
        """Step 4 for this job's snapshot: True when the child's file became the dump."""
        return _adopt(driver, snap, self.meta, self.tmp_path)

    def discard(self) -> None:
        """The job is over: its file, unless it was adopted, goes."""
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
        if self._reader is not None:
            self._reader.thread.join(1.0)  # reading a file: short; a daemon thread anyway
        _remove(self.tmp_path)


class ThreadJob:
    """Without fork: encode a consistent copy of the states on a helper thread, and write the dump.

    The copy is taken on the loop at `index` (`consistent_copy`: mutable containers copied,
    immutable values shared, so it costs a small fraction of encoding); the helper encodes it in
    pieces (`encode_in_pieces`: one msgpack call per few hundred values, so the loop gets the
    GIL back every few milliseconds instead of after one long call), writes the dump under its
    own temporary name and fsyncs it.  Then, as with `ForkJob`, the loop compacts the kernel and
    `store` renames the file into place."""

    _serial = 0

    def __init__(self, index: int, code_version: int, states: list[Any], target: Any, meta: Any) -> None:
        self.index = index
        self.meta = meta
        self.target = target
        self.tmp_path: str | None = None
        if target is not None and target.path is not None:
            ThreadJob._serial += 1
            target.remove_stale()
            self.tmp_path = target.temp_path(f"thread-{ThreadJob._serial}")
        copy = consistent_copy(states)
        self._cancelled = False
        self._work = _Background(lambda: self._run(code_version, copy), "serialize a snapshot")

    def _run(self, code_version: int, states: list[Any]) -> bytes:
        parts = encode_in_pieces({"format": FORMAT, "code_version": code_version, "objects": states},
                                 lambda: self._cancelled)
        data = b"".join(parts)  # (releases the GIL for big joins)
        del parts
        if self.tmp_path is not None and not self._cancelled:
            self.target.write_temp(self.tmp_path, Snapshot(self.meta, data))
        return data

    def poll(self) -> bytes | None:
        if not self._work.done():
            return None
        try:
            return self._work.result()
        except TypeError as e:
            raise SerializeFailed(f"the state cannot be encoded ({e})") from e
        except Exception as e:
            if self.tmp_path is not None:
                _remove(self.tmp_path)
            raise SerializeFailed(f"writing the dump {self.tmp_path} failed: {e!r}") from e

    def store(self, driver: Any, snap: Any) -> bool:
        return self.tmp_path is not None and _adopt(driver, snap, self.meta, self.tmp_path)

    def discard(self) -> None:
        if self.tmp_path is not None:
            _remove(self.tmp_path)

    def cancel(self) -> None:
        self._cancelled = True  # the helper stops at its next piece and writes nothing
        self._work.thread.join(1.0)
        self.discard()


def _adopt(driver: Any, snap: Any, meta: Any, tmp_path: str) -> bool:
    """Have the driver rename a dump written off the loop into place, if it holds `snap` exactly
    (the kernel's own view of the snapshot, `snap.meta`, must be what was written)."""
    import os

    adopt = getattr(driver, "adopt_snapshot", None)
    if adopt is None or snap.meta != meta or not os.path.exists(tmp_path):
        return False
    adopt(snap, tmp_path)
    return True


class _Background:
    """One function on a daemon thread; `result()` returns its value or raises its exception."""

    def __init__(self, fn: Callable[[], Any], what: str) -> None:
        import threading

        self._fn = fn
        self._value: Any = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"syncobj: {what}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as e:
            self._error = e
        finally:
            self._fn = None  # type: ignore[assignment]  # drop what it held (a copy of the state)

    def done(self) -> bool:
        return not self.thread.is_alive()

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


def snapshot_meta_at(raft: Any, index: int) -> Any:
    """What a compaction of `raft` at `index` will cover, computed before it happens (a job writes
    the dump before the kernel compacts).  The membership is the current one: if a configuration
    entry follows `index` the guess is wrong, the kernel's own `compacted` then differs, and the
    dump is written the ordinary way instead of adopted."""
    entries = raft.entries_from(index)
    term = raft.term_at(index)
    time = entries[0].time if entries and entries[0].index == index else 0.0
    return SnapshotMeta(index, term or 0, raft.status().membership, time)


#: Types whose values never change in place: a copy may share them.
_IMMUTABLE = frozenset({type(None), bool, int, float, str, bytes, complex, frozenset,
                        _dt.datetime, _dt.date, _dt.time, _dt.timedelta, decimal.Decimal, uuid.UUID})


def consistent_copy(obj: Any) -> Any:
    """A copy of `obj` that later changes to `obj` cannot reach: mutable containers are copied
    (recursively), immutable values shared.  Only the types the encoding supports are walked;
    anything else is passed through for the encoder to refuse with its name."""
    t = type(obj)
    if t in _IMMUTABLE:
        return obj
    if t is dict:
        if _IMMUTABLE.issuperset(map(type, obj.values())):
            return obj.copy()
        return {k: consistent_copy(v) for k, v in obj.items()}
    if t is list:
        if _IMMUTABLE.issuperset(map(type, obj)):
            return obj.copy()
        return [consistent_copy(v) for v in obj]
    if t is tuple:
        if _IMMUTABLE.issuperset(map(type, obj)):
            return obj
        return tuple(consistent_copy(v) for v in obj)
    if t is set:
        return set(obj)  # members are hashable, so immutable
    if t is bytearray:
        return bytes(obj)
    return obj


#: Values packed per msgpack call by `encode_in_pieces`.
PIECE = 256


def encode_in_pieces(obj: Any, cancelled: Callable[[], bool] = lambda: False) -> list[bytes]:
    """`encoding.dumps(obj)` as a list of pieces whose concatenation is the same bytes, made with
    many short msgpack calls instead of one long one: a thread encoding a 100 MB state holds the
    GIL for a few milliseconds at a time.  Dicts and lists are opened (their headers written
    here) down to the containers small enough to pack whole."""
    out: list[bytes] = []
    _pieces(obj, out, 0, cancelled)
    return out


def _pieces(obj: Any, out: list[bytes], depth: int, cancelled: Callable[[], bool]) -> None:
    t = type(obj)
    if not (t is dict or t is list):
        out.append(encoding.dumps(obj))
        return
    packer = msgpack.Packer(use_bin_type=True)
    flat: list[Any] = []
    if t is dict:
        out.append(packer.pack_map_header(len(obj)))
        for k, v in obj.items():
            if (type(v) is dict or type(v) is list) and (depth < 2 or len(v) > PIECE):
                _flush(flat, out)
                out.append(encoding.dumps(k))
                _pieces(v, out, depth + 1, cancelled)
            else:
                flat.append(k)
                flat.append(v)
                if len(flat) >= 2 * PIECE:
                    _flush(flat, out)
                    if cancelled():
                        raise SerializeFailed("cancelled")
    else:
        out.append(packer.pack_array_header(len(obj)))
        for v in obj:
            if (type(v) is dict or type(v) is list) and (depth < 2 or len(v) > PIECE):
                _flush(flat, out)
                _pieces(v, out, depth + 1, cancelled)
            else:
                flat.append(v)
                if len(flat) >= PIECE:
                    _flush(flat, out)
                    if cancelled():
                        raise SerializeFailed("cancelled")
    _flush(flat, out)


def _flush(flat: list[Any], out: list[bytes]) -> None:
    """Pack `flat` as one array and drop the array's header: the elements' encodings, concatenated."""
    if not flat:
        return
    n = len(flat)
    encoded = encoding.dumps(flat)
    out.append(encoded[1 if n <= 15 else 3 if n <= 0xFFFF else 5:])
    flat.clear()


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
