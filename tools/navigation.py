"""Write the repeated parts of every notebook and of the README from one place.

Run ``python tools/navigation.py`` after adding or renaming a notebook, and
``python tools/navigation.py --retarget owner/name [--branch main]`` (``make retarget``)
to point every badge, Colab fetch URL and clone command at a fork.

What it owns, and nothing else:
- in each notebook, the badge cell (first cell, tag ``lesson-badges``), the Colab set-up
  cell (first code cell, tag ``lesson-colab``; it fetches the lesson's modules that notebook
  needs), in a notebook that imports transformers the cell after it that installs the pinned version on
  Colab (tag ``lesson-transformers``), and the closing "Next" cell (tag ``lesson-next``);
- in README.md and WORKSHOP.md, the text between ``<!-- generated:NAME -->`` and
  ``<!-- /generated:NAME -->``.
The title, question and time of a notebook are read from its title cell, so the README's
lesson map and the workshop agenda never disagree with the notebooks.
"""

import argparse
import configparser
import pathlib
import re

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = ROOT / "lesson.cfg"
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
WORKSHOP = ROOT / "WORKSHOP.md"

BADGES, COLAB, NEXT, TRANSFORMERS = "lesson-badges", "lesson-colab", "lesson-next", "lesson-transformers"

COLAB_CELL = """\
# On Colab this notebook arrives alone: fetch the lesson's modules beside it.
# Everywhere else they are already here, and this cell does nothing.
import os
import sys

REPOSITORY = "{raw}"
MODULES = {modules}
if "google.colab" in sys.modules:
    import urllib.request

    for module in MODULES:  # to a temporary name first: an interrupted download leaves no broken module
        if not os.path.exists(module):
            urllib.request.urlretrieve(f"{{REPOSITORY}}/notebooks/{{module}}", module + ".part")
            os.replace(module + ".part", module)"""


TRANSFORMERS_CELL = """\
import importlib.metadata
import subprocess
import sys

CHECKED_WITH = "{version}"  # the transformers version in requirements.txt
if "google.colab" in sys.modules and importlib.metadata.version("transformers") != CHECKED_WITH:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"transformers=={{CHECKED_WITH}}"], check=True)"""


def pinned(package):
    """The exact version requirements.txt pins for ``package``."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    return re.search(rf"^{re.escape(package)}==(\S+)", text, re.M)[1]


def uses_transformers(nb):
    """Whether a notebook imports transformers (its own cells, solutions included)."""
    return bool(re.search(r"^\s*(?:from|import) transformers\b", "\n".join(c.source for c in nb.cells), re.M))


def modules():
    """The lesson's Python modules beside the notebooks."""
    return sorted(path.name for path in NOTEBOOKS.glob("*.py"))


def imports(source):
    """The names of the lesson's modules that ``source`` imports."""
    local = {name.removesuffix(".py") for name in modules()}
    return set(re.findall(r"^\s*(?:from|import) (\w+)", source, re.M)) & local


def needed_modules(path):
    """What the Colab cell of notebook ``path`` fetches: the lesson's modules it imports (solutions
    included), the checkers of its own exercises, and whatever those import in turn."""
    nb = nbformat.read(path, as_version=4)
    wanted = imports("\n".join(cell.source for cell in nb.cells))
    if "exercises" in wanted and (NOTEBOOKS / f"exercises_{path.name[:2]}.py").exists():
        wanted.add(f"exercises_{path.name[:2]}")  # exercises.py imports it by the exercise's name
    todo = list(wanted)
    while todo:
        for name in imports((NOTEBOOKS / f"{todo.pop()}.py").read_text(encoding="utf-8")) - wanted:
            wanted.add(name)
            todo.append(name)
    return sorted(f"{name}.py" for name in wanted)


def read_target():
    """Return ``(slug, branch)`` from lesson.cfg."""
    parser = configparser.ConfigParser()
    parser.read(CONFIG, encoding="utf-8")
    return parser["repository"]["slug"], parser["repository"]["branch"]


def write_target(slug, branch):
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", slug):
        raise SystemExit(f"REPO must look like owner/name, got {slug!r}")
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", branch):
        raise SystemExit(f"BRANCH must be a git branch name, got {branch!r}")
    text = CONFIG.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^slug = .*$", f"slug = {slug}", text)
    text = re.sub(r"(?m)^branch = .*$", f"branch = {branch}", text)
    CONFIG.write_text(text, encoding="utf-8", newline="\n")


def urls(slug, branch, name=None):
    """Every URL the lesson writes, for one notebook ``name`` (a file name) or none."""
    out = {
        "repo": f"https://github.com/{slug}",
        "raw": f"https://raw.githubusercontent.com/{slug}/{branch}",
        "binder_repo": f"https://mybinder.org/v2/gh/{slug}/{branch}",
    }
    if name:
        out["colab"] = f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/{name}"
        out["binder"] = f"https://mybinder.org/v2/gh/{slug}/{branch}?labpath=notebooks%2F{name}"
    return out


def notebook_paths():
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def frame(nb):
    """The title, question and minutes stated in a notebook's title cell."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            text = cell.source
            title = text.splitlines()[0][2:].strip()
            question = re.search(r"\*\*Question:\*\*\s*(.+)", text)
            minutes = re.search(r"\*\*Time:\*\*\s*(\d+)\s*min", text)
            return title, question and question.group(1).strip(), minutes and int(minutes.group(1))
    return None, None, None


def badges(slug, branch, name):
    u = urls(slug, branch, name)
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({u['colab']}) "
        f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({u['binder']})"
    )


def tagged(cell, tag):
    return tag in cell.get("metadata", {}).get("tags", [])


def place(nb, tag, cell_type, source, index):
    """Set the source of the cell tagged ``tag``, inserting it at ``index`` when missing."""
    for cell in nb.cells:
        if tagged(cell, tag):
            cell.source = source
            return
    maker = nbformat.v4.new_markdown_cell if cell_type == "markdown" else nbformat.v4.new_code_cell
    cell = maker(source, metadata={"tags": [tag]})
    cell.id = tag
    nb.cells.insert(len(nb.cells) if index is None else index, cell)


def write_if_changed(nb, path):
    """Write only a notebook whose text changes, so other notebooks' files are left alone."""
    text = nbformat.writes(nb) + "\n"
    if path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8", newline="\n")


def update_notebooks(slug, branch):
    paths = notebook_paths()
    titles = {p.name: frame(nbformat.read(p, as_version=4))[0] for p in paths}
    for i, path in enumerate(paths):
        nb = nbformat.read(path, as_version=4)
        place(nb, BADGES, "markdown", badges(slug, branch, path.name), 0)
        first_code = next((j for j, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        listed = ", ".join(f'"{module}"' for module in needed_modules(path))
        colab = COLAB_CELL.format(raw=urls(slug, branch)["raw"], modules=f"[{listed}]")
        place(nb, COLAB, "code", colab, first_code)
        if uses_transformers(nb):  # Colab ships its own transformers: install the pinned one there
            after_colab = next(j for j, c in enumerate(nb.cells) if tagged(c, COLAB)) + 1
            place(nb, TRANSFORMERS, "code", TRANSFORMERS_CELL.format(version=pinned("transformers")), after_colab)
        if i + 1 < len(paths):
            nxt = paths[i + 1].name
            text = f"**Next:** [{titles[nxt]}]({nxt})"
        else:
            text = "**Next:** this is the last notebook; back to the [lesson map](../README.md#lesson-map)."
        if i > 0:
            text += f" · **Previous:** [{titles[paths[i - 1].name]}]({paths[i - 1].name})"
        place(nb, NEXT, "markdown", text, None)
        write_if_changed(nb, path)


def binder_lesson_badge(slug, branch):
    """A Binder badge that opens JupyterLab on the notebooks folder."""
    url = urls(slug, branch)["binder_repo"] + "?urlpath=lab%2Ftree%2Fnotebooks"
    return f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({url})"


def readme_blocks(slug, branch):
    u = urls(slug, branch)
    rows = ["| # | Notebook | The question it answers | Minutes | Open |", "|---|---|---|---|---|"]
    for path in notebook_paths():
        title, question, minutes = frame(nbformat.read(path, as_version=4))
        rows.append(
            f"| {path.name[:2]} | [{title}](notebooks/{path.name}) | {question} | {minutes} "
            f"| {badges(slug, branch, path.name)} |"
        )
    top = binder_lesson_badge(slug, branch)
    if paths := notebook_paths():  # Colab opens one notebook: the first; the map links the others
        colab = urls(slug, branch, paths[0].name)["colab"]
        top = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) {top}"
    return {
        "badges": top,
        "lesson-map": "\n".join(rows),
        "clone": "\n".join(
            [
                "```bash",
                f"git clone {u['repo']}.git",
                f"cd {slug.split('/')[1]}",
                "make lab    # or: make test",
                "```",
            ]
        ),
    }


def workshop_blocks(slug, branch):
    """The agenda (start times from each notebook's minutes), the Binder link and the clone steps."""
    rows = ["| Starts at | Notebook | Minutes | Open on Colab |", "|---|---|---|---|"]
    start = 0
    for path in notebook_paths():
        title, _, minutes = frame(nbformat.read(path, as_version=4))
        colab = urls(slug, branch, path.name)["colab"]
        clock = f"{start // 60}:{start % 60:02d}"
        rows.append(f"| {clock} | [{title}](notebooks/{path.name}) | {minutes} | [Colab]({colab}) |")
        start += minutes or 0
    rows.append(f"| {start // 60}:{start % 60:02d} | end: {start} min of notebooks | | |")
    clone = readme_blocks(slug, branch)["clone"]
    return {"agenda": "\n".join(rows), "binder": binder_lesson_badge(slug, branch), "clone": clone}


def update_document(path, blocks):
    """Rewrite the generated blocks of one Markdown file; each must have its markers."""
    old = path.read_text(encoding="utf-8")
    text = old
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{path.name} lacks the markers for the generated block {name!r}")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    if text != old:
        path.write_text(text, encoding="utf-8", newline="\n")


def update_readme(slug, branch):
    update_document(README, readme_blocks(slug, branch))
    if WORKSHOP.exists():
        update_document(WORKSHOP, workshop_blocks(slug, branch))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retarget", metavar="OWNER/NAME", help="point everything at this repository")
    parser.add_argument("--branch", help="branch for badges and the Colab fetch (default: keep)")
    args = parser.parse_args()
    slug, branch = read_target()
    if args.retarget or args.branch:
        slug, branch = args.retarget or slug, args.branch or branch
        write_target(slug, branch)
    update_notebooks(slug, branch)
    update_readme(slug, branch)
    print(f"badges, Colab cells, README and WORKSHOP now point at {slug} ({branch})")


if __name__ == "__main__":
    main()
