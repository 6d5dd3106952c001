"""TROUBLESHOOTING.md, the symptom index: every link lands, every tag exists, every number is the course's own.

Offline and fast: it reads the Markdown page, the notebooks' stored outputs and label_checks.py's docstring.
"""

import pathlib
import re

import nbformat
import pytest

import label_checks

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "TROUBLESHOOTING.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [path.name for path in NOTEBOOKS]

ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
LINK = re.compile(r"\]\(([^)\s]+)\)")  # the target of every Markdown link
CODE = re.compile(r"`([^`]+)`")
TAG = re.compile(r"(?<![\w\]])\[([a-z]+(?:-[a-z]+)*)\]")  # [no-target] as check_labels writes it; not labels[kept]
FIELDS = ("Cause", "Seen in", "Caught by", "Fix")


def text():
    """The page as a reader sees it: without the HTML comment for contributors."""
    return re.sub(r"<!--.*?-->", "", PAGE.read_text(encoding="utf-8"), flags=re.S)


def load(path):
    return nbformat.read(path, as_version=4)


def anchors(nb):
    """Every explicit anchor in a notebook's markdown cells, in order (duplicates kept)."""
    return [a for cell in nb.cells if cell.cell_type == "markdown" for a in ANCHOR.findall(cell.source)]


def squeeze(s):
    return " ".join(s.split())


def stored_output(path):
    """All the text a notebook's stored outputs show, whitespace squeezed."""
    pieces = []
    for cell in load(path).cells:
        for out in cell.get("outputs", []):
            pieces.append(out.get("text", ""))
            pieces.append(out.get("data", {}).get("text/plain", ""))
    return squeeze("\n".join("".join(p) if isinstance(p, list) else p for p in pieces))


def entries():
    """{anchor: {field: text}} for every symptom: a `### <a id="...">` heading and its bullet fields."""
    found = {}
    for block in re.split(r"^### ", text(), flags=re.M)[1:]:
        anchor = ANCHOR.match(block)
        assert anchor, f"a symptom heading without its anchor: {block.splitlines()[0]!r}"
        fields = dict(re.findall(r"^- \*\*(.+?):\*\* (.*?)(?=^- \*\*|^#|\Z)", block, flags=re.M | re.S))
        found[anchor.group(1)] = fields
    return found


def label_check_tags():
    """The tags check_labels can write: those its table WHAT explains, and [dtype], which it writes itself."""
    return set(label_checks.WHAT) | {"dtype"}


def notebook_links(s):
    return [target for target in LINK.findall(s) if target.split("#")[0].endswith(".ipynb")]


def test_the_page_lists_at_least_20_symptoms_each_with_cause_section_tag_and_fix():
    found = entries()
    assert len(found) >= 20, f"{len(found)} symptoms"
    for anchor, fields in found.items():
        assert tuple(fields) == FIELDS, f"{anchor}: fields {list(fields)}, expected {list(FIELDS)}"


@pytest.mark.parametrize("target", sorted(set(notebook_links(text()))))
def test_each_link_to_a_notebook_names_an_anchor_that_exists_in_it(target):
    path, _, anchor = target.partition("#")
    assert (ROOT / path).is_file(), f"no notebook {path}"
    assert anchor, f"{target}: link to a section (#NN-name), not to the whole notebook"
    assert anchor in anchors(load(ROOT / path)), f"{path} has no <a id={anchor!r}>"


def test_every_other_relative_link_on_the_page_resolves():
    page_anchors = set(ANCHOR.findall(text()))
    for target in LINK.findall(text()):
        if target.startswith(("http://", "https://")) or target.split("#")[0].endswith(".ipynb"):
            continue
        if target.startswith("#"):
            assert target[1:] in page_anchors, f"no <a id={target[1:]!r}> on the page"
        else:
            assert (ROOT / target.split("#")[0]).exists(), target


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_each_anchor_is_unique_within_its_notebook(path):
    found = anchors(load(path))
    assert len(found) == len(set(found)), sorted({a for a in found if found.count(a) > 1})


def test_the_page_anchors_are_unique():
    found = ANCHOR.findall(text())
    assert len(found) == len(set(found)), sorted({a for a in found if found.count(a) > 1})


def test_every_tag_the_page_cites_exists_in_label_checks():
    known = label_check_tags()
    assert {"no-target", "end-not-trained"} <= known  # the docstring was read
    cited = {tag for span in CODE.findall(text()) for tag in TAG.findall(span)}
    assert cited, "the page cites no tag"
    assert cited <= known, f"not in label_checks.py: {sorted(cited - known)}"


@pytest.mark.parametrize("anchor", sorted(entries()))
def test_each_symptom_cites_a_tag_or_says_none_applies(anchor):
    caught = entries()[anchor]["Caught by"]
    assert TAG.search(caught) or caught.startswith("no tag"), f"{anchor}: {caught[:80]!r}"


@pytest.mark.parametrize("anchor", sorted(entries()))
def test_each_symptom_quotes_numbers_its_linked_notebooks_print(anchor):
    """Every `quoted` piece of a "Seen in" line appears in the stored output of a notebook that line links to."""
    seen = entries()[anchor]["Seen in"]
    paths = {target.split("#")[0] for target in notebook_links(seen)}
    assert paths, f"{anchor}: links no notebook section"
    outputs = [stored_output(ROOT / path) for path in sorted(paths)]
    quotes = CODE.findall(seen)  # on this line, code spans are quoted output only
    assert quotes, f"{anchor}: quotes no number from the course"
    for quote in quotes:
        assert any(squeeze(quote) in out for out in outputs), f"{anchor}: {quote!r} is printed in none of {paths}"


def test_the_number_check_catches_a_quote_the_notebook_does_not_print():
    out = stored_output(ROOT / "notebooks" / "04_reduction_modes.ipynb")
    assert squeeze("mean nan   sum 0.0") in out and squeeze("mean nan sum 0.1") not in out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_each_notebook_ends_with_a_link_to_the_symptom_index(path):
    last = load(path).cells[-1]
    assert "lesson-next" in last.metadata.get("tags", [])
    assert "](../TROUBLESHOOTING.md)" in last.source
