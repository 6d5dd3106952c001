"""Shared test settings: a fixed, derandomized hypothesis profile, so every run does the same work."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=80)
# HYPOTHESIS_PROFILE=explore searches more (and randomly) when you change the reference loss.
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
