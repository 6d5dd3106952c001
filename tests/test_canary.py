"""The canary (`make canary`, tools/canary.py), its table of quoted library lines (tools/quotes.py) and its
scheduled workflow. Nothing here builds an environment or reaches the network: a small planted notebook
runs in this environment, and the quote check reads small planted source trees."""

import configparser
import hashlib
import importlib.metadata
import pathlib
import re

import nbformat
import pytest
import yaml

import canary
import execute
from quotes import QUOTES, Quote

ROOT = canary.ROOT
NOTEBOOKS = {path.name: path for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


# --- The report on a planted notebook ---------------------------------------------------------------------


def code(source, printed=None, tags=()):
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)] if printed else []
    return nbformat.v4.new_code_cell(source, outputs=outputs, metadata={"tags": list(tags)} if tags else {})


def planted():
    """Stored as if run on the pinned stack: its first cell checks that the kernel is this environment's."""
    md = nbformat.v4.new_markdown_cell
    cells = [
        md("# A planted notebook"),
        code(f"import sys\n\nassert sys.prefix == {__import__('sys').prefix!r}"),
        md("Some text.\n\n## 1. A claim that moved"),
        code('total = 1 + 1\nassert total == 3, f"1 + 1 makes {total}"'),
        md("## 2. A call that raises"),
        code('{}["missing"]'),
        md("## 3. A number that drifted"),
        code('print(f"{2 / 3:.4f}")', printed="0.6666\n"),  # stored with another last digit
        code('print(f"{2 / 3:.4f}")', printed="a timing\n", tags=[execute.VARIES]),
        code('print("the same")', printed="the same\n"),
        code('import warnings\n\nwarnings.warn("a new warning")'),  # stored silent
    ]
    return nbformat.v4.new_notebook(cells=cells)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("lesson") / "planted.ipynb"
    nbformat.write(planted(), path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    found = canary.assess([path], progress=lambda line: None)
    return found, before, path


def kinds(found):
    return [(f.kind, f.section, f.cell) for f in found]


def test_each_failed_assert_raised_cell_and_drifted_number_is_reported_in_its_section_and_cell(run):
    found, _, _ = run
    assert kinds(found) == [
        ("assert", "1. A claim that moved", 3),
        ("raised", "2. A call that raises", 5),
        ("drift", "3. A number that drifted", 7),
        ("drift", "3. A number that drifted", 10),
    ]


def test_a_failed_assert_is_reported_with_its_message_and_the_line_that_failed(run):
    claim = run[0][0]
    assert claim.message == "AssertionError: 1 + 1 makes 2"
    assert claim.line == 'assert total == 3, f"1 + 1 makes {total}"'


def test_a_cell_that_raises_is_reported_and_the_run_goes_on_past_it(run):
    raised, drift = run[0][1:3]
    assert (raised.message, raised.after_error) == ("KeyError: 'missing'", True)
    assert drift.changes == ["`0.6666` → `0.6667`"]  # a cell below the two that failed still ran


def test_a_new_warning_on_stderr_is_a_drift_that_says_strict_nbval_would_fail_the_cell(run):
    warned = run[0][-1]
    assert warned.message == "new output on stderr, which fails this cell under strict nbval"
    assert any(change.startswith("`stderr: ") and "UserWarning: a new warning" in change for change in warned.changes)


def test_the_canary_never_writes_the_notebooks(run):
    _, before, path = run
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_the_report_puts_each_finding_under_its_heading_with_notebook_and_section(run):
    found = run[0]
    text = canary.report(found, [], {}, [("torch", "2.13.0", "2.99.0")], "the CPU build", [run[2]], 1.0)
    claims, raised, drifted = (section(text, title) for title in ("Claims that moved", "Cells that raised", "Outputs"))
    assert "**planted.ipynb**, § 1. A claim that moved, cell 3" in claims and "1 + 1 makes 2" in claims
    assert "**planted.ipynb**, § 2. A call that raises, cell 5" in raised and "KeyError" in raised
    assert "**planted.ipynb**, § 3. A number that drifted, cell 7" in drifted and "`0.6667`" in drifted
    assert "| torch | 2.13.0 | 2.99.0 |" in text


def section(text, title):
    """The body of the report's `## ` section whose title starts with ``title``."""
    return re.search(rf"^## {title}.*?(?=^## |\Z)", text, re.M | re.S)[0]


def test_the_exit_status_is_1_for_a_moved_claim_or_a_raised_cell_and_0_for_drifted_output_alone(run):
    claim, raised, drift = run[0][:3]
    assert canary.exit_status([claim, raised, drift], [], {}) == 1
    assert canary.exit_status([claim], [], {}) == 1
    assert canary.exit_status([raised], [], {}) == 1
    assert canary.exit_status([drift], [], {}) == 0
    assert canary.exit_status([], [], {}) == 0


def test_a_run_that_stops_early_is_reported_at_the_cell_where_it_stopped():
    nb = planted()
    found = canary.findings("planted.ipynb", nb, nb, stopped=(5, "DeadKernelError: Kernel died"))
    assert kinds(found) == [("stopped", "2. A call that raises", 5)]
    assert canary.exit_status(found, [], {}) == 1


# --- Quoted lines, in planted source trees ----------------------------------------------------------------


def tree(root, files):
    for name, lines in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


OLD = {"lib/loss.py": ["def loss(x, mask):", "    total = (x * mask).sum()", "    return total / mask.sum()"]}
NEW = {
    "lib/loss.py": ["import torch", "", "def loss(x, mask):", "    total = (x * mask).sum()", "    return total"],
    "lib/utils.py": ["def helper():", "    return 1"],
}


def quote(line, *text):
    return Quote(notebook="nb.ipynb", library="lib", version="1.0", file="lib/loss.py", line=line, text=text)


@pytest.fixture
def trees(tmp_path):
    return tree(tmp_path / "old", OLD), tree(tmp_path / "new", NEW)


def test_a_quoted_line_that_still_reads_the_same_at_its_line_is_unchanged(trees):
    old, new = trees
    assert canary.locate(quote(1, "def loss(x, mask):"), old) == canary.Place("unchanged", "lib/loss.py", 1)


def test_a_quoted_line_found_at_another_line_is_moved_there(trees):
    old, new = trees
    lines = quote(1, "def loss(x, mask):", "total = (x * mask).sum()")
    assert canary.locate(lines, new) == canary.Place("moved", "lib/loss.py", 3)


def test_a_quoted_line_that_reads_differently_everywhere_is_gone(trees):
    old, new = trees
    assert canary.locate(quote(3, "return total / mask.sum()"), new) == canary.Place("gone")


def test_a_quoted_line_found_in_another_file_of_the_package_has_moved_there(trees):
    old, new = trees
    assert canary.locate(quote(7, "def helper():"), new) == canary.Place("moved", "lib/utils.py", 1)


def test_the_quote_check_reports_unchanged_moved_and_gone_and_fails_only_on_gone_or_misregistered(trees):
    old, new = trees
    same, moved, gone = (
        quote(1, "def loss(x, mask):"),
        quote(2, "total = (x * mask).sum()"),
        quote(3, "return total / mask.sum()"),
    )
    checks, failures = canary.check_quotes(
        [same, moved, gone], read_at=lambda lib, v: ("1.0", old), newest=lambda lib: ("2.0", new)
    )
    assert [(c.registered.state, c.now.state, c.now.line) for c in checks] == [
        ("unchanged", "moved", 3),
        ("unchanged", "moved", 4),
        ("unchanged", "gone", 0),
    ]
    text = "\n".join(canary.quote_section(checks, failures))
    assert "### lib: read at 1.0, checked in 2.0 (0 unchanged, 2 moved, 1 gone)" in text
    assert "| nb.ipynb | `lib/loss.py` | line 2 | moved to line 4 |" in text and "**gone**" in text
    assert canary.exit_status([], checks, failures) == 1
    assert canary.exit_status([], checks[:2], failures) == 0  # a moved line changes no claim of the release it names


def test_a_quote_that_does_not_read_as_registered_in_its_own_release_fails_the_canary(trees):
    old, new = trees
    wrong = quote(2, "def loss(x, mask):")
    checks, failures = canary.check_quotes(
        [wrong], read_at=lambda lib, v: ("1.0", old), newest=lambda lib: ("2.0", new)
    )
    assert checks[0].registered.state == "moved"
    assert "**not as registered** in lib 1.0" in "\n".join(canary.quote_section(checks, failures))
    assert canary.exit_status([], checks, failures) == 1


def test_a_library_that_could_not_be_fetched_fails_the_canary_and_says_why(trees):
    def offline(library, version=None):
        raise RuntimeError("pip could not download lib==1.0")

    checks, failures = canary.check_quotes([quote(1, "def loss(x, mask):")], read_at=offline, newest=offline)
    assert (checks, failures) == ([], {"lib": "pip could not download lib==1.0"})
    assert canary.exit_status([], checks, failures) == 1


# --- The table of quotes against the notebooks -------------------------------------------------------------

SPAN = r"\d+(?:\s*(?:–|-|to)\s*\d+)?"
CITED_LINES = re.compile(rf"\blines?\s+({SPAN}(?:\s+and\s+{SPAN})*)")
LINK = re.compile(r"github\.com/huggingface/(trl|transformers)/blob/v([\w.]+)/(?:src/)?([\w/]+\.py)#L(\d+)(?:-L(\d+))?")
LIBRARY_FILE = re.compile(r"`((?:trl|transformers)/[\w/]+\.py)`")


def markdown(name):
    return [cell.source for cell in nbformat.read(NOTEBOOKS[name], as_version=4).cells if cell.cell_type == "markdown"]


def citations(text):
    """The (first, last) line of each line cited in markdown: "line 927", "lines 948 to 957", "lines 3170 and
    3173", "lines 1400–1401 and 1506–1507", and links' "#L948-L957"."""
    found = []
    for match in CITED_LINES.finditer(text):
        for span in re.finditer(r"(\d+)(?:\s*(?:–|-|to)\s*(\d+))?", match[1]):
            found.append((int(span[1]), int(span[2] or span[1])))
    return found + [(int(m[4]), int(m[5] or m[4])) for m in LINK.finditer(text)]


def test_citations_are_read_in_each_form_the_notebooks_write_them():
    text = "lines 948 to 957, line 1459; lines 3170 and 3173 (lines 1400–1401 and 1506–1507); the lines below"
    assert citations(text) == [(948, 957), (1459, 1459), (3170, 3170), (3173, 3173), (1400, 1401), (1506, 1507)]
    link = "[line 927](https://github.com/huggingface/trl/blob/v1.16.0/trl/chat_template_utils.py#L927)"
    assert citations(link) == [(927, 927), (927, 927)]


def test_every_line_a_notebook_cites_is_registered_and_every_registered_line_is_cited():
    for name in NOTEBOOKS:
        cited = {span for cell in markdown(name) for span in citations(cell)}
        registered = {(q.line, q.last) for q in QUOTES if q.notebook == name and q.cited == "line"}
        assert cited - registered == set(), f"{name} cites lines that tools/quotes.py does not list"
        assert registered - cited == set(), f"tools/quotes.py lists lines of {name} that it no longer cites"


def test_every_trl_or_transformers_file_a_notebook_names_is_registered():
    for name in NOTEBOOKS:
        named = {path for cell in markdown(name) for path in LIBRARY_FILE.findall(cell)}
        assert named <= {q.file for q in QUOTES if q.notebook == name}, f"{name} names files not in tools/quotes.py"


def test_every_registered_quote_names_a_notebook_of_the_course():
    assert {q.notebook for q in QUOTES} <= set(NOTEBOOKS)


def test_a_link_to_a_quoted_line_points_at_the_registered_release_file_and_lines():
    for name in NOTEBOOKS:
        for library, version, file, first, last in (m.groups() for cell in markdown(name) for m in LINK.finditer(cell)):
            span = (int(first), int(last or first))
            assert any(
                (q.library, q.version, q.file, (q.line, q.last)) == (library, version, file, span) for q in QUOTES
            )


def test_the_cell_that_cites_a_line_names_its_file_and_the_release_it_was_read_at():
    for q in (q for q in QUOTES if q.cited == "line"):
        cells = [cell for cell in markdown(q.notebook) if (q.line, q.last) in citations(cell)]
        stem = pathlib.PurePosixPath(q.file).stem
        assert any(stem in cell and q.version in cell for cell in cells), f"{q.notebook}: {q.file}, {q.lines}"


def squeezed(text):
    return re.sub(r"\s+", "", text)


def test_what_a_notebook_shows_of_a_quote_is_in_the_quoted_lines_and_in_the_notebook():
    for q in (q for q in QUOTES if q.shown):
        assert squeezed(q.shown) in squeezed("".join(q.text)), f"{q.file}, {q.lines}: {q.shown!r}"
        assert any(squeezed(q.shown) in squeezed(cell) for cell in markdown(q.notebook)), f"{q.notebook}: {q.shown!r}"


def test_quoted_lines_are_registered_without_their_indentation():
    assert all(line == line.strip() for q in QUOTES for line in q.text)


@pytest.mark.parametrize("library", ["transformers", "torch"])
def test_each_quote_of_an_installed_library_reads_as_registered_in_the_installed_release(library):
    installed = importlib.metadata.distribution(library)
    for q in (q for q in QUOTES if q.library == library):
        assert canary.release(installed.version) == q.version, (
            f"{q.file}, {q.lines} was read in {library} {q.version}, {installed.version} is installed: "
            "read it again in the installed release and update tools/quotes.py and the notebook"
        )
        place = canary.locate(q, pathlib.Path(installed.locate_file("")))
        assert place.state == "unchanged", f"{q.file}, {q.lines} in {library} {q.version}: {place}"


def test_a_local_version_label_is_not_part_of_the_release():
    assert canary.release("2.13.0+cpu") == canary.release("2.13.0") == "2.13.0"


# --- The environment, the make target and the workflow -----------------------------------------------------


def test_the_canary_takes_the_newest_torch_transformers_numpy_and_matplotlib_and_everything_else_as_pinned():
    wanted = canary.requirements()
    assert {"torch", "transformers", "numpy", "matplotlib"} <= set(wanted)
    pinned = [line for line in wanted if line not in canary.LATEST]
    assert pinned and all("==" in line for line in pinned)
    assert "torch==2.99.0+cpu" in canary.requirements(torch="2.99.0+cpu")


def workflow(name):
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))


def triggers(data):
    return data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true


def test_the_canary_workflow_runs_weekly_and_on_demand_never_on_a_push_or_pull_request():
    on = triggers(workflow("canary.yml"))
    assert set(on) == {"schedule", "workflow_dispatch"}
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert (day, month) == ("*", "*") and weekday.isdigit()  # once a week


def test_the_canary_workflow_runs_make_canary_and_puts_the_report_in_the_job_summary_even_when_it_fails():
    (job,) = workflow("canary.yml")["jobs"].values()
    runs = [step.get("run", "").strip() for step in job["steps"]]
    assert "make canary" in runs
    (summary,) = [step for step in job["steps"] if "GITHUB_STEP_SUMMARY" in step.get("run", "")]
    assert summary.get("if") == "always()" and "canary-report.md" in summary["run"]
    assert job["steps"].index(summary) > runs.index("make canary")


def test_the_test_workflow_and_make_test_leave_the_canary_out():
    assert "canary" not in (ROOT / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_recipe = re.search(r"^test:.*?(?=^\S|\Z)", makefile, re.M | re.S)[0]
    assert "canary" not in test_recipe
    assert re.search(r"^canary:.*\n\t\$\(BIN\)/python tools/canary.py$", makefile, re.M)


def test_the_canary_environment_and_report_are_not_committed():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {".canary/", "canary-report.md"} <= set(ignored)


def test_the_canary_workflow_runs_on_the_newest_python_the_course_supports():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "lesson.cfg", encoding="utf-8")
    (job,) = workflow("canary.yml")["jobs"].values()
    (setup,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python")]
    assert setup["with"]["python-version"] == parser["python"]["newest"]
