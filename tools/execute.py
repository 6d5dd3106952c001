"""Run notebooks top to bottom in a fresh kernel and write their outputs back (``make execute``).

Outputs are recorded exactly as the kernel produced them; only metadata that differs from
machine to machine (timings, the Python patch version, editor state) is dropped, so running
this twice leaves ``git status`` clean.

    python tools/execute.py                      # every notebook
    python tools/execute.py notebooks/03_*.ipynb  # some of them
"""

import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

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
    """Keep only kernelspec, language_info (without the version) and cell tags; merge split prints."""
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO})
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    return nb


def execute(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    path.write_text(nbformat.writes(normalise(nb)) + "\n", encoding="utf-8", newline="\n")
    return time.perf_counter() - start


def main(argv):
    paths = [pathlib.Path(p) for p in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        print(f"{path.name}: executed in {execute(path.resolve()):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
