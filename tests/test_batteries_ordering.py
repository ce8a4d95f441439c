"""The order ReplSet.pop uses is the same whatever the insertion order and the process's hash seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from syncobj.batteries._canonical import canonical_key

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
                    st.binary(max_size=5), st.complex_numbers(allow_nan=False))
hashables = st.recursive(scalars, lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)),
                         max_leaves=6)


@settings(max_examples=100, deadline=None)
@given(st.lists(hashables, max_size=8), st.randoms(use_true_random=False))
def test_the_smallest_element_does_not_depend_on_insertion_order(values: list, rnd: object) -> None:
    items = list(set(values))
    if not items:
        return
    shuffled = items[:]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    first = min(items, key=canonical_key)
    again = min(set(shuffled), key=canonical_key)
    assert canonical_key(first) == canonical_key(again)
    assert repr(first) == repr(again)


def test_the_order_is_the_same_under_different_hash_seeds() -> None:
    script = ("from syncobj.batteries._canonical import canonical_key\n"
              "s = {'pear', 'apple', 'fig', ('t', 'u'), frozenset({'z', 'a', 'm'}), b'k', 3, 2.5, None}\n"
              "print(repr([canonical_key(x) for x in sorted(s, key=canonical_key)]))\n")
    root = str(Path(__file__).resolve().parent.parent)
    outputs = []
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=root)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].startswith("[(0, None), (1, (0, 2.5)), (1, (0, 3)), ")
