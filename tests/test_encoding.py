"""syncobj.encoding: values round-trip exactly, deterministically, and bad values fail loudly."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import math
import os
import subprocess
import sys
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncobj.encoding import dumps, loads


def same(a: object, b: object) -> bool:
    """Equal values of identical types, recursively (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a) and all(
            type(x) is type(y) for x, y in zip(a, b))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, (dt.datetime, dt.time)):
        return a == b and a.tzinfo == b.tzinfo and a.fold == b.fold
    return a == b


hashable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8)
    | st.floats(allow_nan=False),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)

scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20) | st.binary(max_size=20)
    | st.complex_numbers(allow_nan=True) | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
    | st.dates() | st.times() | st.timedeltas() | st.decimals(allow_nan=True) | st.uuids()
)

values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(hashable, inner, max_size=4) | st.sets(hashable, max_size=4)
                   | st.frozensets(hashable, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_every_supported_value_round_trips_to_the_same_type_and_value(value: object) -> None:
    assert same(loads(dumps(value)), value)


@settings(max_examples=100, deadline=None)
@given(values)
def test_encoding_is_a_function_of_the_value(value: object) -> None:
    assert dumps(value) == dumps(loads(dumps(value)))


@pytest.mark.parametrize("value", [
    (), (1, [2, (3,)]), [(), []], {(1, 2): "t", 3: "i", "s": 4, b"b": 5, None: 6, frozenset({1}): 7},
    2**64, -(2**63) - 1, 2**64 - 1, -(2**63), 10**100, -(10**100),
    float("inf"), float("-inf"), -0.0, 1 + 2j, b"", "", set(), frozenset(),
    dt.datetime(2024, 2, 29, 12, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT")),
    dt.datetime(2021, 11, 7, 1, 30, fold=1), dt.time(23, 59, 59, 999999), decimal.Decimal("-0.000"),
    uuid.UUID(int=0),
], ids=repr)
def test_edge_values_round_trip(value: object) -> None:
    assert same(loads(dumps(value)), value)


def test_tuple_and_list_stay_apart_as_do_bytes_and_str() -> None:
    back = loads(dumps([(1,), [1], b"x", "x"]))
    assert [type(v) for v in back] == [tuple, list, bytes, str]


def test_bytearray_arrives_as_bytes_as_documented() -> None:
    assert loads(dumps(bytearray(b"ab"))) == b"ab"


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize("value, name", [
    (object(), "builtins.object"),
    (collections.OrderedDict(a=1), "collections.OrderedDict"),
    (Color.RED, "Color"),
    ([1, {"k": lambda: 0}], "builtins.function"),
    (dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).astimezone(dt.timezone(dt.timedelta(0))).replace(
        tzinfo=__import__("zoneinfo").ZoneInfo("UTC")), "ZoneInfo"),
])
def test_unsupported_values_raise_type_error_naming_the_type(value: object, name: str) -> None:
    with pytest.raises(TypeError, match=name):
        dumps(value)


@pytest.mark.parametrize("data", [b"\xc1", b"\xd4\x63\x00", b"\x92\x01", b"\xd5\x05\x00\x00"[:2], b"\x01\x02"])
def test_malformed_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a valid syncobj encoding"):
        loads(data)


def test_loads_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        loads("text")  # type: ignore[arg-type]


def test_set_encoding_does_not_depend_on_the_hash_seed() -> None:
    code = ("from syncobj.encoding import dumps; import sys; "
            "sys.stdout.write(dumps({'alpha', 'beta', 'gamma', 'delta', frozenset({'x', 'y', 'z'})}).hex())")
    outs = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        assert out.returncode == 0, out.stderr
        outs.add(out.stdout)
    assert len(outs) == 1
