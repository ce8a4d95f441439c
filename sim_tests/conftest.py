"""Hypothesis profiles for the simulation property tests.

`default` is derandomized (the same examples on every run, so CI is reproducible) and small
enough that the directory runs in about a minute on two cores.  `deep` explores: run
`HYPOTHESIS_PROFILE=deep python -m pytest sim_tests` for many random examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=20, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=500, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
