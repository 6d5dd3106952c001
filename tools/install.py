"""Install the lesson's requirements into the running interpreter's environment (``make`` calls it).

    python tools/install.py              # on Linux, torch's CPU build (about 1.3 GB less to download)
    python tools/install.py --torch cuda  # PyPI's default torch wheel: on Linux, the CUDA build

On Linux, PyPI's torch wheel is the CUDA build, with several GB of NVIDIA libraries. The lesson
needs only the CPU, so by default torch alone comes from PyTorch's CPU wheel index, at the
version requirements.txt pins; everything else comes from PyPI. Where that index cannot be
reached within a few seconds (a firewall, a mirror-only network), pip installs the plain pin
from its own index, with a one-line notice. On macOS and Windows PyPI's wheel is
already the CPU build. Uses only the standard library: it runs before anything is installed.

pip installs uv (a fast installer, from pip's index) and torch; uv installs the rest of requirements.txt
from PyPI, looking packages up in parallel where pip looks up one at a time (on 2 cores: about 6 s
against 30). uv does not read pip's settings (a mirror, a certificate): where it fails, pip installs
the rest, as before, and says so.

It prints one line per step; pip's own output goes to ``.venv/install.log`` (shown when a step fails),
and a closing summary says which torch build was installed, where, and what to open next.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import sys
import sysconfig
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_SECONDS = 5
UV = "uv==0.13.10"  # pinned, like everything else
LOG = pathlib.Path(sys.prefix) / "install.log"  # pip's own output, kept out of the way
UV_LOG = LOG.with_name("install-uv.log")  # uv's, while pip writes LOG beside it
# JupyterLab settings for everyone who uses this environment: no "get notified about Jupyter news?" toast
# over the first notebook (JupyterLab asks by default on its first start), and room for long file names.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    # The notebooks' names are long: give them the file browser's whole width.
    "@jupyterlab/filebrowser-extension:browser": {"showLastModifiedColumn": False},
}


def torch_pin(requirements=REQUIREMENTS):
    """The exact torch version requirements.txt pins."""
    match = re.search(r"^torch==(\S+)", requirements.read_text(encoding="utf-8"), re.M)
    if not match:
        raise SystemExit(f"{requirements.name} must pin torch exactly (torch==X.Y.Z)")
    return match[1]


def reachable(url, seconds=PROBE_SECONDS):
    """True when ``url`` answers within ``seconds``."""
    try:
        with urllib.request.urlopen(url, timeout=seconds):
            return True
    except OSError:
        return False


def pip(*args):
    """Run ``pip install`` quietly, its output appended to LOG; True when it succeeded, else say where to look."""
    # --no-compile: compile_installed() does it afterwards, on every core (pip compiles on one).
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", *args]
    with open(LOG, "a", encoding="utf-8") as log:
        log.write("+ " + " ".join(command[2:]) + "\n")
        log.flush()
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = LOG.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        print("\n".join([f"  pip failed; the end of its output (all of it is in {shown(LOG)}):", *tail]))
    return done.returncode == 0


def uv(*args, log_path=None):
    """Run ``uv pip install`` into this environment, without a cache of its own (nothing is kept twice), its
    output appended to ``log_path`` (LOG by default); True when it succeeded."""
    command = [sys.executable, "-m", "uv", "pip", "install", "--python", sys.executable, "--no-cache", *args]
    with open(log_path or LOG, "a", encoding="utf-8") as log:
        log.write("+ uv " + " ".join(command[3:]) + "\n")
        log.flush()
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode == 0


def shown(path):
    """``path`` relative to where make runs (``.venv/install.log``), absolute where that is not possible."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive, on Windows
        return str(path)


def step(text):
    print(f"- {text} ...", flush=True)


# Never imported by the course (but for the few transformers models a notebook loads, which import then
# compiles): compiling them took 8 of the 22 s that all 13,000 installed files took on 2 cores.
NOT_COMPILED = r"(transformers[/\\]models|[/\\](tests|testing|_vendor|pip|setuptools))[/\\]"


def compile_installed():
    """Write the bytecode of the installed modules, in parallel: where PYTHONDONTWRITEBYTECODE is set (as on
    some CI machines), Python never writes it when importing, and each kernel of the test run would compile
    torch again; elsewhere the first test run's processes would each compile the same modules at once.
    (A few files written for newer Pythons, such as torch's py312 helpers, do not compile: harmless.)"""
    folders = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    for folder in folders:
        command = [sys.executable, "-m", "compileall", "-q", "-j", "0", "-x", NOT_COMPILED, folder]
        subprocess.run(command, stdout=subprocess.DEVNULL)


def describe_torch(version, cuda):
    """One line that says which torch build is installed, from its version and ``torch.version.cuda``."""
    build = f"a CUDA {cuda} build (it runs on the CPU too)" if cuda else "the CPU build"
    return f"installed: torch {version}, {build}"


def write_lab_settings(prefix=sys.prefix):
    """Merge LAB_SETTINGS into the environment's JupyterLab overrides.json."""
    path = pathlib.Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for plugin, values in LAB_SETTINGS.items():
        settings.setdefault(plugin, {}).update(values)
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def summary(torch_line, venv=sys.prefix):
    """The closing lines: what was installed, where, and what to do next."""
    return "\n".join(
        [
            "",
            f"ready: {torch_line.removeprefix('installed: ')}, and the course's requirements, in {shown(venv)}",
            "next:  make lab opens notebook 00 in JupyterLab; make test checks everything (about a minute on 2 cores)",
        ]
    )


def installed_torch():
    """What pip actually installed, asked of torch itself: a guess made before the install can be wrong
    (where the CPU index cannot be reached, pip may still find a CPU wheel in a local mirror)."""
    probe = "import torch; print(torch.__version__); print(torch.version.cuda or '')"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    lines = found.stdout.splitlines()
    if found.returncode != 0 or not lines:
        return "note: torch could not be imported after the install (see pip's messages above)"
    return describe_torch(lines[0], lines[1] if len(lines) > 1 else "")  # "installed: torch ..., the CPU build"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", choices=["cpu", "cuda"], default="cpu", help="which torch build on Linux")
    args = parser.parse_args(argv)
    version = torch_pin()
    print(f"Setting up {shown(sys.prefix)} for the course (pip's and uv's output go to {shown(LOG)}*)", flush=True)
    linux_cpu = sys.platform.startswith("linux") and args.torch == "cpu"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # ask PyTorch's index while pip installs uv
        answered = pool.submit(reachable, f"{CPU_INDEX}/torch/") if linux_cpu else None
        step("uv, a fast installer, from pip's index")
        fast, rest = pip(UV), None
        if fast and linux_cpu:  # everything but torch, beside torch (uv's output in its own log)
            step("requirements.txt but torch, from PyPI by uv, while torch comes")
            excluded = pathlib.Path(sys.prefix) / "uv-excludes.txt"
            excluded.write_text("torch\n", encoding="utf-8")
            rest = pool.submit(uv, "-r", str(REQUIREMENTS), "--excludes", str(excluded), log_path=UV_LOG)
        if linux_cpu:  # torch alone (no dependencies: uv adds them after), so that uv keeps it
            from_cpu_index = answered.result()
            if from_cpu_index:
                step(f"torch {version}, CPU build, from PyTorch's index (about 190 MB)")
                from_cpu_index = pip("--no-deps", "--index-url", CPU_INDEX, f"torch=={version}")
                if not from_cpu_index:
                    print(
                        f"note: torch=={version} is not on PyTorch's CPU index for this Python; pip's own index has it"
                    )
            else:
                print(
                    f"note: PyTorch's CPU wheel index did not answer within {PROBE_SECONDS} s, so torch=={version} "
                    "comes from pip's own index; the summary at the end says which build that is",
                    flush=True,
                )
                step(f"torch {version} from pip's own index")
            if not from_cpu_index:
                pip("--no-deps", f"torch=={version}")
        fast = fast and (rest is None or rest.result())
    step("requirements.txt, from PyPI by uv (a few minutes on a slow network)")
    if not (fast and uv("-r", str(REQUIREMENTS))):
        failed = "uv failed" if fast else "pip could not install uv"
        print(f"note: {failed} (see {shown(UV_LOG)} and {shown(LOG)}); pip installs the rest instead (slower)")
        if not pip("-r", str(REQUIREMENTS)):
            raise SystemExit("pip could not install requirements.txt (see the lines above)")
    step("compiling the installed modules, warming matplotlib's font cache, setting JupyterLab's defaults")
    compile_installed()
    # The first matplotlib import builds a font cache and says so on stderr: do it here, not in
    # the first notebook, where the notice would fail strict nbval.
    subprocess.run([sys.executable, "-c", "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"])
    write_lab_settings()
    print(summary(installed_torch()), flush=True)


if __name__ == "__main__":
    main()
