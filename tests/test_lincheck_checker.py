"""The checker's search: what linearizable means, what it reports, and that its shortcuts are exact.

The property tests compare ``check`` with a brute-force search over every order of the operations
on small random histories, so each pruning the checker takes (eager reads, indeterminate
operations, interchangeable twins, recycled bitset positions, partitions searched in turns) has to
give exactly the brute-force verdict.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncobj.lincheck import (
    UNKNOWN,
    Model,
    ModelError,
    Operation,
    Verdict,
    check,
    deterministic_model,
    get_model,
    history_from_events,
)
from syncobj.lincheck import checker
from syncobj.lincheck.models import cas_register


def op(i: int, inp: Any, out: Any, call: float, ret: float | None, client: Any = None) -> Operation:
    return Operation(i, i if client is None else client, inp, out, call, ret)


# --- brute force: every order of every subset of indeterminate operations ----------------------


def brute_force(model: Model, history: Sequence[Operation]) -> bool:
    ops = list(history)
    n = len(ops)
    # before[j]: operations that responded before j was called, so must be placed before j
    before = [
        {i for i in range(n) if ops[i].return_time is not None and ops[i].return_time < ops[j].call_time}
        for j in range(n)
    ]
    required = {i for i in range(n) if ops[i].return_time is not None}

    def search(placed: frozenset[int], state: Any) -> bool:
        if required <= placed:
            return True
        for j in range(n):
            if j in placed or not before[j] <= placed:
                continue
            ok, new_state = model.step(state, ops[j].input, ops[j].output)
            if ok and search(placed | {j}, new_state):
                return True
        return False

    return search(frozenset(), model.init())


INPUTS: dict[str, list[Any]] = {
    "cas-register": [("read",), ("write", 1), ("write", 2), ("cas", 1, 2), ("cas", 2, 1), ("cas", None, 1)],
    "counter": [("inc",), ("add", 2), ("sub", 1), ("set", 0), ("get",)],
    "queue": [("put", 1), ("put", 2), ("get",), ("qsize",), ("full",), ("empty",)],
    "priority-queue": [("put", 3), ("put", 1), ("get",), ("get", -1), ("qsize",)],
    "list": [("append", 1), ("append", 2), ("pop",), ("remove", 1), ("get", 0), ("len",), ("insert", 0, 3)],
    "dict": [("set", "a", 1), ("set", "b", 2), ("get", "a"), ("pop", "a"), ("keys",), ("setdefault", "b", 3)],
    "kv": [("get", "k"), ("put", "k", "x"), ("append", "k", "y"), ("append", "k", "z")],
    "lock-manager": [
        ("tryAcquire", "L", "A", 1.0),
        ("tryAcquire", "L", "B", 2.0),
        ("tryAcquire", "L", "B", 9.0),
        ("release", "L", "A"),
        ("isAcquired", "L", "A", 3.0),
    ],
}
INPUTS["set"] = [("add", 1), ("add", 2), ("discard", 1), ("pop",), ("contains", 1), ("len",), ("rawData",)]
SET_OUTPUTS = [None, 1, 2, True, False, 0, ("error", "KeyError"), {1}, {2}, set()]
PARAMS = {"queue": {"maxsize": 1}, "priority-queue": {"maxsize": 2}, "lock-manager": {"auto_unlock_time": 5.0}}


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, list[Operation]]:
    """A small history: outputs from one sequential run, some corrupted, times drawn at random."""
    name = draw(st.sampled_from(sorted(INPUTS)))
    model = get_model(name, **PARAMS.get(name, {}))
    n = draw(st.integers(1, 6))
    inputs = [draw(st.sampled_from(INPUTS[name])) for _ in range(n)]
    order = draw(st.permutations(range(n)))
    outputs: list[Any] = [None] * n
    state = model.init()
    for i in order:
        if model.apply is None:  # nondeterministic (set): outputs drawn from a small domain
            outputs[i] = draw(st.sampled_from(SET_OUTPUTS))
        else:
            outputs[i], state = model.apply(state, inputs[i])
    ops = []
    for i in range(n):
        call = draw(st.integers(0, 8))
        kind = draw(st.sampled_from(["ok", "ok", "ok", "indeterminate", "unseen", "corrupt"]))
        ret: float | None = call + draw(st.integers(0, 5))
        out = outputs[i]
        if kind == "indeterminate":
            ret, out = None, UNKNOWN
        elif kind == "unseen":
            out = UNKNOWN
        elif kind == "corrupt":
            if model.apply is None:
                out = draw(st.sampled_from(SET_OUTPUTS))
            else:
                out = model.apply(model.init(), draw(st.sampled_from(INPUTS[name])))[0]
        ops.append(op(i, inputs[i], out, call, ret))
    return name, ops


def search_in_one_order(model: Model, ops: list[Operation], breadth_first: bool) -> bool:
    """One of the checker's two search orders on its own (``check`` races them on hard partitions)."""
    plan = checker._plan(model, ops)
    search = checker._search(plan, checker._Steps(model, ops, plan.read_only), True, breadth_first)
    while True:
        try:
            next(search)
        except StopIteration as done:
            return done.value.ok


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_verdicts_equal_brute_force(case: tuple[str, list[Operation]]) -> None:
    name, ops = case
    model = get_model(name, **PARAMS.get(name, {}))
    expected = brute_force(model, ops)
    result = check(model, ops)
    assert result.verdict is (Verdict.OK if expected else Verdict.ILLEGAL), (name, ops, result.describe())
    if model.partition is None:  # both search orders, each on its own, are exact too
        assert search_in_one_order(model, ops, breadth_first=False) == expected
        assert search_in_one_order(model, ops, breadth_first=True) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(INPUTS["cas-register"]), min_size=1, max_size=7), st.randoms(use_true_random=False))
def test_concurrent_indeterminate_register_histories_equal_brute_force(inputs: list[Any], rnd: random.Random) -> None:
    """Everything in flight at once and many responses lost: the shortcuts for lost responses."""
    model = cas_register()
    ops = []
    for i, inp in enumerate(inputs):
        if rnd.random() < 0.5:
            ops.append(op(i, inp, UNKNOWN, rnd.randint(0, 3), None))
        else:
            out = {"read": rnd.choice([None, 1, 2]), "write": None, "cas": rnd.choice([True, False])}[inp[0]]
            ops.append(op(i, inp, out, rnd.randint(0, 3), rnd.randint(3, 6)))
    expected = brute_force(model, ops)
    assert check(model, ops).ok == expected, ops
    assert search_in_one_order(model, ops, breadth_first=True) == expected, ops


# --- what linearizable means ------------------------------------------------------------------


def test_an_empty_history_is_linearizable() -> None:
    assert check(cas_register(), []).verdict is Verdict.OK


def test_a_read_may_see_a_concurrent_write_or_not() -> None:
    model = cas_register()
    write = op(0, ("write", 1), None, 0, 10)
    assert check(model, [write, op(1, ("read",), 1, 2, 3)]).ok
    assert check(model, [write, op(1, ("read",), None, 2, 3)]).ok


def test_a_read_after_a_completed_write_must_see_it() -> None:
    model = cas_register()
    history = [op(0, ("write", 1), None, 0, 1), op(1, ("read",), None, 2, 3)]
    result = check(model, history)
    assert result.verdict is Verdict.ILLEGAL
    assert result.failure is not None and result.failure.operation.id == 1


def test_two_reads_cannot_see_a_value_come_back() -> None:
    # write 1 then write 2 concurrent with reads; reading 2 then (later) 1 needs time to go back
    model = cas_register()
    history = [
        op(0, ("write", 1), None, 0, 1),
        op(1, ("write", 2), None, 2, 10),
        op(2, ("read",), 2, 3, 4),
        op(3, ("read",), 1, 5, 6),
    ]
    assert check(model, history).verdict is Verdict.ILLEGAL


def test_an_indeterminate_write_may_take_effect_long_after_its_call() -> None:
    model = cas_register()
    history = [
        op(0, ("write", 1), UNKNOWN, 0, None),
        op(1, ("read",), None, 5, 6),
        op(2, ("read",), 1, 7, 8),
    ]
    assert check(model, history).ok


def test_an_indeterminate_write_may_never_take_effect() -> None:
    model = cas_register()
    history = [op(0, ("write", 1), UNKNOWN, 0, None), op(1, ("read",), None, 5, 6)]
    assert check(model, history).ok


def test_an_indeterminate_write_takes_effect_at_most_once() -> None:
    model = cas_register()
    history = [
        op(0, ("write", 1), UNKNOWN, 0, None),
        op(1, ("read",), 1, 2, 3),
        op(2, ("write", 2), None, 4, 5),
        op(3, ("read",), 1, 6, 7),
    ]
    assert check(model, history).verdict is Verdict.ILLEGAL


def test_an_indeterminate_write_cannot_act_before_its_call() -> None:
    model = cas_register()
    history = [op(0, ("read",), 1, 0, 1), op(1, ("write", 1), UNKNOWN, 2, None)]
    assert check(model, history).verdict is Verdict.ILLEGAL


def test_a_completed_operation_with_unseen_output_still_happens_within_its_interval() -> None:
    model = cas_register()
    history = [op(0, ("write", 1), UNKNOWN, 0, 1), op(1, ("read",), None, 2, 3)]
    assert check(model, history).verdict is Verdict.ILLEGAL


def test_failed_operations_are_left_out_of_the_history() -> None:
    history = history_from_events(
        [
            ("invoke", "a", ("write", 1), 0),
            ("fail", "a", None, 1),
            ("invoke", "b", ("read",), 2),
            ("ok", "b", None, 3),
        ]
    )
    assert [o.input for o in history] == [("read",)]
    assert check(cas_register(), history).ok


def test_operations_at_the_same_instant_are_concurrent() -> None:
    model = cas_register()
    history = [op(0, ("write", 1), None, 0, 5), op(1, ("read",), None, 5, 6)]
    assert check(model, history).ok


# --- what a failure reports -----------------------------------------------------------------


def test_a_failure_names_the_smallest_illegal_prefix_and_a_legal_order_before_it() -> None:
    model = cas_register()
    history = [
        op(0, ("write", 1), None, 0, 1),
        op(1, ("read",), 1, 2, 3),
        op(2, ("write", 2), None, 4, 8),
        op(3, ("read",), 7, 5, 7),  # no one wrote 7
        op(4, ("read",), 2, 8, 9),  # after the failure: not part of the smallest prefix
    ]
    result = check(model, history)
    failure = result.failure
    assert result.verdict is Verdict.ILLEGAL and failure is not None
    assert failure.operation.id == 3
    assert [o.id for o in failure.prefix] == [0, 1, 2, 3]
    assert {o.id for o in failure.pending} == {2, 3}
    assert [o.id for o in failure.linearization][:2] == [0, 1]
    assert "op 3" in failure.explanation and "read() -> 7" in failure.explanation
    assert check(model, [o for o in history if o.id != 3]).ok


def test_without_explain_the_verdict_is_the_same_but_no_order_is_kept() -> None:
    model = cas_register()
    history = [op(0, ("write", 1), None, 0, 1), op(1, ("read",), 2, 2, 3)]
    result = check(model, history, explain=False)
    assert result.verdict is Verdict.ILLEGAL and result.failure is not None
    assert result.failure.linearization == ()


def test_the_search_is_deterministic() -> None:
    model = get_model("kv")
    rnd = random.Random(7)
    history = []
    for i in range(30):
        call = rnd.randint(0, 50)
        history.append(op(i, ("append", str(i % 3), f"v{i}"), None, call, call + rnd.randint(0, 9)))
    history.append(op(99, ("get", "1"), "nonsense", 100, 101))
    first, second = check(model, history), check(model, history)
    assert first.verdict is Verdict.ILLEGAL
    assert first.failure == second.failure and first.configurations == second.configurations


# --- partitions, time budget, model errors --------------------------------------------------


def hard_append_partition(key: str, n: int = 9) -> list[Operation]:
    """n appends all in flight together, then a read nobody can explain: n! orders to rule out."""
    ops = [op(i, ("append", key, f"<{i}>"), None, 0, 100) for i in range(n)]
    ops.append(op(n, ("get", key), "impossible", 101, 102))
    return ops


def test_a_violation_in_an_easy_partition_is_found_despite_a_hard_one() -> None:
    hard = hard_append_partition("hard", 9)
    easy = [op(100 + i, ("put", "easy", "a"), None, 2 * i, 2 * i + 1) for i in range(11)]
    easy.append(op(200, ("get", "easy"), "b", 30, 31))
    assert len(hard) < len(easy)  # so the hard partition is started first
    result = check(get_model("kv"), hard + easy, timeout=60)
    assert result.verdict is Verdict.ILLEGAL
    assert result.failure is not None and result.failure.operation.id == 200
    # the hard partition, although started first, was still undecided when the easy one failed
    assert result.partitions == 2 and result.partitions_checked == 1


def test_running_out_of_time_gives_unknown_never_a_verdict() -> None:
    result = check(get_model("kv"), hard_append_partition("k", 9), timeout=0)
    assert result.verdict is Verdict.UNKNOWN
    assert "timed out" in result.reason
    assert not result.ok


def test_a_model_that_raises_is_a_model_error_not_a_violation() -> None:
    def apply(state: int, input: Any) -> tuple[Any, int]:
        if input == ("boom",):
            raise ZeroDivisionError("model bug")
        return None, state

    model = deterministic_model("fragile", init=lambda: 0, apply=apply)
    with pytest.raises(ModelError, match="fragile.*ZeroDivisionError"):
        check(model, [op(0, ("fine",), None, 0, 1), op(1, ("boom",), None, 2, 3)])


def test_a_model_with_unhashable_states_is_a_model_error() -> None:
    model = deterministic_model("lists", init=lambda: 0, apply=lambda s, i: (None, [s]))
    with pytest.raises(ModelError, match="hashable"):
        check(model, [op(0, ("x",), None, 0, 1)])


def test_a_broken_read_only_promise_is_a_model_error() -> None:
    model = Model(
        name="liar",
        init=lambda: 0,
        step=lambda s, i, o: (True, s + 1),
        read_only=lambda i, o: True,
    )
    with pytest.raises(ModelError, match="read_only"):
        check(model, [op(0, ("get",), 0, 0, 1)])


def test_a_model_given_an_unknown_method_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="no method 'explode'"):
        check(get_model("counter"), [op(0, ("explode",), None, 0, 1)])


def test_only_operations_are_accepted_as_a_history() -> None:
    with pytest.raises(TypeError, match="list of Operation"):
        check(cas_register(), [("write", 1)])  # type: ignore[list-item]


def test_brute_force_reference_agrees_on_a_classic_example() -> None:
    # sanity of the oracle itself: the textbook non-linearizable queue history
    model = get_model("queue")
    history = [
        op(0, ("put", "x"), True, 0, 2),
        op(1, ("put", "y"), True, 3, 4),
        op(2, ("get",), "y", 5, 6),
    ]
    assert brute_force(model, history) is False
    assert all(
        brute_force(model, list(p)) is False for p in itertools.permutations(history)
    )
