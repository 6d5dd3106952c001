"""GLOSSARY.md: one entry per term, each with an anchor, and every link to it from the course resolves."""

import pathlib
import re

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
GLOSSARY = (ROOT / "GLOSSARY.md").read_text(encoding="utf-8")
ENTRIES = re.findall(r'^<a id="([a-z0-9-]+)"></a>\n### (.+)$', GLOSSARY, re.M)


def course_texts():
    """(where, text) for every notebook's markdown and every Markdown file at the top level."""
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        yield path.name, "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    for path in sorted(ROOT.glob("*.md")):
        yield path.name, path.read_text(encoding="utf-8")


def test_every_entry_is_a_heading_with_an_anchor_and_nothing_else_is_a_heading():
    headings = re.findall(r"^### .+$", GLOSSARY, re.M)
    assert len(ENTRIES) == len(headings) >= 20


def test_the_entries_are_in_alphabetical_order_with_unique_anchors():
    names = [re.sub(r"[^a-z0-9 ]", "", name.lower()) for _, name in ENTRIES]
    assert names == sorted(names)
    assert len({anchor for anchor, _ in ENTRIES}) == len(ENTRIES)


def test_every_link_to_the_glossary_names_an_entry_that_exists():
    anchors = {anchor for anchor, _ in ENTRIES}
    links = [(where, a) for where, text in course_texts() for a in re.findall(r"GLOSSARY\.md#([\w-]+)", text)]
    assert [(where, anchor) for where, anchor in links if anchor not in anchors] == []
