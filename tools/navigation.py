"""Write the repeated parts of every notebook and of the README from one place.

Run ``python tools/navigation.py`` after adding or renaming a notebook, and
``python tools/navigation.py --retarget owner/name [--branch main]`` (``make retarget``)
to point every badge, Colab fetch URL and clone command at a fork.

What it owns, and nothing else:
- in each notebook, the badge cell (first cell, tag ``lesson-badges``), the Colab set-up
  cell (first code cell, tag ``lesson-colab``, shown collapsed in JupyterLab; on Colab it fetches the
  course's files that notebook needs and, in a notebook that imports transformers, installs the pinned
  version), and the closing "Next" cell (tag ``lesson-next``: next and previous notebook, and the symptom
  index, TROUBLESHOOTING.md);
- in README.md and WORKSHOP.md, the text between ``<!-- generated:NAME -->`` and
  ``<!-- /generated:NAME -->``.
The title, question and time of a notebook are read from its title cell, so the README's
lesson map and the workshop agenda never disagree with the notebooks.
"""

import argparse
import ast
import configparser
import functools
import pathlib
import re

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = ROOT / "lesson.cfg"
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = NOTEBOOKS / "course"
README = ROOT / "README.md"
WORKSHOP = ROOT / "WORKSHOP.md"

BADGES, COLAB, NEXT = "lesson-badges", "lesson-colab", "lesson-next"
# Every notebook ends with a way into the symptom index at the repository's root.
SYMPTOMS = (
    "**Stuck on a symptom?** [The symptom index](../TROUBLESHOOTING.md) goes from what you see "
    "to the section that explains it. **A term you have not met?** [The glossary](../GLOSSARY.md)."
)
# The Colab cell is plumbing: JupyterLab shows it collapsed to one line (click it to read it).
HIDDEN = {"jupyter": {"source_hidden": True}}

COLAB_CELL = """\
# On Colab this notebook arrives alone: fetch the course's modules beside it{also}.
# Anywhere else they are already here, and this cell does nothing.
import sys

if "google.colab" in sys.modules:
{imports}
    FOLDER = "{raw}/notebooks"
    FILES = {files}
    os.makedirs("course", exist_ok=True)
    for name in FILES:  # to a temporary name first: an interrupted download leaves no broken module
        if not os.path.exists(name):
            urllib.request.urlretrieve(f"{{FOLDER}}/{{name}}", name + ".part")
            os.replace(name + ".part", name){install}"""

TRANSFORMERS_INSTALL = """
    CHECKED_WITH = "{version}"  # the transformers version in requirements.txt
    if importlib.metadata.version("transformers") != CHECKED_WITH:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"transformers=={{CHECKED_WITH}}"], check=True)"""


def pinned(package):
    """The exact version requirements.txt pins for ``package``."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    return re.search(rf"^{re.escape(package)}==(\S+)", text, re.M)[1]


def uses_transformers(nb):
    """Whether a notebook imports transformers (its own cells, solutions included)."""
    return bool(re.search(r"^\s*(?:from|import) transformers\b", "\n".join(c.source for c in nb.cells), re.M))


def colab_cell(raw, files, transformers=None):
    """The Colab set-up cell: fetch ``files`` (paths under notebooks/) and, when given, install that
    transformers version where Colab has another."""
    also = " (and the transformers it was checked with)" if transformers else ""
    modules = ["importlib.metadata", "os", "subprocess", "urllib.request"] if transformers else ["os", "urllib.request"]
    imports = "".join(f"    import {module}\n" for module in modules)
    install = TRANSFORMERS_INSTALL.format(version=transformers) if transformers else ""
    listed = "[" + ", ".join(f'"{name}"' for name in files) + "]"
    if len(f"    FILES = {listed}") > 120:  # as ruff formats it, so `ruff format --check` passes
        listed = "[\n" + "".join(f'        "{name}",\n' for name in files) + "    ]"
    return COLAB_CELL.format(also=also, imports=imports, raw=raw, files=listed, install=install)


def modules():
    """The course's Python files, as paths under notebooks/: the package's modules and the take-home checker."""
    found = [f"course/{path.name}" for path in PACKAGE.glob("*.py")]
    return sorted(found + [path.name for path in NOTEBOOKS.glob("*.py")])


@functools.cache  # the package does not change while this runs; imports() asks for it once per file
def _exports():
    """``{name: module}`` for every public name a module of the package lists in ``__all__``."""
    out = {}
    for path in PACKAGE.glob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                out.update(dict.fromkeys(ast.literal_eval(node.value), path.stem))
    return out


def imports(source):
    """The course's files (paths under notebooks/) that ``source`` imports, directly."""
    exports, wanted = _exports(), set()
    for module, names in re.findall(r"^\s*from course(?:\.(\w+))? import \(?\s*([\w, ]*)", source, re.M):
        wanted.add("course/__init__.py")
        for name in [module] if module else [n.split(" as ")[0].strip() for n in names.split(",")]:
            home = name if (PACKAGE / f"{name}.py").exists() else exports.get(name)
            if home:
                wanted.add(f"course/{home}.py")
    wanted |= {f"course/{m}.py" for m in re.findall(r"^\s*import course\.(\w+)", source, re.M)}
    top = {path.stem for path in NOTEBOOKS.glob("*.py")}
    wanted |= {f"{m}.py" for m in re.findall(r"^\s*(?:from|import) (\w+)", source, re.M) if m in top}
    return wanted


def needed_modules(path):
    """What the Colab cell of notebook ``path`` fetches: the course's files it imports (solutions
    included), the checkers of its own exercises, and whatever those import in turn."""
    nb = nbformat.read(path, as_version=4)
    wanted = imports("\n".join(cell.source for cell in nb.cells))
    own = f"course/exercises_{path.name[:2]}.py"
    if "course/exercises.py" in wanted and (NOTEBOOKS / own).exists():
        wanted.add(own)  # exercises.py imports it by the exercise's name
    todo = list(wanted)
    while todo:
        for name in imports((NOTEBOOKS / todo.pop()).read_text(encoding="utf-8")) - wanted:
            wanted.add(name)
            todo.append(name)
    return sorted(wanted)


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


def checked_with(nb, name):
    """The versions a notebook's claims were checked with: torch, transformers where it uses or quotes it, and
    the libraries it quotes but does not install (trl), from requirements.txt and tools/quotes.py."""
    import quotes  # tools/quotes.py, beside this file

    cited = {(q.library, q.version) for q in quotes.QUOTES if q.notebook == name}
    parts = [f"torch {pinned('torch')}"]
    if uses_transformers(nb) or any(library == "transformers" for library, _ in cited):
        parts.append(f"transformers {pinned('transformers')}")
    quoted = sorted(f"{library} {version}" for library, version in cited if library not in ("torch", "transformers"))
    text = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    if quoted:
        text += f"; it quotes the source of {', '.join(quoted)} (not installed)"
    return f"*Checked with {text}.*"


def tagged(cell, tag):
    return tag in cell.get("metadata", {}).get("tags", [])


def place(nb, tag, cell_type, source, index, metadata=None):
    """Set the source (and extra metadata) of the cell tagged ``tag``, inserting it at ``index`` when missing."""
    for cell in nb.cells:
        if tagged(cell, tag):
            cell.source = source
            cell.metadata = {"tags": cell.metadata.get("tags", [tag]), **(metadata or {})}
            return
    maker = nbformat.v4.new_markdown_cell if cell_type == "markdown" else nbformat.v4.new_code_cell
    cell = maker(source, metadata={"tags": [tag], **(metadata or {})})
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
        place(nb, BADGES, "markdown", badges(slug, branch, path.name) + "\n\n" + checked_with(nb, path.name), 0)
        nb.cells = [c for c in nb.cells if not tagged(c, "lesson-transformers")]  # folded into the Colab cell
        first_code = next((j for j, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        transformers = pinned("transformers") if uses_transformers(nb) else None
        colab = colab_cell(urls(slug, branch)["raw"], needed_modules(path), transformers)
        place(nb, COLAB, "code", colab, first_code, HIDDEN)
        if i + 1 < len(paths):
            nxt = paths[i + 1].name
            text = f"**Next:** [{titles[nxt]}]({nxt})"
        else:
            text = "**Next:** this is the last notebook; back to the [lesson map](../README.md#lesson-map)."
        if i > 0:
            text += f" · **Previous:** [{titles[paths[i - 1].name]}]({paths[i - 1].name})"
        text += "\n\n" + SYMPTOMS
        place(nb, NEXT, "markdown", text, None)
        write_if_changed(nb, path)


def binder_lesson_badge(slug, branch):
    """A Binder badge that opens JupyterLab on the first notebook, its file browser in the notebooks folder."""
    first = notebook_paths()[0].name if notebook_paths() else ""
    url = urls(slug, branch)["binder_repo"] + f"?urlpath=lab%2Ftree%2Fnotebooks%2F{first}"
    return f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({url})"


def hours(minutes):
    """Minutes as a reader would say them, to the half hour: "11 hours", "2 and a half hours"."""
    halves = round(minutes / 30)
    whole, half = divmod(halves, 2)
    return f"{whole} and a half hours" if half else f"{whole} hour{'s' if whole != 1 else ''}"


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
    minutes = {path.name[:2]: frame(nbformat.read(path, as_version=4))[2] or 0 for path in notebook_paths()}
    core = sum(m for number, m in minutes.items() if number <= "04")
    length = (
        f"The whole course takes about {hours(sum(minutes.values()))}, reading and exercises at a newcomer's "
        f"pace; notebooks 00 to 04 are the core (about {hours(core)})"
    )
    return {
        "badges": top,
        "length": length,
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
    core = sum(frame(nbformat.read(p, as_version=4))[2] or 0 for p in notebook_paths() if p.name[:2] <= "04")
    return {
        "agenda": "\n".join(rows),
        "binder": binder_lesson_badge(slug, branch),
        "clone": clone,
        "core": f"Notebooks 00 to 04, the core, take {hours(core)} of notebook minutes",
    }


def update_document(path, blocks):
    """Rewrite the generated blocks of one Markdown file; each must have its markers. A block whose opening
    marker ends its line is written as lines; one whose marker is followed by text, inline."""
    old = path.read_text(encoding="utf-8")
    text = old
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->)(\n?).*?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{path.name} lacks the markers for the generated block {name!r}")
        text = pattern.sub(lambda m, body=body: m.group(1) + m.group(2) + body + m.group(2) + m.group(3), text)
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
