"""Hypothesis profiles for the property tests: a short default run and a long one.

    pytest tests/test_properties.py                                    # default, a few seconds
    MINIGRAD_HYPOTHESIS_PROFILE=long pytest tests/test_properties.py   # >= 5,000 examples

The profile is applied per test (`@settings(PROFILE, ...)`), not loaded globally, so
importing this module changes nothing for other test files.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILES = {
    # ~300 examples over all property tests: a few seconds on one shared core.
    "default": dict(max_examples=200, deadline=None, print_blob=True),
    # >= 5,000 examples over all property tests (the composition test alone runs 5,000).
    "long": dict(
        max_examples=5000,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    ),
}
for _name, _options in PROFILES.items():
    settings.register_profile(f"minigrad-{_name}", **_options)

NAME = os.environ.get("MINIGRAD_HYPOTHESIS_PROFILE", "default")
if NAME not in PROFILES:
    raise ValueError(
        f"MINIGRAD_HYPOTHESIS_PROFILE={NAME!r} is not a profile; expected one of {sorted(PROFILES)}"
    )
PROFILE = settings.get_profile(f"minigrad-{NAME}")


def examples(fraction: float) -> int:
    """A share of the profile's example budget, for tests that need fewer examples."""
    return max(10, int(PROFILE.max_examples * fraction))
