"""Is a client history linearizable? An exact search in the style of Wing & Gong, Lowe and Porcupine.

How the search works (docs/linearizability.md has the long version):

* Each partition of the history (P-compositionality, when the model offers it) is searched on its own.
  Partitions take turns, a slice of work each, smallest first, so a hard partition cannot hide a
  violation in an easy one; the first partition found illegal decides.
* A *configuration* is the model state plus the set of operations in flight that already have a
  place in the order (an int bitset). Responses are visited in time order. Operations are placed
  *just in time*: at the response of ``r`` a configuration moves on by every sequence of in-flight
  operations that ends with ``r`` ("place r right now" first). The search is depth first over
  responses, so a linearizable history usually walks one path, and memoized per response on
  ``(bitset, state)``, so nothing is expanded twice.
* Which sequences to try first is a guess, and no guess suits every history: long sequences first
  suit slow, heavily overlapping operations; short ones first suit histories with many lost
  responses. A partition starts with the first; if it is not decided within a few dozen turns, a
  search with the second joins it (sharing the memo of model steps) and the first to finish decides.
* If no configuration gets past the response of ``r``, the history up to that response (every
  operation invoked by then) is the smallest prefix that is not linearizable, and is reported with
  one legal order for everything before it.
* Three prunings keep the search small without losing exactness: an operation the model promises is
  read-only (for its output) is placed as soon as it is legal, since that can only help; an
  indeterminate operation (no response) is never required, and never placed where it changes
  nothing; indeterminate operations with equal inputs are interchangeable, so they go in call order.

States are interned to small ints, every ``(operation, state)`` step is computed once, and bit
positions are recycled as operations complete, so the inner loop is dictionary lookups and small-int
arithmetic.
"""

from __future__ import annotations

import collections
import enum
import heapq
import time
from collections.abc import Sequence
from typing import Any

import attrs

from .history import UNKNOWN, Operation
from .models import Model

__all__ = ["Failure", "ModelError", "Result", "Verdict", "check"]


class Verdict(enum.Enum):
    OK = "linearizable"
    ILLEGAL = "not linearizable"
    UNKNOWN = "unknown"


class ModelError(Exception):
    """The model raised, or gave an unusable state: a bug in the model or an input it does not know.

    This says nothing about the system under test, so it is not reported as a violation.
    """

    def __init__(self, model: Model, operation: Operation | None, state: Any, cause: BaseException | str):
        where = "" if operation is None else f" on operation {operation.id} {operation.input!r} -> {operation.output!r}"
        detail = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"model {model.name!r} failed{where} in state {state!r}: {detail}")
        self.model = model
        self.operation = operation
        self.state = state
        self.cause = cause if isinstance(cause, BaseException) else None


@attrs.frozen
class Failure:
    """Why a partition is not linearizable.

    ``operation``'s response is the first one that no ordering explains: ``prefix`` (every operation
    invoked before that response) is the smallest prefix of the partition that is not linearizable.
    ``pending`` were in flight at that moment, ``linearization`` is one order found for everything
    before it (the longest linearizable prefix) and ``states`` what the object could have held then.
    """

    partition: int
    operation: Operation
    prefix: tuple[Operation, ...]
    pending: tuple[Operation, ...]
    linearization: tuple[Operation, ...]
    states: tuple[str, ...]
    explanation: str


@attrs.frozen
class Result:
    """The verdict, and what the search saw on the way."""

    verdict: Verdict
    partitions: int
    partitions_checked: int
    operations: int
    configurations: int
    elapsed: float
    failure: Failure | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def describe(self) -> str:
        """A few lines for a person: the verdict and, on failure, the explanation."""
        head = (
            f"{self.verdict.value}: {self.operations} operations in {self.partitions} partition(s), "
            f"{self.configurations} configurations explored in {self.elapsed:.3f}s"
        )
        if self.failure is not None:
            return head + "\n" + self.failure.explanation
        if self.reason:
            return head + "\n" + self.reason
        return head


@attrs.define
class _Outcome:
    """The result of searching one partition."""

    ok: bool
    configurations: int
    fail_op: int = -1
    pending: list[int] = attrs.Factory(list)
    frontier_states: list[Any] = attrs.Factory(list)
    witness: list[int] = attrs.Factory(list)


_SLICE = 2000
_STEP_COST = 4
"""A search runs _SLICE units of work before the next one gets its turn: a unit is one
configuration visited, a fresh model step counts _STEP_COST (measured: it costs about that much)."""

_SECOND_ORDER_AFTER = 50
"""Turns a partition's depth-first search may take before a breadth-first one joins it."""


@attrs.frozen
class _Plan:
    """What the search needs to know about a partition before it starts.

    ``steps[k]`` is the k-th response in time order: ``(r, reads, writes, n_maybes)`` where ``r``
    responds, ``reads``/``writes`` are the determinate operations in flight just before (read-only
    for their output, or not) and the first ``n_maybes`` of ``maybes`` are the indeterminate ones
    invoked by then (in flight for ever, in call order).
    """

    bit: list[int]
    twins: list[int]
    read_only: list[bool]
    steps: list[tuple[int, tuple[int, ...], tuple[int, ...], int]]
    maybes: tuple[int, ...]


def _plan(model: Model, ops: Sequence[Operation]) -> _Plan:
    n = len(ops)
    indeterminate = [op.return_time is None for op in ops]
    read_only = [False] * n
    if model.read_only is not None:
        for i in range(n):
            if not indeterminate[i]:
                try:
                    read_only[i] = bool(model.read_only(ops[i].input, ops[i].output))
                except Exception as exc:
                    raise ModelError(model, ops[i], None, f"read_only() raised {type(exc).__name__}: {exc}") from exc

    events: list[tuple[Any, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.call_time, 0, i))  # calls before returns at the same instant: concurrent
        if op.return_time is not None:
            events.append((op.return_time, 1, i))
    events.sort()

    # Bit positions are recycled: an operation holds its bit from its call to its response (for
    # ever if it has none), so bitsets stay as small as the number of operations in flight.
    bit = [0] * n
    free_slots: list[int] = []
    next_slot = 0
    # Indeterminate operations with equal inputs are interchangeable: only the earliest-called
    # unplaced one may be placed next. twins[j] holds the earlier twins that must be placed first.
    twins = [0] * n
    earlier: dict[Any, int] = {}
    steps: list[tuple[int, tuple[int, ...], tuple[int, ...], int]] = []
    reads: list[int] = []
    writes: list[int] = []
    maybes: list[int] = []
    for _, kind, r in events:
        if kind == 0:
            if free_slots:
                slot = heapq.heappop(free_slots)
            else:
                slot = next_slot
                next_slot += 1
            bit[r] = 1 << slot
            if indeterminate[r]:
                maybes.append(r)
                try:
                    twins[r] = earlier.get(ops[r].input, 0)
                    earlier[ops[r].input] = twins[r] | bit[r]
                except TypeError:  # unhashable input: no twins
                    pass
            else:
                (reads if read_only[r] else writes).append(r)
        else:
            (reads if read_only[r] else writes).remove(r)
            steps.append((r, tuple(reads), tuple(writes), len(maybes)))
            heapq.heappush(free_slots, bit[r].bit_length() - 1)
    return _Plan(bit, twins, read_only, steps, tuple(maybes))


class _Steps:
    """The model's transitions, each ``(operation, state)`` computed once and shared by searches.

    States are interned to small ints; ``trans[j][s]`` is the state after operation j in state s,
    or -1 when its output is impossible there (``advance`` computes a missing entry). ``meter``
    counts work for the turn-taking.
    """

    def __init__(self, model: Model, ops: Sequence[Operation], read_only: list[bool]):
        self.states: list[Any] = []
        self.trans: list[dict[int, int]] = [{} for _ in ops]
        self.meter = [0]
        states, trans, meter = self.states, self.trans, self.meter
        state_ids: dict[Any, int] = {}
        inputs = [op.input for op in ops]
        outputs = [op.output for op in ops]
        step = model.step

        def intern(state: Any, op: int | None) -> int:
            try:
                sid = state_ids.get(state)
            except TypeError as exc:
                where = None if op is None else ops[op]
                raise ModelError(model, where, state, f"states must be hashable ({exc})") from None
            if sid is None:
                sid = len(states)
                state_ids[state] = sid
                states.append(state)
            return sid

        def advance(j: int, s: int) -> int:
            """The state after operation j in state s, or -1 if its output is impossible there."""
            meter[0] += _STEP_COST
            state = states[s]
            try:
                ok, new_state = step(state, inputs[j], outputs[j])
            except Exception as exc:
                raise ModelError(model, ops[j], state, exc) from exc
            t = intern(new_state, j) if ok else -1
            if t >= 0 and t != s and read_only[j]:
                raise ModelError(
                    model, ops[j], state,
                    f"read_only() promised this operation leaves the state alone, but it changed it to {new_state!r}",
                )
            trans[j][s] = t
            return t

        self.advance = advance
        try:
            initial = model.init()
        except Exception as exc:
            raise ModelError(model, None, None, f"init() raised {type(exc).__name__}: {exc}") from exc
        self.initial = intern(initial, None)


def _search(plan: _Plan, stepper: _Steps, trace: bool, breadth_first: bool):
    """Search one partition, as a generator that yields every ``_SLICE`` units of work.

    The caller interleaves searches by resuming them in turn; the outcome is the generator's
    return value. ``trace`` keeps a witness order for every configuration. Within one response,
    successors are generated depth first (long sequences early, good when operations are slow and
    overlap a lot) or breadth first (few extra operations first, good when many responses were lost);
    both are exact, only their speed differs.
    """
    bit, twins, steps, all_maybes = plan.bit, plan.twins, plan.steps, plan.maybes
    trans, advance, meter = stepper.trans, stepper.advance, stepper.meter

    def close(L: int, s: int, path: Any, reads: tuple[int, ...]) -> tuple[int, Any]:
        """Place every in-flight read-only operation that is legal in state s."""
        for j in reads:
            if not L & bit[j]:
                t = trans[j].get(s)
                if t is None:
                    t = advance(j, s)
                if t >= 0:
                    L |= bit[j]
                    if trace:
                        path = (j, path)
        return L, path

    # seen[k]: configurations (placed-bitset, state) already expanded at step k. The search is depth
    # first over responses, so by the time a configuration is met again every continuation from it
    # has failed.
    seen: list[set[tuple[int, int]]] = [set() for _ in steps]

    def successors(k: int, L: int, s: int, path: Any):
        """Configurations after step k: every sequence of in-flight operations ending with r.

        Lazy, and "place r right now" comes first, so a linearizable history rarely pays for more.
        """
        r, reads, writes, n_maybes = steps[k]
        br = bit[r]
        trans_r = trans[r]
        seen_k = seen[k]
        candidates = [(j, False) for j in writes] + [(j, True) for j in all_maybes[:n_maybes]]
        todo = collections.deque(((L, s, path),))
        take = todo.popleft if breadth_first else todo.pop
        while todo:
            meter[0] += 1
            if meter[0] >= _SLICE:
                yield None  # a long expansion lets the other searches have their turn
            L, s, path = take()
            t = trans_r.get(s)
            if t is None:
                t = advance(r, s)
            if t >= 0:
                yield L, t, ((r, path) if trace else None)
            for j, maybe in candidates:
                bj = bit[j]
                if L & bj:
                    continue
                if maybe and L & twins[j] != twins[j]:
                    continue
                t = trans[j].get(s)
                if t is None:
                    t = advance(j, s)
                if t < 0 or (maybe and t == s):  # an unrequired no-op can never help
                    continue
                L2 = L | bj
                path2 = (j, path) if trace else None
                if reads:
                    L2, path2 = close(L2, t, path2, reads)
                    if L2 & br:
                        yield L2 ^ br, t, path2
                        continue
                key = (L2, t)
                if key not in seen_k:
                    seen_k.add(key)
                    todo.append((L2, t, path2))

    if not steps:
        return _Outcome(True, 0)
    n_steps = len(steps)
    deepest = -1
    deepest_states: set[int] = set()
    deepest_path: Any = None
    generators: list[Any] = []
    child: tuple[int, int, Any] | None = (0, stepper.initial, None)
    while True:
        if child is not None:
            # child is a configuration waiting for step k = len(generators)
            k = len(generators)
            if k == n_steps:
                return _Outcome(True, sum(len(x) for x in seen), witness=_unwind(child[2]))
            L, s, path = child
            r, reads = steps[k][:2]
            if reads:
                L, path = close(L, s, path, reads)
            if k > deepest:
                deepest, deepest_states, deepest_path = k, {s}, path
            elif k == deepest:
                deepest_states.add(s)
            if L & bit[r]:
                # r was placed early: nothing to do at its response
                generators.append(iter(((L ^ bit[r], s, path),)))
            elif (L, s) in seen[k]:
                generators.append(iter(()))
            else:
                seen[k].add((L, s))
                generators.append(successors(k, L, s, path))
        meter[0] += 1
        if meter[0] >= _SLICE:
            meter[0] = 0
            yield
        if not generators:
            break
        child = next(generators[-1], _EXHAUSTED)
        if child is _EXHAUSTED:
            generators.pop()
            child = None
    r, reads, writes, n_maybes = steps[deepest]
    return _Outcome(
        False,
        sum(len(x) for x in seen),
        fail_op=r,
        pending=sorted(reads + writes + all_maybes[:n_maybes] + (r,)),
        frontier_states=[stepper.states[s] for s in sorted(deepest_states)],
        witness=_unwind(deepest_path),
    )


_EXHAUSTED: Any = object()


def _unwind(path: Any) -> list[int]:
    order: list[int] = []
    while path is not None:
        j, path = path
        order.append(j)
    order.reverse()
    return order


@attrs.define
class _PartitionCheck:
    """One partition under check: a depth-first search, later joined by a breadth-first one."""

    index: int
    plan: _Plan
    stepper: _Steps
    trace: bool
    searches: list[Any]
    turns: int = 0

    def turn(self) -> _Outcome | None:
        """Run one slice of each search; the outcome of the first to finish, else None."""
        self.turns += 1
        if self.turns == _SECOND_ORDER_AFTER and len(self.plan.steps) > 1:
            self.searches.append(_search(self.plan, self.stepper, self.trace, breadth_first=True))
        for search in self.searches:
            self.stepper.meter[0] = 0
            try:
                next(search)
            except StopIteration as done:
                for other in self.searches:
                    if other is not search:
                        other.close()
                return done.value
        return None


def check(model: Model, history: Sequence[Operation], timeout: float | None = None, explain: bool = True) -> Result:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    Partitions are searched in turns (smallest first, a slice of work each), so one hard partition
    cannot hide a violation in another; the first partition found illegal decides.
    ``timeout`` (seconds) bounds the search: past it the verdict is ``UNKNOWN``, never a guess.
    With ``explain`` (the default) a failure carries an order found for the longest linearizable
    prefix; without it that order is left empty and the search is a little faster.
    Raises :class:`ModelError` when the model itself fails.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    ops = list(history)
    for op in ops:
        if not isinstance(op, Operation):
            raise TypeError(f"a history is a list of Operation, got {type(op).__name__}: {op!r}")
    if model.read_only is not None:
        # An operation that cannot change the state and whose output nobody saw constrains nothing.
        try:
            ops = [op for op in ops if not (op.output is UNKNOWN and model.read_only(op.input, UNKNOWN))]
        except Exception as exc:
            raise ModelError(model, None, None, f"read_only() raised {type(exc).__name__}: {exc}") from exc
    if model.partition is not None and ops:
        try:
            parts = [list(p) for p in model.partition(ops)]
        except Exception as exc:
            raise ModelError(model, None, None, f"partition() raised {type(exc).__name__}: {exc}") from exc
        if sum(len(p) for p in parts) != len(ops):
            raise ModelError(model, None, None, "partition() lost or duplicated operations")
    else:
        parts = [ops]
    running: collections.deque[_PartitionCheck] = collections.deque()
    for index in sorted(range(len(parts)), key=lambda i: (len(parts[i]), i)):
        plan = _plan(model, parts[index])
        stepper = _Steps(model, parts[index], plan.read_only)
        first = _search(plan, stepper, explain, breadth_first=False)
        running.append(_PartitionCheck(index, plan, stepper, explain, [first]))
    explored = 0
    checked = 0
    while running:
        if deadline is not None and time.monotonic() >= deadline:
            for partition in running:
                for search in partition.searches:
                    search.close()
            return Result(
                Verdict.UNKNOWN, len(parts), checked, len(history), explored, time.monotonic() - started,
                reason=f"timed out after {timeout}s with {len(running)} of {len(parts)} partition(s) undecided",
            )
        partition = running.popleft()
        outcome = partition.turn()
        if outcome is None:
            running.append(partition)
            continue
        explored += outcome.configurations
        checked += 1
        if not outcome.ok:
            for other in running:
                for search in other.searches:
                    search.close()
            failure = _failure(model, partition.index, parts[partition.index], outcome)
            return Result(
                Verdict.ILLEGAL, len(parts), checked, len(history), explored, time.monotonic() - started, failure
            )
    return Result(Verdict.OK, len(parts), checked, len(history), explored, time.monotonic() - started)


def _failure(model: Model, index: int, part: list[Operation], outcome: _Outcome) -> Failure:
    failing = part[outcome.fail_op]
    cutoff = failing.return_time
    prefix = tuple(sorted((op for op in part if op.call_time <= cutoff), key=lambda op: (op.call_time, op.id)))
    pending = tuple(part[i] for i in outcome.pending)
    order = tuple(part[i] for i in outcome.witness)
    described = tuple(model.describe_state(s) for s in outcome.frontier_states)

    def line(op: Operation) -> str:
        end = "never" if op.return_time is None else repr(op.return_time)
        return (
            f"  op {op.id} client {op.client_id!r} [{op.call_time!r}, {end}]: "
            f"{model.describe_operation(op.input, op.output)}"
        )

    lines = [
        f"partition {index}: no order of the operations explains the response of op {failing.id} "
        f"at {cutoff!r}:",
        line(failing),
        f"before it, the object could only be in state(s): {', '.join(described)}",
        f"operations in flight at that moment ({len(pending)}):",
        *(line(op) for op in pending),
        f"the smallest non-linearizable prefix has {len(prefix)} operations (all invoked by {cutoff!r});",
    ]
    if order:
        lines.append(f"a linearization of everything before it ({len(order)} operations):")
        lines.extend(line(op) for op in order)
    return Failure(index, failing, prefix, pending, order, described, "\n".join(lines))
