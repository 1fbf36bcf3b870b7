"""The README is a short front door into docs/, and no relative link of the README, of
BENCHMARKS.md or of a docs page points to a file or heading that is not there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINKED = [README, ROOT / "BENCHMARKS.md", *PAGES]  # the files whose links are checked
MAX_README_LINES = 250

# [text](target) and ![alt](target); a target ends at whitespace (an optional "title") or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
EXTERNAL = ("http://", "https://", "mailto:")


def link_targets(path: Path) -> list[str]:
    """The relative link targets of a Markdown file outside code blocks and code spans
    (external addresses left out), each with its anchor if it has one."""
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)
    return [target for target in LINK.findall(text) if not target.startswith(EXTERNAL)]


def relative_links(path: Path) -> list[str]:
    """The files a Markdown file links to (pure anchors and the anchor part left out)."""
    return [target.split("#")[0] for target in link_targets(path) if not target.startswith("#")]


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings, as GitHub writes them: lower case,
    punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_readme_is_at_most_250_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, len(lines)


def test_the_readme_has_a_contents_table_of_every_docs_page():
    text = README.read_text()
    section = re.search(r"^## Documentation\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, "the README has no '## Documentation' section"
    rows = [line for line in section.group(1).splitlines() if line.startswith("| [")]
    linked = {target for row in rows for target in LINK.findall(row)}
    pages = {f"docs/{page.name}" for page in PAGES}
    assert pages <= linked, sorted(pages - linked)


@pytest.mark.parametrize("path", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(path):
    missing = [target for target in relative_links(path) if not (path.parent / target).exists()]
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"


@pytest.mark.parametrize("path", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_anchor_of_a_link_names_a_heading_of_its_page(path):
    broken = []
    for target in link_targets(path):
        file, _, anchor = target.partition("#")
        page = path.parent / file if file else path
        if anchor and page.suffix == ".md" and page.exists() and anchor not in anchors(page):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing headings: {broken}"


def test_the_link_finder_finds_links_and_images(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        'See [a](a.md#x), ![b](img/b.png "title"), [c](https://example.org), [d](#local)\n'
        "`[e](not-a-link.md)`\n```\n[f](in-a-block.md)\n```\n"
    )
    assert relative_links(page) == ["a.md", "img/b.png"]
    page.write_text("# The page\n\n## Fair budgets, `callbacks=x` (2005)\n")
    assert anchors(page) == {"the-page", "fair-budgets-callbacksx-2005"}


def test_the_convention_table_has_one_row_per_tested_convention():
    """docs/penalties.md, "Conventions of other libraries": the rows that
    tests/test_conventions.py checks, no more and no fewer."""
    text = (ROOT / "docs" / "penalties.md").read_text()
    section = text[text.index("## Conventions of other libraries") :]
    section = section[: section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| other")]
    first_cells = [row.split("|")[1] for row in rows]
    expected = ["Lasso", "ElasticNet", "Ridge", "LogisticRegression", "2 classes", "SGD", "L1L2", "textbook"]
    assert len(first_cells) == len(expected), first_cells
    for cell, name in zip(first_cells, expected, strict=True):
        assert name in cell, (cell, name)
