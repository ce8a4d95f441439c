"""The HTML timeline: nodes' roles, downtime, partitions, and client calls with the illegal ones marked."""

from __future__ import annotations

from syncobj.io_sim.timeline import render

TRACE = [
    {"t": 0.0, "k": "run", "seed": 1},
    {"t": 0.0, "k": "start", "n": "n1", "incarnation": 1},
    {"t": 0.0, "k": "start", "n": "n2", "incarnation": 1},
    {"t": 0.3, "k": "role", "n": "n1", "role": "LEADER", "term": 2},
    {"t": 0.3, "k": "role", "n": "n2", "role": "FOLLOWER", "term": 2},
    {"t": 0.5, "k": "call", "n": "n2", "c": "c1", "op": 1, "obj": "counter", "f": "('inc',)"},
    {"t": 0.6, "k": "ret", "n": "n2", "c": "c1", "op": 1, "o": "ok", "why": "SUCCESS", "v": "1"},
    {"t": 0.7, "k": "call", "n": "n1", "c": "c2", "op": 2, "obj": "counter", "f": "('get',)"},
    {"t": 0.8, "k": "partition", "groups": [["n1"], ["n2"]]},
    {"t": 1.0, "k": "crash", "n": "n2", "reason": "fault", "torn": False},
    {"t": 1.2, "k": "ret", "n": "n1", "c": "c2", "op": 2, "o": "ok", "why": "local", "v": "0"},
    {"t": 1.5, "k": "start", "n": "n2", "incarnation": 2},
    {"t": 1.6, "k": "heal"},
    {"t": 2.0, "k": "illegal", "obj": "counter", "ops": [2]},
]


def test_the_page_shows_roles_downtime_partitions_and_marks_illegal_calls():
    page = render(TRACE, title="t", summary=["seed 1: FAIL"])
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page
    assert "leader term 2 0.300s" in page  # role bars carry their term and span
    assert "n2 down 1.000s - 1.500s" in page
    assert "partition n1 | n2" in page
    assert page.count('class="op bad"') == 1  # op 2, the one the checker could not place
    assert "op 1 c1 on n2: counter.(&#x27;inc&#x27;,) [0.500s - 0.600s] ok SUCCESS 1" in page


def test_an_unanswered_call_is_drawn_to_the_end_of_the_run():
    trace = TRACE[:8] + [{"t": 3.0, "k": "settled"}]
    page = render(trace)
    assert "[0.700s - never]" in page and page.count('class="op bad"') == 0
