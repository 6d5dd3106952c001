"""Every notebook is clean (runs as recorded, no stray metadata) and framed like a chapter.

Strict nbval runs the notebooks themselves; these tests check what nbval does not.
"""

import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [path.name for path in NOTEBOOKS]


def load(path):
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def markdown(nb):
    return "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_the_lesson_has_notebooks_numbered_from_00_without_gaps():
    assert [name[:2] for name in IDS] == [f"{i:02d}" for i in range(len(IDS))]
    assert len(IDS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_valid_nbformat_4(path):
    nb = load(path)
    assert nb.nbformat == 4
    nbformat.validate(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_on_the_python3_kernel(path):
    assert load(path).metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_was_executed_top_to_bottom_in_a_fresh_kernel(path):
    counts = [cell.execution_count for cell in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1)), "run `make execute` to refresh the outputs"


# An error shown on purpose is caught and its one line printed (`IndexError: Target -1 is out of bounds.`):
# a stored error, or a cell tagged raises-exception, stops "Run all" in front-ends that do not honour the tag,
# and `%xmode` would change how every later error of the session is shown.


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_stores_no_error_output(path):
    for cell in code_cells(load(path)):
        assert not [out for out in cell.outputs if out.output_type == "error"], cell.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_tags_no_cell_raises_exception(path):
    for cell in load(path).cells:
        assert "raises-exception" not in tags(cell), cell.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_leaves_the_exception_mode_of_the_session_alone(path):
    for cell in code_cells(load(path)):
        assert "%xmode" not in cell.source, cell.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_prints_nothing_on_stderr(path):
    for cell in code_cells(load(path)):
        assert not [out for out in cell.outputs if out.get("name") == "stderr"], cell.source[:80]


# What a stored output must never hold: it would belong to the machine that ran the notebook.
MACHINE_SPECIFIC = re.compile(
    r"/home/|/Users/|/root/|/tmp/|/private/var/|/usr/(?:local/)?lib/|\b[A-Za-z]:\\"  # absolute paths
    r"|(?<![\w.:/])/(?:[\w.-]+/){2,}"  # any other absolute path with two folders or more (not a URL)
    r"|site-packages|dist-packages|\.venv\b|virtualenv"  # installed libraries
    r"|File \"[^\"]*\.py\", line \d+|\.py:\d+"  # a library file and line (a traceback frame)
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def output_texts(cell):
    """Every piece of text a code cell's stored outputs show a reader, colour codes removed."""
    for out in cell.get("outputs", []):
        pieces = [out.get("text", ""), out.get("ename", ""), out.get("evalue", ""), *out.get("traceback", [])]
        pieces += [value for key, value in out.get("data", {}).items() if key.startswith("text/")]
        yield from (ANSI.sub("", "".join(piece) if isinstance(piece, list) else piece) for piece in pieces)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_outputs_hold_no_path_library_file_or_line_of_the_machine_that_ran_them(path):
    for cell in code_cells(load(path)):
        for text in output_texts(cell):
            assert not MACHINE_SPECIFIC.search(text), f"{cell.source[:60]!r} printed {text[:200]!r}"


def test_the_portability_check_catches_a_traceback_through_a_library():
    frame = '  File "/opt/env/lib/python3.11/site-packages/torch/nn/functional.py", line 3555, in cross_entropy'
    cell = {"outputs": [{"output_type": "error", "ename": "E", "evalue": "x", "traceback": [frame]}]}
    assert MACHINE_SPECIFIC.search(next(t for t in output_texts(cell) if t.startswith("  File")))
    assert MACHINE_SPECIFIC.search("written to /srv/lesson/notebooks/out.pt")
    for harmless in ("IndexError: Target -1 is out of bounds.", "1000 / 3 = 333.3333", "https://github.com/a/b/c"):
        assert not MACHINE_SPECIFIC.search(harmless), harmless


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_carries_no_editor_or_colab_metadata(path):
    nb = load(path)
    assert set(nb.metadata) <= {"kernelspec", "language_info"}
    for cell in nb.cells:
        allowed = {"tags", "jupyter"} if "lesson-colab" in tags(cell) else {"tags"}  # the set-up cell shows collapsed
        assert set(cell.metadata) <= allowed, f"cell {cell.id} has metadata {sorted(cell.metadata)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_file_stays_under_500_kb(path):
    assert path.stat().st_size < 500_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_opens_with_title_question_time_assumptions_and_objectives(path):
    nb = load(path)
    title_cell = next(cell for cell in nb.cells if cell.cell_type == "markdown" and cell.source.startswith("# "))
    text = title_cell.source
    assert text.startswith(f"# {path.name[:2]} · ")
    assert re.search(r"\*\*Question:\*\* \S", text)
    assert re.search(r"\*\*Time:\*\* \d+ min", text)
    assert "**Assumes:**" in text
    assert re.search(r"## Learning objectives\n(.*\n)?- ", text)


def reading_load(nb):
    """(words of prose, lines of code) a reader goes through; solutions, starters and generated cells left out."""
    words = lines = 0
    for cell in nb.cells:
        if {"lesson-badges", "lesson-colab", "lesson-next", "exercise"} & set(tags(cell)):
            continue
        if cell.cell_type == "markdown":
            words += len(re.sub(r"<details>.*?</details>", "", cell.source, flags=re.S).split())
        else:
            lines += sum(1 for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#"))
    return words, lines


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_states_an_honest_time_reading_plus_exercises(path):
    nb = load(path)
    stated = re.search(r"\*\*Time:\*\* (\d+) min \((\d+) reading, (\d+) exercises\)", nb.cells[1].source)
    assert stated, "state the time as: **Time:** N min (R reading, E exercises)"
    total, reading, exercises = map(int, stated.groups())
    words, lines = reading_load(nb)
    assert reading >= words / 200 + lines / 15, f"{words} words and {lines} lines of code take longer to read"
    assert exercises == sum(map(int, re.findall(r"^### Exercise \d .*\((\d+) min\)$", markdown(nb), re.M)))
    assert total == reading + exercises


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_ends_with_key_points_then_exercises_with_solutions(path):
    text = markdown(load(path))
    assert "## Key points" in text and "## Exercises" in text
    assert text.index("## Key points") < text.index("## Exercises")
    exercises = len(re.findall(r"^### Exercise \d", text, re.M))
    assert 1 <= exercises <= 3
    assert text.count("<details><summary>Solution</summary>") == exercises


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_links_to_the_next_one(path):
    last = load(path).cells[-1]
    assert "lesson-next" in tags(last)
    index = IDS.index(path.name)
    if index + 1 < len(IDS):
        assert f"]({IDS[index + 1]})" in last.source
    else:
        assert "README.md" in last.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_links_only_to_notebooks_that_exist(path):
    for target in re.findall(r"\]\((?!https?:)([^)#\s]+\.ipynb)", markdown(load(path))):
        assert (path.parent / target).exists(), target


def test_readme_lesson_map_names_every_notebook_in_order():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lesson_map = readme[readme.index("## Lesson map") :]
    positions = [lesson_map.find(f"(notebooks/{name})") for name in IDS]
    assert -1 not in positions, "run `python tools/navigation.py` to refresh the lesson map"
    assert positions == sorted(positions)
