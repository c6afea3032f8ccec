"""Keeps the Chinese translation of the softmax page in step with the English.

``docs/softmax-derivative.zh.md`` translates ``docs/softmax-derivative.md``:
the prose and the ``#`` comments of the code are Chinese, everything else is
the same. These tests fail when the two drift apart:

- the ```python blocks must be equal token for token (Python's ``tokenize``,
  with comments and blank/comment-only lines dropped), so a change to the
  code of one page that is not made on the other is caught, with the block,
  its lines on each page and the first differing token in the message;
- the headings, the indented formula blocks and the inline code spans must
  match, the pages must link to each other under their titles, README must
  link both, and every relative link and ``#anchor`` of either page must
  resolve from ``docs/``.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from pathlib import Path

import pytest

from test_docs import python_blocks

ROOT = Path(__file__).resolve().parent.parent
EN = "docs/softmax-derivative.md"
ZH = "docs/softmax-derivative.zh.md"
PAGES = (EN, ZH)

# Dropped before comparing: comments, and the NL tokens of blank or
# comment-only lines (a translated comment may take more or fewer lines).
_IGNORED = {tokenize.COMMENT, tokenize.NL}
# Compared by type only: their text is a line ending or empty.
_TYPE_ONLY = {tokenize.NEWLINE, tokenize.DEDENT, tokenize.ENDMARKER}


# --- the comparison helper ---------------------------------------------------


def code_tokens(code: str):
    """``(type, string, (row, col))`` for each token of ``code`` that is code.

    Comments and NL tokens are left out; everything else (names, operators,
    numbers, strings and docstrings, NEWLINE, INDENT with its indentation,
    DEDENT) is kept. Raises ``tokenize.TokenError`` or ``SyntaxError`` when
    ``code`` does not tokenize.
    """
    return [(tok.type, tok.string, tok.start)
            for tok in tokenize.generate_tokens(io.StringIO(code).readline)
            if tok.type not in _IGNORED]


def _key(token):
    kind, string, _ = token
    return (kind,) if kind in _TYPE_ONLY else (kind, string)


def first_difference(code_a: str, code_b: str):
    """``None`` when the two codes are equal up to comments; otherwise
    ``(token_a, token_b)``, the first pair of tokens that differ, where a side
    that ran out of tokens gives ``None``."""
    tokens_a, tokens_b = code_tokens(code_a), code_tokens(code_b)
    for token_a, token_b in zip(tokens_a, tokens_b):
        if _key(token_a) != _key(token_b):
            return token_a, token_b
    if len(tokens_a) != len(tokens_b):
        n = min(len(tokens_a), len(tokens_b))
        return (tokens_a[n] if n < len(tokens_a) else None,
                tokens_b[n] if n < len(tokens_b) else None)
    return None


def _describe(token, first_line: int, code: str) -> str:
    """A token as ``line L col C NAME 'x'  | source line``, with ``L`` counted
    in the markdown file whose block starts at ``first_line``."""
    if token is None:
        return "(no more tokens: the block ends here)"
    kind, string, (row, col) = token
    lines = code.splitlines()
    source = lines[row - 1].strip() if 0 < row <= len(lines) else ""
    return (f"line {first_line + row - 1} col {col} "
            f"{tokenize.tok_name[kind]} {string!r}  | {source}")


def block_difference(index: int, block_a, block_b, name_a: str, name_b: str):
    """``None``, or a message naming the block, its lines on each page and the
    first differing token. ``block_a``/``block_b`` are ``(first_line, code)``."""
    (line_a, code_a), (line_b, code_b) = block_a, block_b
    try:
        difference = first_difference(code_a, code_b)
    except (tokenize.TokenError, SyntaxError) as error:
        return f"python block {index}: does not tokenize: {error}"
    if difference is None:
        return None
    token_a, token_b = difference
    span_a = f"lines {line_a}-{line_a + code_a.count(chr(10)) - 1}"
    span_b = f"lines {line_b}-{line_b + code_b.count(chr(10)) - 1}"
    return (f"python block {index} differs between {name_a} ({span_a}) and "
            f"{name_b} ({span_b}); first differing token:\n"
            f"  {name_a}: {_describe(token_a, line_a, code_a)}\n"
            f"  {name_b}: {_describe(token_b, line_b, code_b)}")


def test_a_changed_comment_is_no_difference():
    english = "x = 1  # one\n# a comment line\ny = x + 2\n"
    chinese = "x = 1  # 一\n# 注释行\n# 多出来的一行注释\ny = x + 2  # 新的注释\n"
    assert first_difference(english, chinese) is None
    assert first_difference("def f():\n    # c\n    return 1\n",
                            "def f():\n        # 注释可以缩进不同\n    return 1\n") is None


@pytest.mark.parametrize(("changed", "token_a", "token_b"), [
    ("x = 1\ny = x + 3\n", "2", "3"),                       # a number
    ("x = 1\ny = z + 2\n", "x", "z"),                       # a name
    ("x = 1\ny = x - 2\n", "+", "-"),                       # an operator
    ("x = 1\ny = x + 2.0\n", "2", "2.0"),                   # a literal's form
])
def test_a_changed_code_token_is_a_difference(changed, token_a, token_b):
    difference = first_difference("x = 1\ny = x + 2\n", changed)
    assert difference is not None
    assert (difference[0][1], difference[1][1]) == (token_a, token_b)
    assert difference[0][2][0] == 2                         # on the second line


def test_strings_docstrings_and_indentation_are_code():
    assert first_difference('s = "a # b"\n', 's = "a # c"\n') is not None
    assert first_difference('def f():\n    """Doc."""\n', 'def f():\n    """文档。"""\n') is not None
    assert first_difference("if x:\n    y = 1\n", "if x:\n  y = 1\n") is not None
    assert first_difference("x = 1\n", "x = 1\ny = 2\n") == (
        (tokenize.ENDMARKER, "", (2, 0)), (tokenize.NAME, "y", (2, 0)))


def test_block_difference_message_names_block_lines_and_token():
    message = block_difference(3, (10, "a = 1\nb = 2\n"), (12, "a = 1  # 注释\nb = 5\n"),
                               "en.md", "zh.md")
    assert message.startswith("python block 3 differs between en.md (lines 10-11) "
                              "and zh.md (lines 12-13)")
    assert "en.md: line 11 col 4 NUMBER '2'  | b = 2" in message
    assert "zh.md: line 13 col 4 NUMBER '5'  | b = 5" in message
    assert block_difference(0, (1, "a = 1  # x\n"), (1, "a = 1  # 甲\n"), "e", "z") is None


# --- the two pages -----------------------------------------------------------


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _blocks(name: str):
    return python_blocks(_text(name))


def test_same_number_of_python_blocks():
    english, chinese = _blocks(EN), _blocks(ZH)
    assert len(chinese) == len(english), (
        f"{EN} has {len(english)} python blocks, {ZH} has {len(chinese)}")
    assert [skip for *_, skip in chinese] == [skip for *_, skip in english], (
        "the <!-- no-test --> markers differ")


@pytest.mark.parametrize("index", range(len(_blocks(EN))))
def test_python_block_matches_the_english(index):
    english, chinese = _blocks(EN), _blocks(ZH)
    assert index < len(chinese), f"{ZH} has no python block {index}"
    _, line_en, code_en, _ = english[index]
    _, line_zh, code_zh, _ = chinese[index]
    message = block_difference(index, (line_en, code_en), (line_zh, code_zh), EN, ZH)
    if message is not None:
        pytest.fail(message, pytrace=False)


def _prose_lines(text: str):
    """The lines of ``text`` outside fenced blocks, as ``(line, text)``."""
    lines, inside = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            lines.append((number, line))
    return lines


def _headings(text: str):
    return [line for _, line in _prose_lines(text) if re.match(r"#{1,6} ", line)]


def _heading_shape(heading: str):
    """Level, section number and inline code: what a translation keeps."""
    level, title = heading.split(" ", 1)
    number = re.match(r"\d+\.", title)
    return len(level), number.group(0) if number else None, re.findall(r"`[^`]+`", title)


def test_headings_are_parallel():
    english, chinese = _headings(_text(EN)), _headings(_text(ZH))
    assert [_heading_shape(h) for h in chinese] == [_heading_shape(h) for h in english], (
        "\n".join(f"{e!r:80} | {c!r}" for e, c in zip(english, chinese)))


def _indented_blocks(text: str):
    """Indented (4-space) blocks of the prose: the formulas and the command."""
    blocks, current, previous = [], [], ""
    for _, line in _prose_lines(text):
        if line.startswith("    ") and (current or not previous.strip()):
            current.append(line)
        elif current and not line.strip():
            current.append(line)
        else:
            if current:
                blocks.append("\n".join(current).rstrip())
                current = []
        previous = line
    if current:
        blocks.append("\n".join(current).rstrip())
    return blocks


def test_formulas_are_identical():
    english = _indented_blocks(_text(EN))
    assert len(english) >= 5
    assert _indented_blocks(_text(ZH)) == english


def _inline_code(text: str):
    prose = "\n".join(line for _, line in _prose_lines(text) if not line.startswith("    "))
    return Counter(" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose))


def test_inline_code_is_the_same():
    english, chinese = _inline_code(_text(EN)), _inline_code(_text(ZH))
    assert chinese == english, (
        f"only in {EN}: {sorted((english - chinese).elements())}; "
        f"only in {ZH}: {sorted((chinese - english).elements())}")


def _sections(text: str):
    sections, title, body = [], None, []
    for _, line in _prose_lines(text):
        if re.match(r"#{1,6} ", line):
            if title is not None:
                sections.append((title, "\n".join(body)))
            title, body = line, []
        else:
            body.append(line)
    sections.append((title, "\n".join(body)))
    return sections


def test_every_section_of_the_chinese_page_is_in_chinese():
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for title, body in _sections(_text(ZH)):
        prose = re.sub(r"`[^`]*`", "", body)
        if not prose.strip():                               # a heading right above another
            continue
        assert len(cjk.findall(prose)) >= 10, f"untranslated section: {title}"


_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def _links(text: str):
    prose = "\n".join(line for _, line in _prose_lines(text))
    prose = re.sub(r"`[^`]*`", "", prose)
    return [target for _, target in _LINK.findall(prose)]


def _top_line(name: str) -> str:
    """The first non-blank line under the page's title."""
    lines = [line for line in _text(name).splitlines() if line.strip()]
    assert lines[0].startswith("# "), f"{name} does not start with its title"
    return lines[1]


def test_pages_link_to_each_other_under_their_titles():
    assert "](softmax-derivative.zh.md)" in _top_line(EN)
    assert "简体中文" in _top_line(EN)
    assert "](softmax-derivative.md)" in _top_line(ZH)
    assert "English" in _top_line(ZH)


def test_readme_links_both_pages():
    links = _links(_text("README.md"))
    assert "docs/softmax-derivative.md" in links
    assert "docs/softmax-derivative.zh.md" in links


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters
    of any script kept), spaces to hyphens."""
    title = re.sub(r"`", "", heading.split(" ", 1)[1]).strip().lower()
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def _anchors(text: str):
    anchors, seen = set(), Counter()
    for heading in _headings(text):
        slug = _slug(heading)
        anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    anchors.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return anchors


def test_slug():
    assert _slug("## 2. Where the (20, 20) came from") == "2-where-the-20-20-came-from"
    assert _slug("### `reshape(20, 1)` 只适用于一种回合长度") == "reshape20-1-只适用于一种回合长度"


@pytest.mark.parametrize("name", PAGES)
def test_links_and_anchors_resolve(name):
    page = ROOT / name
    for target in _links(_text(name)):
        if re.match(r"[a-z]+:", target):                    # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{name}: link to {target} does not resolve"
        if anchor:
            assert anchor in _anchors(linked.read_text(encoding="utf-8")), (
                f"{name}: anchor #{anchor} not found in {linked.name}")
