"""Run notebooks top to bottom in a fresh kernel and write their outputs back (``make execute``).

Outputs are recorded exactly as the kernel produced them; only metadata that differs from
machine to machine (timings, the Python patch version, editor state) is dropped, so running
this twice leaves ``git status`` clean. A notebook whose new outputs differ from the stored ones
only in cells tagged ``nbval-ignore-output`` (timings) is left as it is.

    python tools/execute.py                      # every notebook
    python tools/execute.py notebooks/03_*.ipynb  # some of them
    python tools/execute.py --force              # store every output, tagged cells too (figures restyled)
    python tools/execute.py --check              # run copies elsewhere, with another CPU's kernels
                                                 # (ATEN_CPU_CAPABILITY=default); fail if an output differs
"""

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
VARIES = "nbval-ignore-output"  # the tag of cells whose output may change from run to run


def merge_streams(outputs):
    """Join consecutive prints to the same stream: how the kernel chunks them varies run to run."""
    merged = []
    for out in outputs:
        if out.output_type == "stream" and merged and merged[-1].get("name") == out.name:
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


def normalise(nb):
    """Keep only kernelspec, language_info (without the version), cell tags and the set-up cell's collapsed
    view (``jupyter.source_hidden``, written by tools/navigation.py); merge split prints."""
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO})
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        kept = {"tags": tags} if tags else {}
        if tags and "lesson-colab" in tags and "jupyter" in cell.metadata:
            kept["jupyter"] = cell.metadata["jupyter"]
        cell.metadata = nbformat.from_dict(kept)
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    return nb


def kernel_config(folder):
    """Talk to the kernel over local sockets in ``folder``, not TCP (which warns on stderr); TCP on Windows."""
    if os.name == "nt":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(pathlib.Path(folder) / "kernel")}})


def run(path):
    """Execute the notebook at ``path`` in a fresh kernel started in its folder; return (notebook, seconds)."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as sockets:
        client = NotebookClient(
            nb,
            kernel_name="python3",
            config=kernel_config(sockets),
            timeout=300,
            resources={"metadata": {"path": str(path.parent)}},
            record_timing=False,
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    return normalise(nb), seconds


def text(nb):
    return nbformat.writes(nb) + "\n"


def without_varying_outputs(nb):
    """The notebook's text with the outputs of cells tagged nbval-ignore-output left out."""
    copy = nbformat.from_dict(nb)
    for cell in copy.cells:
        if cell.cell_type == "code" and VARIES in cell.get("metadata", {}).get("tags", []):
            cell.outputs = []
    return text(copy)


def execute(path, force=False):
    """Run one notebook and store its outputs, unless only run-to-run outputs changed (or ``force``: store
    them all, as after a change of style that must redraw the figures of tagged cells); return seconds."""
    nb, seconds = run(path)
    stored = nbformat.read(path, as_version=4)
    changed = without_varying_outputs(nb) != without_varying_outputs(stored)
    if text(nb) != path.read_text(encoding="utf-8") and (changed or force):
        path.write_text(text(nb), encoding="utf-8", newline="\n")
    return seconds


# What another machine changes, played here: torch picks its CPU kernels by the processor's vector
# instructions (AVX-512, AVX2, or none), and kernels of another width sum floats in another order. Forcing
# the plain kernels shows, on one machine, the last-digit drift that another CPU would give.
ANOTHER_CPU = {"ATEN_CPU_CAPABILITY": "default"}


def check(paths):
    """Execute copies of the notebooks in a folder elsewhere, with another CPU's kernels; return the names
    whose outputs differ outside cells tagged nbval-ignore-output."""
    differs = []
    saved = {name: os.environ.get(name) for name in ANOTHER_CPU}
    os.environ.update(ANOTHER_CPU)  # the kernels inherit it
    try:
        differs = compare_copies(paths)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return differs


def shown(cell):
    """What a compared cell shows as text (printed lines, plain-text results), and whether it drew a figure."""
    lines = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        lines += "".join(out.get("text", "") or data.get("text/plain", "")).splitlines()
        lines += ["<a figure>"] if "image/png" in data else []
    return lines


def first_differences(stored, new, most=6):
    """Up to ``most`` lines that say which compared cells differ, and how."""
    found = []
    for i, (old, now) in enumerate(zip(stored.cells, new.cells, strict=False)):
        if old.cell_type != "code" or VARIES in old.get("metadata", {}).get("tags", []) or old.outputs == now.outputs:
            continue
        pairs = [(a, b) for a, b in zip(shown(old), shown(now), strict=False) if a != b] or [("<same text>", "")]
        found += [
            f"cell {i}: {a!r} -> {b!r}" if b else f"cell {i}: a figure or another output differs" for a, b in pairs
        ]
    return found[:most]


def compare_copies(paths):
    differs = []
    with tempfile.TemporaryDirectory(prefix="lesson-copy-") as folder:
        copy = pathlib.Path(folder) / "notebooks"
        shutil.copytree(ROOT / "notebooks", copy, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        for path in paths:
            nb, seconds = run(copy / path.name)
            stored = path.read_text(encoding="utf-8")
            same = text(nb) == stored
            same_but_timings = without_varying_outputs(nb) == without_varying_outputs(nbformat.reads(stored, 4))
            verdict = "identical" if same else f"same but for {VARIES} cells" if same_but_timings else "DIFFERS"
            print(f"{path.name}: {verdict} ({seconds:.1f} s, run in {copy})", flush=True)
            if not same_but_timings:
                differs.append(path.name)
                for line in first_differences(nbformat.reads(stored, 4), nb):
                    print(f"  {line}", flush=True)
    return differs


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--check", action="store_true", help="execute copies elsewhere and compare; write nothing")
    parser.add_argument("--force", action="store_true", help="store new outputs even if only tagged cells changed")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.check:
        differs = check(paths)
        if differs:
            sys.exit(f"outputs differ when run at another path with another CPU's kernels: {', '.join(differs)}")
        return
    for path in paths:
        print(f"{path.name}: executed in {execute(path, force=args.force):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
