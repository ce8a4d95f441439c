"""Sequential specifications ("models") that the linearizability checker replays operations against.

A model is a pure state machine: ``init()`` gives the initial state and ``step(state, input, output)``
says whether ``output`` is a possible result of applying ``input`` in ``state`` and what the state
becomes. The checker memoizes on states, so they must be hashable and cheap to hash: ints, strings,
tuples, frozensets. ``step`` receives :data:`~syncobj.lincheck.history.UNKNOWN` as the output of an
operation whose result nobody saw; it must then accept and return the state the operation leads to.

Most specifications are deterministic (the state and input fix the output), and are easiest to
write as ``apply(state, input) -> (output, new_state)``: :func:`deterministic_model` turns that into a
``step``. :func:`nondeterministic_model` does the same for specifications that may choose among
several results (``set.pop`` with an unseen result), by tracking the set of possible states.

Operation inputs are tuples ``(method_name, *args)``; an exception raised by the real object is
recorded as the output ``("error", "ExceptionName")`` (see :func:`error`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import attrs

from .history import UNKNOWN, Operation

__all__ = [
    "ERROR",
    "Dispatch",
    "Model",
    "ModelInputError",
    "cas_register",
    "deterministic_model",
    "error",
    "kv",
    "method_of",
    "nondeterministic_model",
    "partition_by_argument",
    "same_output",
]

ERROR = "error"


def error(exception_name: str) -> tuple[str, str]:
    """The output recorded when the real object raised ``exception_name`` (e.g. ``"KeyError"``)."""
    return (ERROR, exception_name)


class ModelInputError(ValueError):
    """An operation input the model does not understand (unknown method, wrong number of arguments)."""


def _describe_operation(input: Any, output: Any) -> str:
    if isinstance(input, tuple) and input and isinstance(input[0], str):
        call = f"{input[0]}({', '.join(repr(a) for a in input[1:])})"
    else:
        call = repr(input)
    return f"{call} -> {output!r}"


@attrs.frozen(slots=True)
class Model:
    """A sequential specification; see the module docstring for the contract of each callable.

    ``partition`` (optional) splits a history into independent sub-histories that can be checked
    separately (P-compositionality: the whole is linearizable iff every part is).

    ``read_only(input, output)`` (optional) promises that an operation with this input and this
    output leaves the state unchanged in every state where it is legal (a read; a cas that
    reported a failed compare). The checker uses it twice: such an operation with an unknown output
    constrains nothing and is dropped, and one whose output matches the current state is placed
    right away instead of being searched over. A wrong promise makes the checker wrong, so when
    in doubt leave it out: the search is still exact without it, only slower.
    """

    name: str
    init: Callable[[], Hashable]
    step: Callable[[Any, Any, Any], tuple[bool, Any]]
    partition: Callable[[Sequence[Operation]], list[list[Operation]]] | None = None
    describe_operation: Callable[[Any, Any], str] = _describe_operation
    describe_state: Callable[[Any], str] = repr
    read_only: Callable[[Any, Any], bool] | None = None
    apply: Callable[[Any, Any], tuple[Any, Any]] | None = None
    """For a deterministic model, ``apply(state, input) -> (output, new_state)`` behind ``step``."""


def same_output(expected: Any, recorded: Any) -> bool:
    """Equality that treats list and tuple alike, recursively.

    Recorded outputs may have crossed a serializer (msgpack, JSON) that does not keep the
    difference between the two, while the model produces whichever is natural.
    """
    if expected == recorded:
        return True
    if isinstance(expected, (list, tuple)) and isinstance(recorded, (list, tuple)):
        return len(expected) == len(recorded) and all(same_output(a, b) for a, b in zip(expected, recorded))
    if isinstance(expected, dict) and isinstance(recorded, dict):
        return expected.keys() == recorded.keys() and all(same_output(v, recorded[k]) for k, v in expected.items())
    return False


_CONTAINERS = frozenset({list, tuple, dict})


def deterministic_model(
    name: str,
    init: Callable[[], Hashable],
    apply: Callable[[Any, Any], tuple[Any, Hashable]],
    **options: Any,
) -> Model:
    """A model whose ``apply(state, input) -> (output, new_state)`` leaves no choice."""

    def step(state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        result, new_state = apply(state, input)
        if result == output or output is UNKNOWN:
            return True, new_state
        if type(result) in _CONTAINERS and same_output(result, output):
            return True, new_state
        return False, state

    return Model(name=name, init=init, step=step, apply=apply, **options)


def nondeterministic_model(
    name: str,
    init: Callable[[], Hashable],
    apply_all: Callable[[Any, Any], Iterable[tuple[Any, Hashable]]],
    **options: Any,
) -> Model:
    """A model whose ``apply_all(state, input)`` lists every possible ``(output, new_state)``.

    The checker sees a deterministic model over frozensets of possible states (the powerset
    construction), so memoization keeps working.
    """

    def init_all() -> frozenset:
        return frozenset((init(),))

    def step(states: frozenset, input: Any, output: Any) -> tuple[bool, frozenset]:
        after = frozenset(
            new_state
            for state in states
            for result, new_state in apply_all(state, input)
            if output is UNKNOWN or result == output or same_output(result, output)
        )
        return bool(after), after

    describe_state = options.pop("describe_state", repr)
    read_only = options.pop("read_only", None)
    if read_only is not None:
        # A read narrows the set of possible states, so over sets of states it is not read-only;
        # only a read whose result nobody saw leaves the set alone (and may be dropped).
        options["read_only"] = lambda input, output: output is UNKNOWN and read_only(input, output)

    def describe_states(states: frozenset) -> str:
        shown = sorted(describe_state(s) for s in states)
        return shown[0] if len(shown) == 1 else "one of {" + ", ".join(shown) + "}"

    return Model(name=name, init=init_all, step=step, describe_state=describe_states, **options)


def method_of(input: Any, model_name: str) -> str:
    """The method name of an input ``(method, *args)``; a clear error for anything else."""
    if not isinstance(input, (tuple, list)) or not input or not isinstance(input[0], str):
        raise ModelInputError(f"{model_name} model: input must be a tuple (method_name, *args), got {input!r}")
    return input[0]


class Dispatch:
    """Maps method names to ``fn(state, *args) -> (output, new_state)`` with arity checks.

    Checking the argument count here keeps a malformed input (a model error) apart from an
    exception the method itself is specified to raise (an output).
    """

    def __init__(self, model_name: str, table: dict[str, tuple[Callable[..., Any], int, int]]):
        self.model_name = model_name
        self.table = table

    def __call__(self, state: Any, input: Any) -> Any:
        method = method_of(input, self.model_name)
        entry = self.table.get(method)
        if entry is None:
            known = ", ".join(sorted(self.table))
            raise ModelInputError(f"{self.model_name} model has no method {method!r} (input {input!r}); known: {known}")
        fn, least, most = entry
        nargs = len(input) - 1
        if not least <= nargs <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise ModelInputError(
                f"{self.model_name} model: {method} takes {wanted} argument(s), got {nargs} in {input!r}"
            )
        return fn(state, *input[1:])

    def methods(self) -> list[str]:
        return sorted(self.table)


def partition_by_argument(single_key_methods: frozenset[str], position: int = 1):
    """A ``partition`` that splits by ``input[position]`` when every operation touches one key only.

    If any operation touches several keys (``clear``, ``keys``, ``update``...), the history stays
    whole: splitting it would let the checker order that operation differently in each part.
    """

    def partition(history: Sequence[Operation]) -> list[list[Operation]]:
        groups: dict[Any, list[Operation]] = {}
        for op in history:
            inp = op.input
            if (
                not isinstance(inp, (tuple, list))
                or len(inp) <= position
                or inp[0] not in single_key_methods
            ):
                return [list(history)]
            try:
                groups.setdefault(inp[position], []).append(op)
            except TypeError:  # unhashable key: keep the history whole, the model will judge it
                return [list(history)]
        return list(groups.values())

    return partition


# --- the etcd register: read / write / cas on one value, initially absent (None) -------------------


def _register_apply(state: Any, input: Any) -> tuple[Any, Any]:
    if type(input) is tuple:
        method = input[0] if input else None
        if method == "read" and len(input) == 1:
            return state, state
        if method == "write" and len(input) == 2:
            return None, input[1]
        if method == "cas" and len(input) == 3:
            if state == input[1]:
                return True, input[2]
            return False, state
    raise ModelInputError(
        f"cas-register model: expected ('read',), ('write', v) or ('cas', old, new), got {input!r}"
    )


def cas_register() -> Model:
    """A single register with read, write and compare-and-set, as in Jepsen's etcd test.

    Inputs ``("read",)``, ``("write", v)``, ``("cas", old, new)``; outputs: the value read (None
    while never written), None for a write, True/False for whether the compare matched.
    """
    return deterministic_model(
        "cas-register",
        init=lambda: None,
        apply=_register_apply,
        read_only=_register_read_only,
    )


def _register_read_only(input: Any, output: Any) -> bool:
    if not isinstance(input, tuple) or not input:
        return False
    if input[0] == "read":
        return True
    # a cas that answered False did not write; cas(v, v) never changes the value
    return input[0] == "cas" and len(input) == 3 and (output is False or input[1] == input[2])


# --- a key-value store of strings, partitionable by key -------------------------------------------


def _kv_apply(state: tuple, input: Any) -> tuple[Any, tuple]:
    # state: ((key, value), ...) sorted by key, so equal stores are equal states
    if type(input) is tuple and len(input) >= 2:
        method, key = input[0], input[1]
        if method == "get" and len(input) == 2:
            for k, value in state:
                if k == key:
                    return value, state
            return "", state
        if (method == "append" or method == "put") and len(input) == 3:
            arg = input[2]
            for i, (k, value) in enumerate(state):
                if k == key:
                    return None, state[:i] + ((key, value + arg if method == "append" else arg),) + state[i + 1 :]
            items = dict(state)
            items[key] = arg
            return None, _sorted_items(items)
    raise ModelInputError(f"kv model: expected ('get', k), ('put', k, v) or ('append', k, v), got {input!r}")


def _sorted_items(items: dict) -> tuple:
    """A canonical tuple for a dict whose order does not matter (so equal stores hash equal)."""
    try:
        return tuple(sorted(items.items()))
    except TypeError:
        return tuple(sorted(items.items(), key=repr))


def kv() -> Model:
    """A store of string values: ``get`` returns ``""`` for an unwritten key, ``append`` concatenates."""
    return deterministic_model(
        "kv",
        init=tuple,
        apply=_kv_apply,
        partition=partition_by_argument(frozenset({"get", "put", "append"})),
        read_only=lambda input, output: isinstance(input, tuple) and input[:1] == ("get",),
    )
