"""tools/execute.py (`make execute`, `make check-outputs`): what it stores, and what its check compares."""

import os
import subprocess
import sys

import nbformat

import execute


def notebook(*outputs, tags=()):
    cells = [nbformat.v4.new_code_cell("x", outputs=[o], metadata={"tags": list(tags)}) for o in outputs]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"  # as in a stored notebook: the same cell keeps its id from run to run
    return nbformat.v4.new_notebook(cells=cells)


def printed(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def test_the_check_names_the_cell_and_the_line_that_drifted():
    stored, rerun = notebook(printed("A 1.0058\n")), notebook(printed("A 1.0059\n"))
    assert execute.first_differences(stored, rerun) == ["cell 0: 'A 1.0058' -> 'A 1.0059'"]


def test_the_check_ignores_cells_tagged_as_varying_and_says_when_only_a_figure_changed():
    figure = nbformat.v4.new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})
    other = nbformat.v4.new_output("display_data", data={"image/png": "BBBB", "text/plain": "<Figure>"})
    assert execute.first_differences(notebook(printed("1\n"), tags=[execute.VARIES]), notebook(printed("2\n"))) == []
    assert execute.first_differences(notebook(figure), notebook(other)) == [
        "cell 0: a figure or another output differs"
    ]


def test_a_notebook_that_differs_only_in_varying_cells_is_the_same_for_the_check():
    assert execute.without_varying_outputs(notebook(printed("1.2 ms\n"), tags=[execute.VARIES])) == (
        execute.without_varying_outputs(notebook(printed("3.4 ms\n"), tags=[execute.VARIES]))
    )


def test_prints_split_by_the_kernel_are_stored_as_one_output():
    assert [o.text for o in execute.merge_streams([printed("a"), printed("b\n")])] == ["ab\n"]


def test_the_other_cpu_that_the_check_plays_is_honoured_by_the_installed_torch():
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {**os.environ, **execute.ANOTHER_CPU}
    shown = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "DEFAULT"


def test_execute_keeps_a_notebook_whose_tagged_cells_alone_changed_unless_forced(tmp_path, monkeypatch):
    path = tmp_path / "nb.ipynb"
    stored = execute.text(notebook(printed("1.2 ms\n"), tags=[execute.VARIES]))
    path.write_text(stored, encoding="utf-8")
    monkeypatch.setattr(execute, "run", lambda p: (notebook(printed("3.4 ms\n"), tags=[execute.VARIES]), 0.0))
    execute.execute(path)
    assert path.read_text(encoding="utf-8") == stored
    execute.execute(path, force=True)
    assert "3.4 ms" in path.read_text(encoding="utf-8")


def test_storing_outputs_keeps_the_set_up_cells_collapsed_view_and_drops_other_editor_metadata():
    nb = notebook(printed("1\n"), printed("2\n"))
    nb.cells[0].metadata = {"tags": ["lesson-colab"], "jupyter": {"source_hidden": True}}
    nb.cells[1].metadata = {"tags": ["x"], "jupyter": {"source_hidden": True}, "collapsed": True}
    execute.normalise(nb)
    assert nb.cells[0].metadata == {"tags": ["lesson-colab"], "jupyter": {"source_hidden": True}}
    assert nb.cells[1].metadata == {"tags": ["x"]}
