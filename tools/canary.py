"""Run the course on the newest releases and report which claims moved (``make canary``).

The newest torch, transformers, numpy and matplotlib run every notebook, and every library line the
notebooks quote is looked up in the newest release.

    python tools/canary.py                        # build or update .canary/venv, run every notebook there
    python tools/canary.py notebooks/04_*.ipynb   # some of the notebooks (the quotes are always checked)
    python tools/canary.py --no-update            # use .canary/venv as it is: no pip install

The environment (``.canary/venv``) holds the newest releases pip can install of the four libraries whose
behaviour the course teaches, and everything else at the version requirements.txt pins. Copies of the
notebooks run there, in a temporary folder, with the network off (as under ``make test``) and on past a
failing cell; the notebooks themselves are never written. ``canary-report.md`` lists, per notebook and
section:

- each cell whose ``assert`` failed (a claim that moved) and each cell that raised, with its message;
- apart from those, each compared cell whose output differs from the stored one (printed numbers or text;
  cells tagged nbval-ignore-output are not compared);
- each quoted line of trl, transformers and torch (the table in tools/quotes.py): unchanged, moved (to another
  line or file) or gone in the newest release, after a check that it reads as registered in the release
  it was read at.

Exit status 1 when an assert failed, a cell raised, a quoted line is gone or could not be checked, or the
table disagrees with the release it names; 0 when only printed output drifted or quoted lines moved.
"""

import argparse
import contextlib
import dataclasses
import datetime
import difflib
import importlib.metadata
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

import ipykernel.kernelspec
import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from traitlets import default

import execute
import install
from quotes import QUOTES

ROOT = execute.ROOT
ENV = ROOT / ".canary" / "venv"
SOURCES = ROOT / ".canary" / "sources"  # unpacked wheels of the quoted libraries
REPORT = ROOT / "canary-report.md"
OFFLINE = ROOT / "tests" / "offline"  # its sitecustomize.py turns the network off in every kernel
LATEST = ("torch", "transformers", "numpy", "matplotlib")  # at their newest releases; the rest as pinned
UNPINNED = ("huggingface-hub", "tokenizers", "safetensors")  # transformers' own dependencies, for the report
CELL_SECONDS = 600  # a generous limit per cell: the canary is not a benchmark
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


# --- The environment (run by the project's .venv, or any Python with nbformat) ----------------------------


def env_python(env=ENV):
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements(path=install.REQUIREMENTS, torch=None):
    """requirements.txt as pip arguments: the LATEST libraries without a version (pip takes the newest), the
    rest as pinned; ``torch``, when given, pins torch at the version already installed from the CPU index."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", line)[0]
        if canonical(name) == "torch" and torch:
            found.append(f"torch=={torch}")
        elif canonical(name) in LATEST:
            found.append(name)
        else:
            found.append(line)
    return found


def pip(python, *args):
    command = [str(python), "-m", "pip", "--disable-pip-version-check", *args]
    print("+ pip", " ".join(args), flush=True)
    return subprocess.run(command).returncode == 0


def installed_version(python, distribution):
    probe = "import importlib.metadata, sys; print(importlib.metadata.version(sys.argv[1]))"
    found = subprocess.run([str(python), "-c", probe, distribution], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


def build(env=ENV):
    """Create the canary's environment when it is missing and bring it to the newest releases. On Linux,
    torch comes from PyTorch's CPU wheel index when it answers (PyPI's Linux wheel is the CUDA build, several
    GB); where it does not, from PyPI, whose build runs on the CPU too."""
    python = env_python(env)
    if not python.exists():
        print(f"creating {env.relative_to(ROOT) if env.is_relative_to(ROOT) else env}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    torch = None
    if sys.platform.startswith("linux"):
        index = install.CPU_INDEX
        if not install.reachable(f"{index}/torch/"):
            print(f"note: {index} did not answer within {install.PROBE_SECONDS} s; the newest torch comes from PyPI")
        elif pip(python, "install", "--upgrade", "--no-compile", "--no-deps", "--index-url", index, "torch"):
            torch = installed_version(python, "torch")
    if not pip(python, "install", "--upgrade", "--no-compile", *requirements(torch=torch)):
        raise SystemExit("pip could not install the canary's environment (see its message above)")
    # As tools/install.py does: bytecode on every core, and matplotlib's font cache built before any notebook
    # runs (its notice on stderr would read as a drifted output).
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", purelib], stdout=subprocess.DEVNULL)
    subprocess.run([str(python), "-c", "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"])


# --- What the environment holds (run inside it) ------------------------------------------------------------


def version_of(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def pins(path=install.REQUIREMENTS):
    """{name: version} of requirements.txt's exact pins."""
    text = path.read_text(encoding="utf-8")
    return {canonical(name): version for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M)}


def versions():
    """Rows (name, pinned, here) for the report: the LATEST libraries, any pin that this environment does not
    hold, transformers' unpinned dependencies; and a line on the torch build."""
    pinned = pins()
    rows = [(name, pinned.get(name, "not pinned"), version_of(name)) for name in LATEST]
    rows += [(name, v, version_of(name)) for name, v in pinned.items() if name not in LATEST and version_of(name) != v]
    rows += [(name, "not pinned", version_of(name)) for name in UNPINNED]
    return rows, install.installed_torch().removeprefix("installed: ")


# --- Quoted lines ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Place:
    state: str  # "unchanged", "moved" or "gone"
    file: str = ""
    line: int = 0


def source_lines(path):
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]


def starts(lines, block):
    """The 1-based lines where ``block`` (stripped lines) begins in ``lines``."""
    n = len(block)
    return [i + 1 for i in range(len(lines) - n + 1) if lines[i] == block[0] and lines[i : i + n] == block]


def locate(quote, root):
    """Where ``quote``'s lines are in the source tree ``root`` (a site-packages folder or an unpacked wheel):
    unchanged at its line; moved, to the nearest place in its file where they all read the same, else to
    the first in another file of the package; or gone. Indentation is ignored, nothing else."""
    block, path = list(quote.text), root / quote.file
    if path.is_file():
        lines = source_lines(path)
        if lines[quote.line - 1 : quote.last] == block:
            return Place("unchanged", quote.file, quote.line)
        found = starts(lines, block)
        if found:
            return Place("moved", quote.file, min(found, key=lambda n: abs(n - quote.line)))
    package = root / quote.file.split("/")[0]
    for other in sorted(package.rglob("*.py")) if package.is_dir() else []:
        found = starts(source_lines(other), block) if other != path else []
        if found:
            return Place("moved", other.relative_to(root).as_posix(), found[0])
    return Place("gone")


def installed_tree(library):
    """(version, site-packages folder) of ``library`` in this environment, or None."""
    try:
        distribution = importlib.metadata.distribution(library)
    except importlib.metadata.PackageNotFoundError:
        return None
    return release(distribution.version), pathlib.Path(distribution.locate_file("")).resolve()


def release(version):
    """A version without its local label: torch's "2.13.0+cpu" is the release "2.13.0"."""
    return version.split("+")[0]


def wheel_tree(library, version=None, folder=SOURCES):
    """(version, folder) of ``library``'s wheel at ``version`` (the newest when None), downloaded without its
    dependencies and unpacked (its Python files) under ``folder``, once per version."""
    if version and (folder / f"{library}-{version}").is_dir():
        return version, folder / f"{library}-{version}"
    spec = f"{library}=={version}" if version else library
    with tempfile.TemporaryDirectory() as download:
        if not pip(sys.executable, "download", "--quiet", "--no-deps", "--only-binary", ":all:", "-d", download, spec):
            raise RuntimeError(f"pip could not download {spec}")
        wheel = next(pathlib.Path(download).glob("*.whl"), None)
        if wheel is None:
            raise RuntimeError(f"pip found no wheel of {spec}")
        got = wheel.name.split("-")[1]
        target = folder / f"{library}-{got}"
        if not target.is_dir():
            partial = folder / f"{library}-{got}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(partial, [name for name in archive.namelist() if name.endswith(".py")])
            partial.rename(target)
    return got, target


def read_at(library, version):
    """The source tree of the release the quotes were read at: installed here if it is that release."""
    here = installed_tree(library)
    return here if here and here[0] == version else wheel_tree(library, version)


def newest(library):
    """The newest source tree: the release installed here (the canary's environment takes the newest it can),
    else the newest wheel on the index."""
    return installed_tree(library) or wheel_tree(library)


@dataclasses.dataclass
class QuoteCheck:
    quote: object
    registered: Place  # in the release the quote names: "unchanged" when the table is right
    now: Place  # in the newest release
    version: str  # the newest release


def check_quotes(quotes=QUOTES, read_at=read_at, newest=newest):
    """Each quote located in the release it was read at and in the newest; and the libraries that could not
    be fetched, with the reason."""
    checks, failures, trees = [], {}, {}
    for quote in quotes:
        try:
            if (quote.library, quote.version) not in trees:
                trees[quote.library, quote.version] = read_at(quote.library, quote.version)
            if (quote.library, None) not in trees:
                trees[quote.library, None] = newest(quote.library)
        except (RuntimeError, OSError, zipfile.BadZipFile) as error:
            failures[quote.library] = str(error)
            continue
        version, latest = trees[quote.library, None]
        checks.append(
            QuoteCheck(quote, locate(quote, trees[quote.library, quote.version][1]), locate(quote, latest), version)
        )
    return checks, failures


# --- Notebooks ---------------------------------------------------------------------------------------------


class ThisPython(KernelSpecManager):
    """Every kernel is this interpreter, whatever kernels Jupyter has registered elsewhere: inside the canary's
    environment, the newest releases."""

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


class ThisPythonKernel(AsyncKernelManager):
    @default("kernel_spec_manager")
    def _this_python(self):
        return ThisPython(data_dir=self.data_dir)


@contextlib.contextmanager
def network_off():
    """As under `make test` (tests/conftest.py): every kernel, and every process it starts, runs offline."""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "LESSON_NETWORK_OFF")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OFFLINE), saved["PYTHONPATH"]]))
    os.environ["LESSON_NETWORK_OFF"] = "1"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_all(path):
    """Execute the notebook at ``path`` in a fresh kernel, on past failing cells; return the notebook and,
    if the run stopped early (a cell past the time limit, a dead kernel), (cell index, why)."""
    nb = nbformat.read(path, as_version=4)
    current = [0]
    with tempfile.TemporaryDirectory() as sockets:
        client = NotebookClient(
            nb,
            kernel_name="python3",
            kernel_manager_class=ThisPythonKernel,
            config=execute.kernel_config(sockets),
            timeout=CELL_SECONDS,
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
            record_timing=False,
            on_cell_execute=lambda cell, cell_index: current.__setitem__(0, cell_index),
        )
        try:
            client.execute()
            stopped = None
        except Exception as error:  # the run could not go on: say where and why, and report the rest
            stopped = (
                current[0],
                f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}",
            )
    return execute.normalise(nb), stopped


@dataclasses.dataclass
class Finding:
    kind: str  # "assert" (a claim moved), "raised", "stopped" (the run ended there) or "drift" (output only)
    notebook: str
    section: str
    cell: int
    message: str = ""  # the error's first line; for a drift, a note
    line: str = ""  # the cell's line that failed
    changes: list = dataclasses.field(default_factory=list)  # for a drift: what changed, line by line
    after_error: bool = False  # an earlier cell of the notebook had failed (this may follow from it)


def heading(markdown):
    """The last `## ` heading in a markdown cell, or None."""
    found = [line[3:].strip() for line in markdown.splitlines() if line.startswith("## ")]
    return found[-1] if found else None


def sanitizers(path=ROOT / "sanitize.cfg"):
    """The (regex, replacement) pairs nbval applies before comparing (sanitize.cfg)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [(re.compile(a), b) for a, b in re.findall(r"^regex: (.*)\nreplace: (.*)$", text, re.M)]


SANITIZERS = sanitizers()


def visible(cell):
    """What strict nbval compares in a cell, as lines: printed text (stderr marked), plain-text results, and
    a mark where a figure is (not its pixels), after sanitize.cfg's replacements."""
    lines = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            prefix, text = ("stderr: " if out.name == "stderr" else ""), out.text
        elif out.output_type in ("execute_result", "display_data"):
            prefix, text = "", "".join(out.data.get("text/plain", ""))
        else:
            continue
        for pattern, replacement in SANITIZERS:
            text = pattern.sub(replacement, text)
        lines += [prefix + line for line in text.splitlines()]
        lines += ["<a figure>"] if out.get("data", {}).get("image/png") else []
    return lines


def changed_lines(old, new, most=6):
    """What changed between two lists of lines, one short string per change."""
    found = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "replace":
            pairs = list(zip(old[a1:a2], new[b1:b2], strict=False))
            found += [f"{code(a)} → {code(b)}" for a, b in pairs]
            found += [f"{code(a)} (no longer printed)" for a in old[a1 + len(pairs) : a2]]
            found += [f"{code(b)} (new)" for b in new[b1 + len(pairs) : b2]]
        elif op == "delete":
            found += [f"{code(a)} (no longer printed)" for a in old[a1:a2]]
        elif op == "insert":
            found += [f"{code(b)} (new)" for b in new[b1:b2]]
    return found[:most] + ([f"… and {len(found) - most} more"] if len(found) > most else [])


def failing_line(error):
    """The cell's own line that the traceback points at (IPython marks it with an arrow)."""
    for line in ANSI.sub("", "\n".join(error.get("traceback", []))).splitlines():
        match = re.match(r"\s*-+>\s*\d+\s(.*)", line)
        if match:
            return match[1].strip()
    return ""


def error_message(error):
    value = str(error.get("evalue", "")).strip()
    first = value.splitlines()[0] if value else ""
    return f"{error.ename}: {first}"[:300] if first else error.ename


def findings(name, stored, new, stopped=None):
    """What the new run of notebook ``name`` shows against its stored outputs, cell by cell."""
    found, section, failed = [], "(before the first section)", False
    for i, (old, now) in enumerate(zip(stored.cells, new.cells, strict=False)):
        if old.cell_type == "markdown":
            section = heading(old.source) or section
        if old.cell_type != "code":
            continue
        if stopped and i == stopped[0]:
            found.append(Finding("stopped", name, section, i, f"{stopped[1]} (the cells below it did not run)"))
            break
        errors = [out for out in now.outputs if out.output_type == "error"]
        if errors:
            kind = "assert" if errors[0].ename == "AssertionError" else "raised"
            found.append(Finding(kind, name, section, i, error_message(errors[0]), failing_line(errors[0]), [], failed))
            failed = True
        elif execute.VARIES not in old.get("metadata", {}).get("tags", []) and visible(old) != visible(now):
            stderr = {line for line in visible(now) if line.startswith("stderr: ")} - set(visible(old))
            note = "new output on stderr, which fails this cell under strict nbval" if stderr else ""
            found.append(Finding("drift", name, section, i, note, changes=changed_lines(visible(old), visible(now))))
    return found


def assess(paths, progress=print):
    """Run copies of the notebooks at ``paths`` (their folders copied to a temporary one), offline, and compare
    each with its stored outputs; return the findings. The notebooks themselves are only read."""
    found = []
    with tempfile.TemporaryDirectory(prefix="lesson-canary-") as folder, network_off():
        copies = {}
        for parent in dict.fromkeys(path.parent for path in paths):
            copies[parent] = pathlib.Path(folder) / f"{len(copies)}" / parent.name
            ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
            shutil.copytree(parent, copies[parent], ignore=ignore)
        for path in paths:
            start = time.perf_counter()
            new, stopped = run_all(copies[path.parent] / path.name)
            mine = findings(path.name, nbformat.read(path, as_version=4), new, stopped)
            found += mine
            counts = ", ".join(f"{sum(f.kind == k for f in mine)} {k}" for k in ("assert", "raised", "drift"))
            progress(f"{path.name}: {counts} ({time.perf_counter() - start:.1f} s)")
    return found


# --- The report ----------------------------------------------------------------------------------------------


def code(text):
    """``text`` as a Markdown code span, whatever backticks it holds."""
    text = text.replace("\n", " ").replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks} {text} {ticks}" if text.startswith("`") or text.endswith("`") else f"{ticks}{text}{ticks}"


def exit_status(found, checks, failures):
    """1 when a claim moved (a failed assert), a cell raised or stopped the run, or a quoted line is gone, could
    not be checked, or is not as registered in the release it names; else 0."""
    claims = any(f.kind != "drift" for f in found)
    quotes = failures or any(c.registered.state != "unchanged" or c.now.state == "gone" for c in checks)
    return 1 if claims or quotes else 0


def where(place, quote):
    if place.state == "unchanged":
        return "unchanged"
    if place.state == "gone":
        return "**gone**: not in the file, nor elsewhere in the package"
    span = place.line + len(quote.text) - 1
    lines = f"line {place.line}" if span == place.line else f"lines {place.line}–{span}"
    return f"moved to {lines}" if place.file == quote.file else f"moved to `{place.file}`, {lines}"


def quote_section(checks, failures):
    out = ["## Quoted source lines", ""]
    out += [
        "Each line of a library that a notebook cites (tools/quotes.py), looked up in the newest release: "
        "unchanged, moved (the same text at another line or in another file) or gone. Indentation aside, "
        "the text must read exactly as registered. A quote cited by file only names no line, so its move "
        "changes no sentence.",
        "",
    ]
    for library, reason in failures.items():
        out += [f"- **{library}: not checked**: {reason}", ""]
    for library in dict.fromkeys(c.quote.library for c in checks):
        mine = [c for c in checks if c.quote.library == library]
        read = ", ".join(sorted({c.quote.version for c in mine}))
        states = {s: sum(c.now.state == s for c in mine) for s in ("unchanged", "moved", "gone")}
        summary = ", ".join(f"{n} {s}" for s, n in states.items())
        out += [f"### {library}: read at {read}, checked in {mine[0].version} ({summary})", ""]
        wrong = [c for c in mine if c.registered.state != "unchanged"]
        for c in wrong:
            q = c.quote
            out.append(f"- **not as registered** in {q.library} {q.version}: `{q.file}`, {q.lines} ({q.notebook})")
        out += [""] if wrong else []
        out += ["| notebook | file | cited | in the newest |", "|---|---|---|---|"]
        for c in mine:
            q = c.quote
            cited = q.lines if q.cited == "line" else f"file only ({q.lines})"
            out.append(f"| {q.notebook} | `{q.file}` | {cited} | {where(c.now, q)} |")
        out.append("")
    return out


def finding_lines(found, kind):
    out = []
    for f in (f for f in found if f.kind in kind):
        place = f"**{f.notebook}**, § {f.section}, cell {f.cell}"
        if f.kind == "drift":
            out.append(f"- {place}{' (' + f.message + ')' if f.message else ''}:")
            out += [f"  - {change}" for change in f.changes]
        else:
            at = f" at {code(f.line)}" if f.line else ""
            later = " (after an earlier failure in this notebook)" if f.after_error else ""
            out.append(f"- {place}{at}: {code(f.message)}{later}")
    return out or ["None."]


def many(n, thing):
    return f"{n} {thing}{'' if n == 1 else 's'}"


def report(found, checks, failures, rows, torch_build, notebooks, seconds):
    """The report as Markdown."""
    status = exit_status(found, checks, failures)
    count = {k: sum(f.kind == k for f in found) for k in ("assert", "raised", "stopped", "drift")}
    gone = sum(c.now.state == "gone" for c in checks)
    moved = sum(c.now.state == "moved" for c in checks)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ran = many(len(notebooks), "notebook")
    out = [
        "# Canary: the course on the newest releases",
        "",
        f"{now}, Python {platform.python_version()} on {platform.system()}; {ran} run offline in {seconds:.0f} s, "
        "compared with their stored outputs (made with the pinned versions).",
        "",
        f"**{many(count['assert'], 'claim')} moved (failed asserts), "
        f"{many(count['raised'] + count['stopped'], 'cell')} raised, {many(count['drift'], 'output')} drifted; "
        f"quoted lines: {moved} moved, {gone} gone"
        f"{', ' + str(len(failures)) + ' libraries not checked' if failures else ''}. Exit status {status}.**",
        "",
        "## Versions",
        "",
        "| package | pinned | here |",
        "|---|---|---|",
        *(f"| {name} | {pinned} | {here or 'not installed'} |" for name, pinned, here in rows),
        "",
        f"Everything else in requirements.txt as pinned. torch: {torch_build}.",
        "",
        "## Claims that moved: failed asserts",
        "",
        *finding_lines(found, {"assert"}),
        "",
        "## Cells that raised",
        "",
        *finding_lines(found, {"raised", "stopped"}),
        "",
        "## Outputs that drifted (printed numbers or text; no assert failed)",
        "",
        "Cells tagged nbval-ignore-output are not compared.",
        "",
        *finding_lines(found, {"drift"}),
        "",
        *quote_section(checks, failures),
        "## What to do",
        "",
        "See CONTRIBUTING.md, *Read a canary report*: re-date the claim, add the new behaviour, or raise the pin.",
        "",
    ]
    return "\n".join(out)


def inside(args):
    """The canary proper, run by the canary environment's Python."""
    start = time.perf_counter()
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows, torch_build = versions()
    for name, pinned, here in rows[: len(LATEST)]:
        print(f"{name}: {here} (pinned {pinned})", flush=True)
    checks, failures = check_quotes()
    found = assess(paths, progress=lambda line: print(line, flush=True))
    seconds = time.perf_counter() - start
    args.report.write_text(report(found, checks, failures, rows, torch_build, paths, seconds), encoding="utf-8")
    status = exit_status(found, checks, failures)
    print(f"wrote {args.report.name}: exit status {status}", flush=True)
    return status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--env", type=pathlib.Path, default=ENV, help="the canary's environment (default .canary/venv)")
    parser.add_argument("--report", type=pathlib.Path, default=REPORT, help="where to write the report")
    parser.add_argument("--no-update", action="store_true", help="use the environment as it is, without pip")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # already in the environment
    args = parser.parse_args(argv)
    if args.inside:
        return inside(args)
    args.env = args.env.resolve()
    if not args.no_update:
        build(args.env)
    elif not env_python(args.env).exists():
        raise SystemExit(f"no environment at {args.env}: run without --no-update to build it")
    passed = [*map(str, args.notebooks), "--report", str(args.report.resolve()), "--inside"]
    return subprocess.run([str(env_python(args.env)), __file__, *passed]).returncode


if __name__ == "__main__":
    sys.exit(main())
