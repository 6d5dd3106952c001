"""Measure the test suite against its budgets (CONTRIBUTING.md, "Budgets"): ``make benchmark``.

Prints, in seconds:
- the floor: one nbval run of an empty notebook that only starts a kernel and imports torch
  and matplotlib, times the number of notebooks, divided by the cores pytest uses;
- each notebook's execution time in a fresh kernel (budget: 10 s; 05 and 07: 20 s);
- the wall time of the whole pytest run (budget: 60 s, and within 1.5x of the floor).
Each figure is the median of ``--repeat`` runs. A benchmark, not a test: it never fails a build.
"""

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

from execute import kernel_config, run

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WORKERS = 2  # pytest -n 2, from pyproject.toml


def timed(command):
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def empty_notebook_nbval(folder):
    path = pathlib.Path(folder) / "empty.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nimport torch")]
    NotebookClient(nb, kernel_name="python3", config=kernel_config(folder)).execute()
    nbformat.write(nb, path)
    options = ["-o", "addopts=", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env", "-q"]
    return timed([sys.executable, "-m", "pytest", *options, str(path)])


def notebook_execution(path):
    return run(path)[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    median = lambda f: statistics.median(f() for _ in range(args.repeat))  # noqa: E731

    with tempfile.TemporaryDirectory() as folder:
        one = median(lambda: empty_notebook_nbval(folder))
    floor = one * len(NOTEBOOKS) / WORKERS
    print(f"empty notebook under nbval (kernel + torch + matplotlib): {one:.1f} s")
    print(f"floor = {one:.1f} s x {len(NOTEBOOKS)} notebooks / {WORKERS} workers = {floor:.1f} s")
    for path in NOTEBOOKS:
        budget = 20 if path.name[:2] in ("05", "07") else 10
        print(f"  {path.name}: executes in {median(lambda p=path: notebook_execution(p)):.1f} s (budget {budget} s)")
    suite = median(lambda: timed([sys.executable, "-m", "pytest", "-q"]))
    print(f"pytest, whole suite: {suite:.1f} s (budget: 60 s and 1.5 x floor = {1.5 * floor:.1f} s)")


if __name__ == "__main__":
    main()
