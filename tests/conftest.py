"""Shared test settings: a fixed, derandomized hypothesis profile, so every run does the same work, and
no network for anything the tests start (the notebooks' kernels and the DDP ranks)."""

import os
import pathlib

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=80)
# HYPOTHESIS_PROFILE=explore searches more (and randomly) when you change the reference loss.
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Every process the tests start inherits this environment: tests/offline/sitecustomize.py then refuses
# any connection to another machine, so strict nbval proves the notebooks run offline.
OFFLINE = str(pathlib.Path(__file__).resolve().parent / "offline")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [OFFLINE, os.environ.get("PYTHONPATH")]))
os.environ["LESSON_NETWORK_OFF"] = "1"
