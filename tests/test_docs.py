"""Runs every ```python block of the docs, each in a fresh namespace.

The docs are README.md and every ``docs/*.md`` (a glob, so a new page is
tested as soon as it exists). A block preceded (on the line before its
opening fence, blank lines allowed) by the HTML comment ``<!-- no-test -->``
is skipped. Each block is its own test, named ``<file>-block<index>``; a
failing assert or exception fails it, with a traceback that points at the
block's lines. Every relative link of these pages must resolve too, its
``#anchor`` included.
"""

from __future__ import annotations

import re
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def doc_files():
    """The pages whose blocks run: every ``docs/*.md``, sorted, then ``README.md``."""
    pages = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("*.md"))
    return (*pages, "README.md")


DOC_FILES = doc_files()

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_NO_TEST = "<!-- no-test -->"


def python_blocks(text: str):
    """``(index, first_line, code, skipped)`` for each ```python block of ``text``."""
    blocks = []
    for index, match in enumerate(_FENCE.finditer(text)):
        before = text[: match.start()].rstrip().splitlines()
        skipped = bool(before) and before[-1].strip() == _NO_TEST
        first_line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((index, first_line, match.group(1), skipped))
    return blocks


def _collect():
    cases = []
    for name in DOC_FILES:
        path = ROOT / name
        for index, first_line, code, skipped in python_blocks(path.read_text(encoding="utf-8")):
            marks = [pytest.mark.skip(reason=_NO_TEST)] if skipped else []
            cases.append(pytest.param(name, first_line, code,
                                      id=f"{path.name}-block{index}", marks=marks))
    return cases


@pytest.mark.parametrize(("name", "first_line", "code"), _collect())
def test_doc_block_runs(name, first_line, code):
    # Pad with newlines so traceback line numbers are the markdown file's own.
    source = "\n" * (first_line - 1) + code
    # A module of its own, as a script's __main__ is: dataclasses (flax.struct) look their class's module up.
    module = types.ModuleType(f"doc_block_{Path(name).stem.replace('-', '_').replace('.', '_')}")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, str(ROOT / name), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]


def test_every_page_is_collected():
    assert "README.md" in DOC_FILES
    assert {"docs/cli.md", "docs/scaling.md", "docs/performance.md",
            "docs/softmax-derivative.md"} <= set(DOC_FILES)
    assert len(set(DOC_FILES)) == len(DOC_FILES)


def test_derivation_has_blocks():
    blocks = python_blocks((ROOT / "docs/softmax-derivative.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    assert not any(skipped for *_, skipped in blocks)


def test_block_parser():
    text = (
        "intro\n```python\nx = 1\n```\n\n<!-- no-test -->\n\n```python\nraise SystemExit\n```\n"
        "```bash\nls\n```\n"
    )
    blocks = python_blocks(text)
    assert [(i, line, code, skip) for i, line, code, skip in blocks] == [
        (0, 3, "x = 1\n", False),
        (1, 9, "raise SystemExit\n", True),
    ]


# --- links --------------------------------------------------------------------

_ANY_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without its fenced blocks and inline code spans."""
    return re.sub(r"`[^`\n]*`", "", _ANY_FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading line: lower case, punctuation dropped, spaces to hyphens."""
    title = heading.lstrip("#").replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def _anchors(text: str) -> set:
    anchors, seen = set(), Counter()
    for line in _ANY_FENCE.sub("", text).splitlines():     # a heading's inline code is in its anchor
        if re.match(r"#{1,6} ", line):
            slug = _slug(line)
            anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return anchors | set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))


def test_slug():
    assert _slug("## Solved means the policy you get solves it") == "solved-means-the-policy-you-get-solves-it"
    assert _slug("### `reshape(20, 1)` only fits one length") == "reshape20-1-only-fits-one-length"


@pytest.mark.parametrize("name", DOC_FILES)
def test_links_resolve(name):
    page = ROOT / name
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):                    # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{name}: link to {target} does not resolve"
        if anchor:
            assert anchor in _anchors(linked.read_text(encoding="utf-8")), (
                f"{name}: anchor #{anchor} not found in {linked.name}")
