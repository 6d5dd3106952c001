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

# pytest-xdist (--dist loadscope) hands each worker whole files, in collection order. Starting with the files
# that take longest keeps both workers busy to the end instead of leaving one alone with a long file: an
# order only, which no test depends on. Measured with `pytest --durations=0` on a quiet 2-core machine.
LONGEST_FIRST = [
    "tests/test_ddp_worker.py",
    "tests/test_parallel_worker.py",
    "notebooks/07_masked_loss_at_scale.ipynb",
    "notebooks/05_training_with_masks.ipynb",
    "notebooks/10_masks_in_rl_finetuning.ipynb",
    "tests/test_launch.py",
    "notebooks/11_masks_across_parallel_dimensions.ipynb",
    "notebooks/09_debugging_masks.ipynb",
    "notebooks/08_masks_beyond_next_token.ipynb",
    "notebooks/06_masks_in_transformers.ipynb",
]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    root = pathlib.Path(str(config.rootpath))

    def position(item):
        path = pathlib.Path(str(item.path)).resolve().relative_to(root).as_posix()
        return rank.get(path, len(LONGEST_FIRST))

    items.sort(key=position)  # stable: the rest keep their order
