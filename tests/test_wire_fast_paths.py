"""The written-out wire paths of the replication messages agree with the general ones.

`to_wire` and `from_wire` take a short path for AppendEntries and AppendEntriesResponse (every
message a busy cluster sends is one of them); for any input, valid or not, the answer must be
the one the field-by-field code gives — the same message, or the same `InvalidMessage`.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syncobj.kernel import AppendEntries, AppendEntriesResponse, Entry, EntryKind, InvalidMessage
from syncobj.kernel.messages import _from_wire_checked, _to_wire_fields, entry_to_wire, from_wire, to_wire

# Values a field may be replaced by: each wrong for some field (negative, bool for int and the
# reverse, float, None, bytes, str, list, beyond 64 bits) and some right.
FIELD = st.sampled_from([-1, -3, 0, 1, 7, True, False, None, 1.5, float("inf"), b"x", "s", [], 2**64])

ENTRY = st.builds(Entry, st.integers(0, 2**40), st.integers(0, 2**20), st.sampled_from(list(EntryKind)),
                  st.binary(max_size=16), st.text(max_size=4), st.integers(-2**62, 2**62),
                  st.floats(min_value=0, max_value=1e9))


def outcome(decode, obj):
    try:
        return ("ok", decode(obj))
    except InvalidMessage as exc:
        return ("invalid", str(exc))


@settings(max_examples=300, deadline=None)
@given(st.builds(AppendEntries, st.integers(0, 2**40), st.integers(0, 2**40), st.integers(0, 2**40),
                 st.lists(ENTRY, max_size=3).map(tuple), st.integers(0, 2**40), st.integers(0, 2**40)))
def test_append_entries_encode_like_every_other_message_and_come_back(msg):
    assert to_wire(msg) == _to_wire_fields(msg)
    assert from_wire(to_wire(msg)) == msg


@settings(max_examples=300, deadline=None)
@given(st.builds(AppendEntriesResponse, st.integers(0, 2**40), st.booleans(), st.integers(0, 2**40),
                 st.integers(0, 2**40)))
def test_append_responses_encode_like_every_other_message_and_come_back(msg):
    assert to_wire(msg) == _to_wire_fields(msg)
    assert from_wire(to_wire(msg)) == msg


AE = st.builds(AppendEntries, st.integers(0, 2**40), st.integers(0, 2**40), st.integers(0, 2**40),
               st.lists(ENTRY, max_size=3).map(tuple), st.integers(0, 2**40), st.integers(0, 2**40))
AER = st.builds(AppendEntriesResponse, st.integers(0, 2**40), st.booleans(), st.integers(0, 2**40),
                st.integers(0, 2**40))


def mutate(obj: list, data) -> list | tuple:
    how = data.draw(st.sampled_from(["field", "field", "field", "entry", "cut", "extend", "tuple"]))
    if how == "field":
        obj[data.draw(st.integers(0, len(obj) - 1))] = data.draw(FIELD)
    elif how == "entry" and obj[0] == 5 and obj[4]:
        obj[4][0][data.draw(st.integers(0, 6))] = data.draw(FIELD)
    elif how == "cut":
        return obj[:-1]
    elif how == "extend":
        return obj + [data.draw(FIELD)]
    elif how == "tuple":
        return tuple(obj)
    return obj


@settings(max_examples=600, deadline=None)
@given(AE, st.data())
def test_any_mutation_of_an_append_gets_the_general_answer(msg, data):
    obj = mutate(to_wire(msg), data)
    assert outcome(from_wire, obj) == outcome(_from_wire_checked, obj)


@settings(max_examples=600, deadline=None)
@given(AER, st.data())
def test_any_mutation_of_an_append_response_gets_the_general_answer(msg, data):
    obj = mutate(to_wire(msg), data)
    assert outcome(from_wire, obj) == outcome(_from_wire_checked, obj)
