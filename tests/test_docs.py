"""Runs every ```python block of the docs, each in a fresh namespace.

A block preceded (on the line before its opening fence, blank lines allowed)
by the HTML comment ``<!-- no-test -->`` is skipped. Each block is its own
test, named ``<file>-block<index>``; a failing assert or exception fails it,
with a traceback that points at the block's lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = ("docs/softmax-derivative.md", "docs/softmax-derivative.zh.md", "docs/environments.md", "README.md")

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
        if not path.exists():
            continue
        for index, first_line, code, skipped in python_blocks(path.read_text()):
            marks = [pytest.mark.skip(reason=_NO_TEST)] if skipped else []
            cases.append(pytest.param(name, first_line, code,
                                      id=f"{path.name}-block{index}", marks=marks))
    return cases


@pytest.mark.parametrize(("name", "first_line", "code"), _collect())
def test_doc_block_runs(name, first_line, code):
    # Pad with newlines so traceback line numbers are the markdown file's own.
    source = "\n" * (first_line - 1) + code
    namespace = {"__name__": f"doc_block_{Path(name).stem}"}
    exec(compile(source, str(ROOT / name), "exec"), namespace)


def test_derivation_has_blocks():
    blocks = python_blocks((ROOT / "docs/softmax-derivative.md").read_text())
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
