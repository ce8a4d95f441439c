"""The simulated network: latency, drops, duplicates, reordering, partition shapes, wire round-trips."""

from __future__ import annotations

import random

import pytest

from syncobj.kernel import Entry
from syncobj.kernel.messages import AppendEntries, AppendEntriesResponse
from syncobj.io_sim import network as net
from syncobj.io_sim.network import LinkProfile, Network, NetworkConfig
from syncobj.io_sim.violation import InvariantViolation

NODES = ["n1", "n2", "n3", "n4", "n5"]


def network(**profile):
    return Network(NetworkConfig(default=LinkProfile(**profile), wire_check_every=1), random.Random(7))


def reach(n: Network) -> set[tuple[str, str]]:
    return {(a, b) for a in NODES for b in NODES if a != b and n.connected(a, b)}


def test_delays_stay_within_the_link_latency():
    n = network(latency_min=0.002, latency_max=0.004)
    for _ in range(200):
        _, delays = n.plan("n1", "n2", "m")
        assert len(delays) == 1 and 0.002 <= delays[0] <= 0.004


def test_a_link_that_drops_everything_delivers_nothing_and_counts_it():
    n = network(drop=1.0)
    assert all(n.plan("n1", "n2", i)[1] == [] for i in range(50))
    assert n.dropped == 50


def test_a_link_that_duplicates_everything_delivers_two_copies():
    n = network(duplicate=1.0)
    assert all(len(n.plan("n1", "n2", i)[1]) == 2 for i in range(50))


def test_reordering_lets_later_messages_overtake_earlier_ones():
    n = network(latency_min=0.001, latency_max=0.001, reorder=0.5, reorder_delay=0.1)
    arrivals = [(k * 0.001 + n.plan("n1", "n2", k)[1][0], k) for k in range(100)]
    order = [k for _, k in sorted(arrivals)]
    assert order != sorted(order)
    assert n.reordered > 0


def test_halves_split_the_cluster_into_two_sides_that_cannot_talk():
    n = network()
    a, b = net.halves(NODES, random.Random(1))
    n.partition([a, b])
    assert sorted(a + b) == NODES and abs(len(a) - len(b)) == 1
    assert reach(n) == {(x, y) for side in (a, b) for x in side for y in side if x != y}


def test_a_majority_minority_split_leaves_a_strict_majority_on_one_side():
    for seed in range(10):
        minority, majority = net.majority_minority(NODES, random.Random(seed))
        assert 1 <= len(minority) < len(majority) and sorted(minority + majority) == NODES


def test_a_bridge_node_talks_to_both_sides_that_cannot_talk_to_each_other():
    n = network()
    left, right = net.bridge(NODES, random.Random(3))
    (bridge,) = set(left) & set(right)
    n.partition([left, right])
    for x in NODES:
        if x != bridge:
            assert n.connected(bridge, x) and n.connected(x, bridge)
    for x in set(left) - {bridge}:
        for y in set(right) - {bridge}:
            assert not n.connected(x, y)


def test_a_ring_connects_each_node_to_exactly_its_two_neighbours():
    n = network()
    n.partition(net.ring(NODES, random.Random(4)))
    for x in NODES:
        assert len([y for y in NODES if y != x and n.connected(x, y)]) == 2


def test_isolating_one_node_cuts_it_off_both_ways():
    n = network()
    n.partition(net.isolate_one(NODES, "n3"))
    assert not any(n.connected("n3", x) or n.connected(x, "n3") for x in NODES if x != "n3")
    assert n.connected("n1", "n2")


def test_a_one_way_block_cuts_one_direction_only_and_heal_restores_everything():
    n = network()
    n.one_way_block("n1", "n2")
    assert not n.connected("n1", "n2") and n.connected("n2", "n1")
    assert n.plan("n1", "n2", "m")[1] == [] and n.cut == 1
    n.partition([["n1"], ["n2", "n3", "n4", "n5"]])
    n.heal()
    assert len(reach(n)) == len(NODES) * (len(NODES) - 1)


def test_a_node_in_no_group_is_cut_off():
    n = network()
    n.partition([["n1", "n2"]])
    assert n.connected("n1", "n2") and not n.connected("n1", "n3") and not n.connected("n4", "n5")


def test_kernel_messages_are_delivered_as_their_decoded_wire_form():
    n = network()
    msg = AppendEntries(3, 1, 2, (Entry(2, 3, data=b"x", origin="n1", token=5, time=1.5),), 1)
    out, _ = n.plan("n1", "n2", msg)
    assert out == msg and out is not msg and n.wire_checked == 1
    plain, _ = n.plan("n1", "n2", "not a kernel message")
    assert plain == "not a kernel message" and n.wire_checked == 1


def test_a_message_that_does_not_survive_encoding_is_a_violation():
    n = network()
    broken = AppendEntries(3, 1, 2, [Entry(2, 3)], 1)  # a list where the type says tuple
    with pytest.raises(InvariantViolation, match="wire_round_trip"):
        n.plan("n1", "n2", broken)


def test_sampled_wire_checks_run_one_in_n():
    n = Network(NetworkConfig(wire_check_every=4), random.Random(1))
    for _ in range(12):
        n.plan("n1", "n2", AppendEntriesResponse(1, True, 3))
    assert n.wire_checked == 3


def test_bad_link_profiles_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="drop must be a probability"):
        LinkProfile(drop=1.5)
    with pytest.raises(ValueError, match="latency_min"):
        LinkProfile(latency_min=0.5, latency_max=0.1)
    with pytest.raises(ValueError, match="empty"):
        network().partition([["n1"], []])
