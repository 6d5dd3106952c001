"""Install the lesson's requirements into the running interpreter's environment (``make`` calls it).

    python tools/install.py              # on Linux, torch's CPU build (about 1.3 GB less to download)
    python tools/install.py --torch cuda  # PyPI's default torch wheel: on Linux, the CUDA build

On Linux, PyPI's torch wheel is the CUDA build, with several GB of NVIDIA libraries. The lesson
needs only the CPU, so by default torch alone comes from PyTorch's CPU wheel index, at the
version requirements.txt pins; everything else comes from PyPI. Where that index cannot be
reached within a few seconds (a firewall, a mirror-only network), the plain pin is installed
from wherever pip finds it, with a one-line notice. On macOS and Windows PyPI's wheel is
already the CPU build. Uses only the standard library: it runs before anything is installed.
"""

import argparse
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
    # --no-compile: compile_installed() does it afterwards, on every core (pip compiles on one).
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", *args]
    print("+", " ".join(command[2:]), flush=True)
    return subprocess.run(command).returncode == 0


def compile_installed():
    """Write the bytecode of every installed module, in parallel. It must be written here: where
    PYTHONDONTWRITEBYTECODE is set (as on some CI machines), Python never writes it when importing,
    and each kernel of the test run would compile torch again. (A few files written for newer Pythons,
    such as torch's py312 test helpers, do not compile: harmless, and reported by compileall.)"""
    folders = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    for folder in folders:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", folder], stdout=subprocess.DEVNULL)


def describe_torch(version, cuda):
    """One line that says which torch build is installed, from its version and ``torch.version.cuda``."""
    build = f"a CUDA {cuda} build (it runs on the CPU too)" if cuda else "the CPU build"
    return f"installed: torch {version}, {build}"


def installed_torch():
    """What pip actually installed, asked of torch itself: a guess made before the install can be wrong
    (where the CPU index cannot be reached, pip may still find a CPU wheel in a local mirror)."""
    probe = "import torch; print(torch.__version__); print(torch.version.cuda or '')"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    lines = found.stdout.splitlines()
    if found.returncode != 0 or not lines:
        return "note: torch could not be imported after the install (see pip's messages above)"
    return describe_torch(lines[0], lines[1] if len(lines) > 1 else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", choices=["cpu", "cuda"], default="cpu", help="which torch build on Linux")
    args = parser.parse_args(argv)
    version = torch_pin()
    if sys.platform.startswith("linux") and args.torch == "cpu":
        if not reachable(f"{CPU_INDEX}/torch/"):
            print(
                f"note: PyTorch's CPU wheel index ({CPU_INDEX}) did not answer within {PROBE_SECONDS} s; "
                f"installing torch=={version} from wherever pip finds it (on PyPI, the Linux wheel is the CUDA build)",
                flush=True,
            )
        elif not pip("--no-deps", "--index-url", CPU_INDEX, f"torch=={version}"):
            print(f"note: torch=={version} is not on the CPU index for this Python; installing it from PyPI")
    if not pip("-r", str(REQUIREMENTS)):
        raise SystemExit("pip could not install requirements.txt (see its message above)")
    compile_installed()
    print(installed_torch(), flush=True)
    # The first matplotlib import builds a font cache and says so on stderr: do it here, not in
    # the first notebook, where the notice would fail strict nbval.
    subprocess.run([sys.executable, "-c", "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"])


if __name__ == "__main__":
    main()
