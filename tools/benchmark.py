"""Measure the course against its budgets (CONTRIBUTING.md, "Budgets"): ``make benchmark``.

The budgets, on a quiet 2-core machine:
- **the floor**: every notebook executed once by nbclient, two at a time, in this same run: the
  irreducible work of checking them (a kernel per notebook, its imports, its cells);
- **make test** (ruff and pytest, ``.venv`` ready): within 1.3 x the floor;
- **each notebook**: executes in under 10 s (its time inside the floor's run);
- **a fresh clone to a passing make test**: under 90 s (``git clone``, then ``make test``, which builds
  ``.venv``; pip's cache and local wheels make the install fast, as on the machine CI uses).

Each figure is the median of ``--repeat`` runs (the fresh clone: one run; ``--no-clone`` skips it).
A benchmark, not a test: it never fails a build, but marks each figure OVER where its budget is not held.
Measure on a quiet machine: beside a second suite the same run took three to six times longer.
"""

import argparse
import multiprocessing
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WORKERS = 2  # pytest -n 2, from pyproject.toml: the floor runs as many notebooks at once
RATIO, NOTEBOOK_SECONDS, CLONE_SECONDS = 1.3, 10.0, 90.0
# The notebooks' kernels run as under `make test`: with the network off (tests/conftest.py sets the same).
OFFLINE = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests" / "offline"), os.environ.get("PYTHONPATH")]))}


def execute_one(path):
    """Execute one notebook in a fresh kernel (nbclient, as tools/execute.py does); return its seconds."""
    from execute import run  # tools/execute.py, beside this file

    os.environ.update(OFFLINE, LESSON_NETWORK_OFF="1")
    return run(path)[1]


def floor():
    """Every notebook once, two at a time: (the wall time of the whole, {notebook: its own seconds})."""
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(WORKERS, maxtasksperchild=1) as pool:
        seconds = pool.map(execute_one, NOTEBOOKS, chunksize=1)
    return time.perf_counter() - start, dict(zip((p.name for p in NOTEBOOKS), seconds, strict=True))


def timed(command, cwd=ROOT):
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def fresh_clone():
    """Seconds from `git clone` of this repository's HEAD to a passing `make test` in the clone."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run(["git", "clone", "-q", str(ROOT), folder], check=True)
        subprocess.run(["make", "test"], cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def verdict(value, budget):
    return f"(budget {budget:.1f} s{'' if value <= budget else ', OVER'})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is printed")
    parser.add_argument("--no-clone", action="store_true", help="skip the fresh clone (it rebuilds a .venv)")
    args = parser.parse_args(argv)
    floors, per_notebook, suites = [], {path.name: [] for path in NOTEBOOKS}, []
    for _ in range(args.repeat):  # interleaved, so that a slow minute of the machine weighs on both alike
        wall, each = floor()
        floors.append(wall)
        for name, seconds in each.items():
            per_notebook[name].append(seconds)
        suites.append(timed(["make", "test"]))
    base, suite = statistics.median(floors), statistics.median(suites)
    print(f"floor: every notebook once by nbclient, {WORKERS} at a time: {base:.1f} s")
    for name, seconds in per_notebook.items():
        value = statistics.median(seconds)
        print(f"  {name}: {value:.1f} s {verdict(value, NOTEBOOK_SECONDS)}")
    print(f"make test (ruff and pytest, .venv ready): {suite:.1f} s = {suite / base:.2f} x the floor "
          f"{verdict(suite, RATIO * base)}")  # fmt: skip
    if not args.no_clone:
        clone = fresh_clone()
        print(f"fresh clone to a passing make test: {clone:.1f} s {verdict(clone, CLONE_SECONDS)}")


if __name__ == "__main__":
    main()
