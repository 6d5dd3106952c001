"""Launching the lesson anywhere: on Colab, on Binder, from a fork, and in CI.

Every badge and URL names the repository and branch in lesson.cfg; the Colab set-up cell fetches
the course's modules (the ``course`` package beside the notebooks, and label_checks.py) only on Colab;
`make retarget` moves all of it to a fork; the Binder image and the CI workflow install and run what
requirements.txt and the Makefile say.
"""

import ast
import configparser
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import nbformat
import pytest
import yaml

import navigation

ROOT = navigation.ROOT
SLUG, BRANCH = navigation.read_target()
NAMES = [path.name for path in navigation.notebook_paths()]
MODULES = navigation.modules()
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# A fork to retarget at, never the repository the lesson is configured for (nor a name containing it).
FORK = "someone/fork" if SLUG != "someone/fork" else "someone-else/another-fork"
FORK_BRANCH = "workshop" if BRANCH != "workshop" else "teaching"

LAUNCH_URL = re.compile(
    r"https://(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh|raw\.githubusercontent\.com)/"
    r"[^\s)\"'<>\]\\]+"
)
CLONE_URL = re.compile(r"git clone (\S+)")


def launch_files(root):
    """The files that may carry a badge or URL: Markdown, notebooks, Binder files, lesson.cfg."""
    files = [*root.glob("*.md"), *root.glob("notebooks/*.ipynb"), *root.glob("binder/*")]
    return sorted(path for path in files if path.is_file())


def points_at(url, slug, branch):
    bases = (
        f"https://colab.research.google.com/github/{slug}/blob/{branch}",
        f"https://mybinder.org/v2/gh/{slug}/{branch}",
        f"https://raw.githubusercontent.com/{slug}/{branch}",
    )
    return any(url == base or url.startswith((base + "/", base + "?")) for base in bases)


def strays(root, slug, branch):
    """Every launch or clone URL under ``root`` that does not name ``slug`` and ``branch``."""
    found = []
    for path in launch_files(root):
        text = path.read_text(encoding="utf-8")
        found += [(path.name, u) for u in LAUNCH_URL.findall(text) if not points_at(u, slug, branch)]
        found += [(path.name, u) for u in CLONE_URL.findall(text) if u != f"https://github.com/{slug}.git"]
    return found


def read_notebook(name, root=ROOT):
    return nbformat.read(root / "notebooks" / name, as_version=4)


def pins(path):
    """``{name: version}`` from a requirements file, skipping options and comments."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, version = line.split("==")
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


# --- one place for the slug and branch ---------------------------------------------------------


def test_every_badge_and_url_names_the_repository_and_branch_in_lesson_cfg():
    assert strays(ROOT, SLUG, BRANCH) == []


@pytest.mark.parametrize("name", NAMES)
def test_each_notebook_opens_with_colab_and_binder_badges_pointing_at_itself(name):
    first = read_notebook(name).cells[0]
    assert first.cell_type == "markdown"
    assert "lesson-badges" in first.metadata.get("tags", [])
    assert f"(https://colab.research.google.com/github/{SLUG}/blob/{BRANCH}/notebooks/{name})" in first.source
    assert f"(https://mybinder.org/v2/gh/{SLUG}/{BRANCH}?labpath=notebooks%2F{name})" in first.source


@pytest.mark.parametrize("name", NAMES)
def test_each_notebooks_header_names_the_versions_its_claims_were_checked_with(name):
    import quotes

    header = read_notebook(name).cells[0].source
    versions = pins(ROOT / "requirements.txt")
    cited = {q.library: q.version for q in quotes.QUOTES if q.notebook == name}
    assert f"*Checked with torch {versions['torch']}" in header
    assert (f"transformers {versions['transformers']}" in header) == (
        imports_transformers(name) or "transformers" in cited
    )
    assert ("trl" in header) == ("trl" in cited)
    if "trl" in cited:
        assert f"trl {cited['trl']} (not installed)" in header


@pytest.mark.parametrize("name", NAMES)
def test_each_notebooks_first_code_cell_is_the_colab_set_up_cell(name):
    first_code = next(cell for cell in read_notebook(name).cells if cell.cell_type == "code")
    assert "lesson-colab" in first_code.metadata.get("tags", [])
    assert f'FOLDER = "https://raw.githubusercontent.com/{SLUG}/{BRANCH}/notebooks"' in first_code.source


@pytest.mark.parametrize("name", NAMES)
def test_the_colab_set_up_cell_is_the_only_code_cell_before_the_lesson_and_shows_collapsed(name):
    code = [cell for cell in read_notebook(name).cells if cell.cell_type == "code"]
    assert code[0].metadata.get("jupyter") == {"source_hidden": True}
    assert "lesson-colab" not in code[1].metadata.get("tags", []) and "google.colab" not in code[1].source


def normalised_colab_cell(source):
    """A Colab cell with its list of files and its transformers lines taken out."""
    source = re.sub(r"(?ms)^    FILES = \[.*?\]$", "    FILES = ...", source)
    source = source.replace(" (and the transformers it was checked with)", "")
    return "\n".join(line for line in source.splitlines() if not re.search(r"transformers|importlib|subprocess", line))


def test_the_colab_set_up_cell_is_identical_in_every_notebook_but_for_its_files_and_transformers_lines():
    cells = [next(cell.source for cell in read_notebook(name).cells if cell.cell_type == "code") for name in NAMES]
    assert len({normalised_colab_cell(source) for source in cells}) == 1


def test_the_workshop_agenda_adds_up_the_minutes_in_each_notebooks_title_cell():
    agenda = (ROOT / "WORKSHOP.md").read_text(encoding="utf-8")
    start = 0
    for name in NAMES:
        minutes = navigation.frame(read_notebook(name))[2]
        row = re.search(rf"^\| (\d+):(\d\d) \| \[[^]]+\]\(notebooks/{re.escape(name)}\) \| (\d+) \|", agenda, re.M)
        assert row, f"WORKSHOP.md's agenda has no row for {name}"
        assert (int(row[1]) * 60 + int(row[2]), int(row[3])) == (start, minutes)
        start += minutes


# --- make retarget -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fork(launched):
    """A copy of the lesson retargeted at FORK: ``(folder, its notebooks before retargeting)``."""
    return launched["fork"]


def test_retargeting_writes_the_fork_to_lesson_cfg(fork):
    folder, _ = fork
    text = (folder / "lesson.cfg").read_text(encoding="utf-8")
    assert f"slug = {FORK}\n" in text and f"branch = {FORK_BRANCH}\n" in text


def test_retargeting_points_every_badge_and_url_at_the_fork(fork):
    folder, _ = fork
    assert strays(folder, FORK, FORK_BRANCH) == []
    text = "".join(path.read_text(encoding="utf-8") for path in launch_files(folder))
    assert len(LAUNCH_URL.findall(text)) >= 3 * len(NAMES)


def test_retargeting_leaves_no_mention_of_the_original_repository(fork):
    folder, _ = fork
    assert [path.name for path in launch_files(folder) if SLUG in path.read_text(encoding="utf-8")] == []


def test_retargeting_leaves_notebook_outputs_and_execution_counts_alone(fork):
    folder, before = fork
    for name in NAMES:
        after = read_notebook(name, folder)
        recorded = [(c.id, c.get("execution_count"), c.get("outputs")) for c in before[name].cells]
        assert [(c.id, c.get("execution_count"), c.get("outputs")) for c in after.cells] == recorded


@pytest.mark.skipif(shutil.which("make") is None or not hasattr(os, "geteuid"), reason="needs make and a Unix user id")
def test_make_lab_starts_jupyterlab_as_root_only_when_run_as_root():
    dry_run = subprocess.run(["make", "-n", "lab"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    command = next(line for line in dry_run.splitlines() if "jupyter lab " in line)
    assert ("--allow-root" in command) == (os.geteuid() == 0), command
    assert ("running as root (a container?), so JupyterLab starts with --allow-root" in dry_run) == (os.geteuid() == 0)


@pytest.mark.skipif(shutil.which("make") is None or not hasattr(os, "killpg"), reason="needs make and Unix signals")
def test_make_lab_really_starts_jupyterlab(tmp_path):
    """As whoever runs the tests (root in many containers and CI): the server comes up, then is stopped."""
    if subprocess.run(["make", "-q", ".venv/.ready"], cwd=ROOT).returncode != 0:
        pytest.skip("no up-to-date .venv: make lab would build one first")
    import signal
    import threading

    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "BROWSER": "true"}  # no browser opens
    lab = subprocess.Popen(
        ["make", "lab"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stop = lambda: os.killpg(lab.pid, signal.SIGTERM)  # noqa: E731
    watchdog = threading.Timer(300, stop)  # only against a hang, which ends the output; no time is asserted
    watchdog.start()
    seen = []
    try:
        for line in lab.stdout:  # up to the URL, which follows "is running at" on a line of its own
            seen.append(line)
            if "?token=" in line or "Running as root is not recommended" in line:
                break
    finally:
        watchdog.cancel()
        if lab.poll() is None:
            stop()
        lab.wait(timeout=60)
        lab.stdout.close()
    text = "".join(seen)
    assert "is running at" in text and "Running as root is not recommended" not in text, text[-2000:]
    assert f"make lab: opening {NAMES[0]}; the other notebooks are in the file browser" in text
    assert f"/lab/tree/notebooks/{NAMES[0]}?token=" in text  # the URL a browser opens lands on the first notebook


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_opens_the_first_notebook_with_the_repository_reachable_from_its_file_browser():
    dry_run = subprocess.run(["make", "-n", "lab"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    command = next(line for line in dry_run.splitlines() if "jupyter lab " in line)
    assert f"--LabApp.default_url=/lab/tree/notebooks/{NAMES[0]}" in command
    assert "root_dir" not in command  # the notebooks link ../TROUBLESHOOTING.md and ../GLOSSARY.md: keep them reachable


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_retarget_hands_repo_and_branch_to_the_navigation_tool():
    command = ["make", "-n", "retarget", f"REPO={FORK}", f"BRANCH={FORK_BRANCH}"]
    dry_run = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert f'tools/navigation.py --retarget "{FORK}" --branch "{FORK_BRANCH}"' in dry_run


# --- the Colab path, without a network -----------------------------------------------------------

# Runs each notebook's Colab cell three times in a fresh interpreter: on "Colab" in an empty folder,
# on "Colab" with the files already there, and off Colab. The download stand-in copies the file at that
# path under the repository's notebooks/ and records the URL. On "Colab" in an empty folder it then runs
# the notebook's own import lines and setup(), and records where each of the course's modules came from.
# Prints one JSON line.
COLAB_RUNNER = r"""
import contextlib, importlib, io, json, os, shutil, sys, textwrap, types, urllib.request

job = json.load(sys.stdin)
downloads = []
PREFIX = "/notebooks/"


def urlretrieve(url, filename=None, *args, **kwargs):
    downloads.append(url)
    shutil.copy(os.path.join(job["notebooks"], url[url.index(PREFIX) + len(PREFIX) :]), filename)
    return filename, None


urllib.request.urlretrieve = urlretrieve


def listing():
    return sorted(os.path.relpath(os.path.join(d, f)).replace(os.sep, "/") for d, _, fs in os.walk(".") for f in fs)


def ours(module):
    return module == "course" or module.startswith("course.") or module == "label_checks"


def run(source, imports, folder, on_colab, with_modules):
    os.makedirs(folder)
    os.chdir(folder)
    if with_modules:
        for module in job["modules"]:
            os.makedirs(os.path.dirname(module) or ".", exist_ok=True)
            shutil.copy(os.path.join(job["notebooks"], module), module)
    sys.modules.pop("google.colab", None)
    if on_colab:
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    downloads.clear()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        exec(compile(source, "lesson-colab", "exec"), {"__name__": "__main__"})
    result = {"downloads": list(downloads), "printed": printed.getvalue(), "files": listing()}
    if on_colab and not with_modules:
        for module in [m for m in sys.modules if ours(m)]:
            del sys.modules[module]
        importlib.invalidate_caches()
        namespace = {}
        exec(compile(imports + "\nimport course\ncourse.setup()", "imports", "exec"), namespace)
        result["imported_from"] = {
            m: os.path.relpath(os.path.dirname(os.path.abspath(sys.modules[m].__file__)))
            for m in sorted(sys.modules)
            if ours(m)
        }
    return result


results = {}
for name, (source, imports) in job["cells"].items():
    base = os.path.join(job["workdir"], name)
    results[name] = {
        "colab, empty folder": run(source, imports, base + "-colab-empty", True, False),
        "colab, modules present": run(source, imports, base + "-colab-present", True, True),
        "elsewhere": run(source, imports, base + "-elsewhere", False, False),
    }
print(json.dumps(results))
"""


def import_lines(name):
    """Every line of a notebook (solutions included) that imports from the course or the checker, dedented."""
    source = "\n".join(cell.source for cell in read_notebook(name).cells)
    lines = re.findall(r"^\s*((?:from|import) (?:course|label_checks)\b.*)$", source, re.M)
    return "\n".join(line.split("#")[0].rstrip() for line in lines)


@pytest.fixture(scope="module")
def colab_runs(launched):
    """``{notebook: {situation: what its Colab cell downloaded, printed and left in the folder}}``."""
    return launched["colab"]


@pytest.mark.parametrize("name", NAMES)
def test_on_colab_the_first_cell_downloads_every_module_from_the_configured_repository(colab_runs, name):
    run = colab_runs[name]["colab, empty folder"]
    base = f"https://raw.githubusercontent.com/{SLUG}/{BRANCH}/notebooks"
    assert run["downloads"] == [f"{base}/{module}" for module in fetched_by_colab_cell(name)]
    assert run["files"] == fetched_by_colab_cell(name)
    assert run["printed"] == ""


@pytest.mark.parametrize("name", NAMES)
def test_on_colab_every_import_of_the_notebook_finds_the_downloaded_files(colab_runs, name):
    """The notebook's own import lines and setup() run in the folder the cell filled, and every module of
    the course they load (lazily imported ones included) comes from there."""
    loaded = colab_runs[name]["colab, empty folder"]["imported_from"]
    assert {"course", "course.helpers", "course.plotting"} <= set(loaded)
    assert set(loaded.values()) <= {"course", "."}, loaded


@pytest.mark.parametrize("name", NAMES)
def test_on_colab_nothing_is_downloaded_when_the_modules_are_already_there(colab_runs, name):
    assert colab_runs[name]["colab, modules present"]["downloads"] == []


def fetched_by_colab_cell(name):
    """The FILES list written in a notebook's stored Colab cell."""
    cell = next(c.source for c in read_notebook(name).cells if "lesson-colab" in c.metadata.get("tags", []))
    return ast.literal_eval(re.search(r"^    FILES = (\[.*?\])$", cell, re.M | re.S)[1])


@pytest.mark.parametrize("name", NAMES)
def test_the_colab_cell_fetches_the_notebooks_own_checkers(name):
    """``check`` finds a notebook's checkers by the exercise's name, so no import line names them."""
    assert f"course/exercises_{name[:2]}.py" in fetched_by_colab_cell(name)


def test_an_interrupted_download_on_colab_leaves_no_broken_module(tmp_path, monkeypatch):
    import types
    import urllib.request

    cell = next(c.source for c in read_notebook(NAMES[0]).cells if "lesson-colab" in c.metadata.get("tags", []))

    def cut_off(url, filename):  # the connection drops half way through the second module
        pathlib.Path(filename).write_text("def half_a_mod")
        if len([path for path in tmp_path.rglob("*") if path.is_file()]) > 1:
            raise ConnectionResetError("connection reset")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(urllib.request, "urlretrieve", cut_off)
    with pytest.raises(ConnectionResetError):
        exec(compile(cell, "lesson-colab", "exec"), {"__name__": "__main__"})
    left = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    first, second = fetched_by_colab_cell(NAMES[0])[:2]
    assert left == [first, second + ".part"], left  # a rerun fetches the second module again


@pytest.mark.parametrize("name", NAMES)
def test_off_colab_the_first_cell_downloads_nothing_and_prints_nothing(colab_runs, name):
    run = colab_runs[name]["elsewhere"]
    assert (run["downloads"], run["printed"], run["files"]) == ([], "", [])


# --- the two slow set-ups (a fresh interpreter each), started together --------------------------------


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Retarget a copy of the lesson at FORK, and run every Colab cell, in two parallel processes."""
    folder = tmp_path_factory.mktemp("fork")
    for path in [*ROOT.glob("*.md"), ROOT / "lesson.cfg", ROOT / "requirements.txt"]:
        shutil.copy(path, folder)
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for sub in ("notebooks", "tools", "binder"):
        shutil.copytree(ROOT / sub, folder / sub, ignore=ignore)
    before = {name: read_notebook(name, folder) for name in NAMES}
    retarget = subprocess.Popen(
        [sys.executable, "tools/navigation.py", "--retarget", FORK, "--branch", FORK_BRANCH],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    workdir = tmp_path_factory.mktemp("colab")
    cells = {
        name: (
            next(c.source for c in read_notebook(name).cells if "lesson-colab" in c.metadata.get("tags", [])),
            import_lines(name) + f"\nimport course.exercises_{name[:2]}",
        )
        for name in NAMES
    }
    job = {"cells": cells, "notebooks": str(ROOT / "notebooks"), "modules": MODULES, "workdir": str(workdir)}
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    colab = subprocess.run(
        [sys.executable, "-c", COLAB_RUNNER],
        input=json.dumps(job),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    _, retarget_errors = retarget.communicate()
    assert retarget.returncode == 0, retarget_errors
    assert colab.returncode == 0, colab.stderr
    return {"fork": (folder, before), "colab": json.loads(colab.stdout.splitlines()[-1])}


# --- Binder ----------------------------------------------------------------------------------------

# In requirements.txt to test the lesson, not to read it: the Binder image leaves them out.
TEST_ONLY = {"pytest", "pytest-xdist", "nbval", "hypothesis", "ruff", "pyyaml"}


def test_binder_pins_the_same_versions_as_requirements():
    binder, local = pins(ROOT / "binder" / "requirements.txt"), pins(ROOT / "requirements.txt")
    assert {name: version.split("+")[0] for name, version in binder.items()} == {
        name: version for name, version in local.items() if name not in TEST_ONLY
    }


def test_binder_takes_torch_from_the_cpu_wheel_index():
    text = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8")
    assert f"--extra-index-url {CPU_INDEX}" in text.splitlines()
    assert pins(ROOT / "binder" / "requirements.txt")["torch"].endswith("+cpu")


def test_binder_runtime_names_a_python_version_the_lesson_supports():
    runtime = (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-3\.(\d+)", runtime)
    oldest, newest = (int(version.split(".")[1]) for version in supported_pythons())
    assert match and oldest <= int(match[1]) <= newest


@pytest.mark.skipif(shutil.which("repo2docker") is None, reason="jupyter-repo2docker is not installed")
def test_repo2docker_accepts_the_repository(tmp_path):
    done = subprocess.run(
        ["repo2docker", "--no-build", "--debug", str(ROOT)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    python = (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip().replace("-", "=")
    assert f"Building conda environment for {python}" in output
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in output


# --- CI and pre-commit -----------------------------------------------------------------------------


def workflow():
    return yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8"))


def ci_command():
    """The one command .ci/run runs."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd "))][-1]


def test_every_workflow_job_runs_the_same_command_as_ci_run():
    for job in workflow()["jobs"].values():
        assert ci_command() in [step.get("run", "").strip() for step in job["steps"]]


def supported_pythons():
    """(oldest, newest) from lesson.cfg, the one place that names them."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "lesson.cfg", encoding="utf-8")
    return parser["python"]["oldest"], parser["python"]["newest"]


def test_the_workflow_tests_linux_macos_and_windows_on_the_oldest_and_newest_python_with_cpu_torch():
    data = workflow()
    matrix = data["jobs"]["test"]["strategy"]["matrix"]
    assert set(matrix["os"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    assert set(matrix["python"]) == set(supported_pythons())
    assert data["env"]["PIP_EXTRA_INDEX_URL"] == CPU_INDEX


def test_every_place_that_names_the_supported_pythons_agrees_with_lesson_cfg():
    oldest, newest = supported_pythons()
    span = f"Python {oldest} to {newest}"
    for name in ("README.md", "WORKSHOP.md", "requirements.txt"):
        text = " ".join((ROOT / name).read_text(encoding="utf-8").split())  # line breaks read as spaces
        assert span in text, f"{name} must say {span!r}"
        others = set(re.findall(r"Python (3\.\d+) to (3\.\d+)", text)) - {(oldest, newest)}
        assert not others, f"{name} also names {others}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == f">={oldest}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")


def test_on_windows_the_workflow_runs_the_makefiles_test_recipe_by_hand():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test: .*\n((?:\t.*\n)+)", makefile, re.M)[1]
    expected = [line.strip().replace("$(BIN)", ".venv/Scripts") for line in recipe.splitlines()]
    windows = [s for s in workflow()["jobs"]["test"]["steps"] if "Windows'" in s.get("if", "") and "==" in s["if"]]
    lines = windows[0]["run"].splitlines()
    assert lines[-len(expected) :] == expected


def test_one_workflow_job_runs_the_tests_on_an_older_torch():
    def version(text):
        return tuple(int(part) for part in text.split("+")[0].split("."))

    current = version(pins(ROOT / "requirements.txt")["torch"])
    runs = " ".join(step.get("run", "") for step in workflow()["jobs"]["older-torch"]["steps"])
    older = re.search(r"pip install torch==(\S+)", runs)
    assert older and version(older[1]) < current


def pre_commit_hooks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: (repo["rev"], hook) for repo in config["repos"] for hook in repo["hooks"]}


def test_pre_commit_keeps_notebook_outputs_and_execution_counts():
    _, nbstripout = pre_commit_hooks()["nbstripout"]
    assert {"--keep-output", "--keep-count"} <= set(nbstripout["args"])
    extra = nbstripout["args"][nbstripout["args"].index("--extra-keys") + 1].split()
    assert {"metadata.colab", "cell.metadata.colab", "cell.metadata.outputId"} <= set(extra)


def test_pre_commit_runs_the_ruff_version_requirements_pins():
    hooks = pre_commit_hooks()
    ruff = pins(ROOT / "requirements.txt")["ruff"]
    assert hooks["ruff-check"][0] == hooks["ruff-format"][0] == f"v{ruff}"


# --- the notebooks that use transformers install the pinned one on Colab ------------------------------

# Runs a Colab cell in an empty folder with pip, the installed transformers version and the downloads
# stood in for; prints the commands it would have run.
TRANSFORMERS_RUNNER = r"""
import importlib.metadata, json, os, pathlib, subprocess, sys, types, urllib.request

job = json.load(sys.stdin)
os.chdir(job["folder"])
calls = []
subprocess.run = lambda command, **kwargs: calls.append(command)
importlib.metadata.version = lambda name: job["installed"]
urllib.request.urlretrieve = lambda url, filename: pathlib.Path(filename).write_text("")
if job["on_colab"]:
    sys.modules["google.colab"] = types.ModuleType("google.colab")
exec(compile(job["source"], "lesson-colab", "exec"), {"__name__": "__main__"})
print(json.dumps(calls))
"""


def imports_transformers(name):
    source = "\n".join(cell.source for cell in read_notebook(name).cells)
    return bool(re.search(r"^\s*(?:from|import) transformers\b", source, re.M))


USING_TRANSFORMERS = [name for name in NAMES if imports_transformers(name)]


def colab_cell(name):
    return next(c.source for c in read_notebook(name).cells if "lesson-colab" in c.metadata.get("tags", []))


def test_the_notebooks_that_use_transformers_are_the_ones_the_lesson_says():
    assert [name[:2] for name in USING_TRANSFORMERS] == ["06", "08", "09", "10"]


@pytest.mark.parametrize("name", NAMES)
def test_the_colab_cell_installs_transformers_exactly_in_the_notebooks_that_use_it(name):
    assert ("CHECKED_WITH" in colab_cell(name)) == (name in USING_TRANSFORMERS)
    assert not any("lesson-transformers" in c.metadata.get("tags", []) for c in read_notebook(name).cells)


def run_colab_cell(name, on_colab, installed, folder):
    job = {"source": colab_cell(name), "on_colab": on_colab, "installed": installed, "folder": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", TRANSFORMERS_RUNNER], input=json.dumps(job), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", USING_TRANSFORMERS)
def test_the_colab_cell_names_the_transformers_version_requirements_pins(name):
    pin = pins(ROOT / "requirements.txt")["transformers"]
    assert re.search(r'CHECKED_WITH = "([^"]+)"', colab_cell(name))[1] == pin


def test_on_colab_the_colab_cell_installs_the_pinned_transformers_when_another_version_is_there(tmp_path):
    pin = pins(ROOT / "requirements.txt")["transformers"]
    [command] = run_colab_cell(USING_TRANSFORMERS[0], on_colab=True, installed="4.57.6", folder=tmp_path)
    assert command[1:] == ["-m", "pip", "install", "-q", f"transformers=={pin}"]


@pytest.mark.parametrize("on_colab, installed", [(True, "same"), (False, "4.57.6")])
def test_the_colab_cell_installs_nothing_off_colab_or_when_the_version_matches(on_colab, installed, tmp_path):
    pin = pins(ROOT / "requirements.txt")["transformers"]
    assert run_colab_cell(USING_TRANSFORMERS[0], on_colab, pin if installed == "same" else installed, tmp_path) == []


def test_the_colab_cell_follows_parenthesized_and_aliased_imports():
    source = "from course.parallel_setups import (\n    LENGTH,\n)\nfrom course import parallel_worker as pw\n"
    assert {"course/parallel_setups.py", "course/parallel_worker.py"} <= navigation.imports(source)


def test_the_readme_states_the_course_length_the_notebooks_add_up_to():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    length = navigation.readme_blocks(SLUG, BRANCH)["length"]
    assert f"<!-- generated:length -->{length}<!-- /generated:length -->" in readme


def test_hours_are_said_to_the_half_hour():
    assert [navigation.hours(m) for m in (50, 65, 100, 650)] == ["1 hour", "1 hour", "1 and a half hours", "11 hours"]
