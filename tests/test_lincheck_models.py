"""The battery models say what PySyncObj's batteries do, so the checker judges their histories right.

Each test is a small history with a known verdict: a linearizable one, and one a correct battery
could never produce.
"""

from __future__ import annotations

from typing import Any

import pytest

from syncobj.lincheck import UNKNOWN, ModelError, Operation, Verdict, check, error, get_model
from syncobj.lincheck.models import same_output


def sequential(*calls: tuple[Any, Any]) -> list[Operation]:
    """Operations one after another, each (input, output)."""
    return [Operation(i, "c", inp, out, 2 * i, 2 * i + 1) for i, (inp, out) in enumerate(calls)]


def concurrent(*calls: tuple[Any, Any]) -> list[Operation]:
    """Operations all in flight together, from different clients."""
    return [Operation(i, i, inp, out, 0, 10) for i, (inp, out) in enumerate(calls)]


def verdict(name: str, history: list[Operation], **params: Any) -> Verdict:
    return check(get_model(name, **params), history).verdict


OK, ILLEGAL = Verdict.OK, Verdict.ILLEGAL


# --- ReplCounter ----------------------------------------------------------------------------


def test_counter_increments_return_the_new_value() -> None:
    assert verdict("counter", sequential((("inc",), 1), (("add", 5), 6), (("sub", 2), 4), (("get",), 4))) is OK
    assert verdict("counter", sequential((("set", 10), 10), (("inc",), 11))) is OK


def test_counter_concurrent_increments_see_distinct_values() -> None:
    assert verdict("counter", concurrent((("inc",), 2), (("inc",), 1))) is OK
    assert verdict("counter", concurrent((("inc",), 1), (("inc",), 1))) is ILLEGAL


def test_counter_lost_increment_may_explain_a_later_value() -> None:
    history = [Operation(0, "a", ("inc",), UNKNOWN, 0, None), Operation(1, "b", ("get",), 1, 5, 6)]
    assert verdict("counter", history) is OK
    history.append(Operation(2, "b", ("get",), 2, 7, 8))
    assert verdict("counter", history) is ILLEGAL


# --- ReplDict -------------------------------------------------------------------------------


def test_dict_get_pop_setdefault() -> None:
    history = sequential(
        (("get", "a"), None),
        (("get", "a", 0), 0),
        (("set", "a", 1), None),
        (("setdefault", "a", 5), 1),
        (("setdefault", "b", 5), 5),
        (("pop", "a"), 1),
        (("pop", "a"), None),
        (("pop", "a", "gone"), "gone"),
        (("__getitem__", "a"), error("KeyError")),
        (("contains", "b"), True),
    )
    assert verdict("dict", history) is OK


def test_dict_a_value_popped_twice_is_a_violation() -> None:
    history = sequential((("set", "k", 1), None)) + [
        Operation(1, "x", ("pop", "k"), 1, 5, 9),
        Operation(2, "y", ("pop", "k"), 1, 5, 9),
    ]
    assert verdict("dict", history) is ILLEGAL


def test_dict_keys_items_values_follow_insertion_order() -> None:
    history = sequential(
        (("set", "b", 2), None),
        (("set", "a", 1), None),
        (("set", "b", 3), None),
        (("keys",), ["b", "a"]),
        (("items",), [("b", 3), ("a", 1)]),
        (("values",), [3, 1]),
        (("len",), 2),
        (("rawData",), {"a": 1, "b": 3}),
        (("update", {"c": 4}), None),
        (("keys",), ["b", "a", "c"]),
        (("clear",), None),
        (("len",), 0),
    )
    assert verdict("dict", history) is OK
    assert verdict("dict", history[:3] + sequential((("keys",), ["a", "b"]))[:0] + [
        Operation(9, "c", ("keys",), ["a", "b"], 100, 101)
    ]) is ILLEGAL


def test_dict_partitions_per_key_only_when_every_operation_names_one_key() -> None:
    single = sequential((("set", "a", 1), None), (("set", "b", 2), None), (("get", "a"), 1))
    assert check(get_model("dict"), single).partitions == 2
    multi = single + [Operation(9, "c", ("len",), 2, 100, 101)]
    assert check(get_model("dict"), multi).partitions == 1


# --- ReplList -------------------------------------------------------------------------------


def test_list_operations_and_their_errors() -> None:
    history = sequential(
        (("pop",), error("IndexError")),
        (("append", 1), None),
        (("extend", [2, 3]), None),
        (("insert", 0, 0), None),
        (("rawData",), [0, 1, 2, 3]),
        (("remove", 9), error("ValueError")),
        (("remove", 1), None),
        (("index", 3), 2),
        (("count", 2), 1),
        (("get", 5), error("IndexError")),
        (("set", 0, 7), None),
        (("sort",), None),
        (("rawData",), [2, 3, 7]),
        (("sort", True), None),
        (("pop",), 2),
        (("pop", 0), 7),
        (("len",), 1),
        (("reset", [4]), None),
        (("get", 0), 4),
    )
    assert verdict("list", history) is OK


def test_list_concurrent_appends_in_either_order_but_one_order_for_all_readers() -> None:
    appends = concurrent((("append", "x"), None), (("append", "y"), None))
    read_xy = Operation(2, "r1", ("rawData",), ["x", "y"], 20, 21)
    read_yx = Operation(3, "r2", ("rawData",), ["y", "x"], 22, 23)
    assert verdict("list", appends + [read_xy]) is OK
    assert verdict("list", appends + [read_yx]) is OK
    assert verdict("list", appends + [read_xy, read_yx]) is ILLEGAL


# --- ReplSet --------------------------------------------------------------------------------


def test_set_operations() -> None:
    history = sequential(
        (("add", 1), None),
        (("update", [2, 3]), None),
        (("discard", 9), None),
        (("remove", 9), error("KeyError")),
        (("remove", 3), None),
        (("contains", 3), False),
        (("len",), 2),
        (("rawData",), {1, 2}),
        (("pop",), 2),
        (("pop",), 1),
        (("pop",), error("KeyError")),
    )
    assert verdict("set", history) is OK


def test_set_pop_cannot_return_the_same_element_twice() -> None:
    history = sequential((("update", [1, 2]), None), (("pop",), 1), (("pop",), 1))
    assert verdict("set", history) is ILLEGAL


def test_set_a_lost_pop_took_some_element_but_only_one() -> None:
    start = sequential((("update", [1, 2]), None))
    lost_pop = [Operation(1, "p", ("pop",), UNKNOWN, 2, None)]
    one_gone = [Operation(2, "r", ("rawData",), {2}, 5, 6)]
    both_gone = [Operation(2, "r", ("rawData",), set(), 5, 6)]
    assert verdict("set", start + lost_pop + one_gone) is OK
    assert verdict("set", start + lost_pop + both_gone) is ILLEGAL


def test_set_partitions_per_element_for_single_element_operations() -> None:
    history = sequential((("add", 1), None), (("add", 2), None), (("contains", 1), True))
    assert check(get_model("set"), history).partitions == 2


# --- ReplQueue and ReplPriorityQueue -------------------------------------------------------


def test_queue_is_first_in_first_out() -> None:
    assert verdict("queue", sequential((("put", "x"), True), (("put", "y"), True), (("get",), "x"))) is OK
    assert verdict("queue", sequential((("put", "x"), True), (("put", "y"), True), (("get",), "y"))) is ILLEGAL


def test_queue_put_fails_when_full_and_get_returns_the_default_when_empty() -> None:
    history = sequential(
        (("get",), None),
        (("get", "none"), "none"),
        (("put", 1), True),
        (("put", 2), True),
        (("put", 3), False),
        (("full",), True),
        (("qsize",), 2),
        (("get",), 1),
        (("empty",), False),
    )
    assert verdict("queue", history, maxsize=2) is OK
    assert verdict("queue", sequential((("put", 1), True), (("put", 2), False)), maxsize=2) is ILLEGAL


def test_unbounded_queue_reports_full_when_empty_as_pysyncobj_does() -> None:
    assert verdict("queue", sequential((("full",), True), (("put", 1), True), (("full",), False))) is OK


def test_priority_queue_returns_the_smallest_first() -> None:
    history = sequential((("put", 5), True), (("put", 1), True), (("put", 3), True), (("get",), 1), (("get",), 3))
    assert verdict("priority-queue", history) is OK
    bad = sequential((("put", 5), True), (("put", 1), True), (("get",), 5))
    assert verdict("priority-queue", bad) is ILLEGAL


# --- ReplLockManager ------------------------------------------------------------------------


def test_lock_is_exclusive_until_released() -> None:
    history = sequential(
        (("tryAcquire", "L", "A", 0.0), True),
        (("tryAcquire", "L", "B", 1.0), False),
        (("isAcquired", "L", "A", 1.0), True),
        (("isAcquired", "L", "B", 1.0), False),
        (("release", "L", "B"), None),  # not the holder: no effect
        (("tryAcquire", "L", "B", 2.0), False),
        (("release", "L", "A"), None),
        (("tryAcquire", "L", "B", 3.0), True),
    )
    assert verdict("lock-manager", history, auto_unlock_time=10.0) is OK


def test_two_holders_at_once_is_a_violation() -> None:
    history = concurrent((("tryAcquire", "L", "A", 0.0), True), (("tryAcquire", "L", "B", 0.0), True))
    assert verdict("lock-manager", history, auto_unlock_time=10.0) is ILLEGAL


def test_lock_expires_after_auto_unlock_time_unless_refreshed() -> None:
    expired = sequential(
        (("tryAcquire", "L", "A", 0.0), True),
        (("isAcquired", "L", "A", 10.0), False),  # isAcquired: held while now - t < autoUnlockTime
        (("tryAcquire", "L", "B", 10.0), False),  # tryAcquire: expired only when now - t > autoUnlockTime
        (("tryAcquire", "L", "B", 10.5), True),
    )
    assert verdict("lock-manager", expired, auto_unlock_time=10.0) is OK
    refreshed = sequential(
        (("tryAcquire", "L", "A", 0.0), True),
        (("prolongate", "A", 8.0), None),
        (("tryAcquire", "L", "B", 12.0), False),
    )
    assert verdict("lock-manager", refreshed, auto_unlock_time=10.0) is OK
    wrongly_kept = sequential((("tryAcquire", "L", "A", 0.0), True), (("tryAcquire", "L", "B", 11.0), False))
    assert verdict("lock-manager", wrongly_kept, auto_unlock_time=10.0) is ILLEGAL


def test_locks_partition_per_lock_unless_a_refresh_touches_them_all() -> None:
    two_locks = sequential((("tryAcquire", "L1", "A", 0.0), True), (("tryAcquire", "L2", "B", 0.0), True))
    assert check(get_model("lock-manager"), two_locks).partitions == 2
    with_refresh = two_locks + sequential((("prolongate", "A", 1.0), None))[:0] + [
        Operation(5, "A", ("prolongate", "A", 1.0), None, 10, 11)
    ]
    assert check(get_model("lock-manager"), with_refresh).partitions == 1


# --- shared rules -----------------------------------------------------------------------------


def test_outputs_that_crossed_a_serializer_compare_equal() -> None:
    assert same_output(("error", "KeyError"), ["error", "KeyError"])
    assert same_output([("b", 3)], [["b", 3]])
    assert not same_output([1, 2], [2, 1])
    assert verdict("list", sequential((("pop",), ["error", "IndexError"]))) is OK


@pytest.mark.parametrize(
    ("name", "bad_input"),
    [
        ("counter", ("add",)),
        ("dict", ("set", "only-key")),
        ("list", ("frobnicate", 1)),
        ("set", "add"),
        ("queue", ("put",)),
        ("lock-manager", ("tryAcquire", "L")),
        ("cas-register", ("write",)),
        ("kv", ("get",)),
    ],
)
def test_an_input_the_model_does_not_know_is_a_model_error(name: str, bad_input: Any) -> None:
    with pytest.raises(ModelError):
        check(get_model(name), [Operation(0, "c", bad_input, None, 0, 1)])


def test_model_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        get_model("queue", maxsize=-1)
    with pytest.raises(ValueError, match="no model named"):
        get_model("btree")
    with pytest.raises(ValueError, match="does not take"):
        get_model("counter", maxsize=3)
