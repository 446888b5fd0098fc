"""The small markup of clause files: numbered paragraphs, (a) items, (i) sub-items and inline tokens.

A body is split into blocks at blank lines. A line starting with ``- `` starts an item, an indented
``- `` a sub-item; other lines continue the current paragraph or item. Inline: ``**bold**``,
``*italic*``, ``{{variable}}``, ``[[clause-id]]`` / ``[[schedule:name]]`` / ``[[clauses:survives]]``
cross-references, and ``\\*`` for a literal character. Values substituted later are never parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"\\(?P<escaped>[\\*\[\]{}])"
    r"|(?P<strong>\*\*)"
    r"|(?P<em>\*)"
    r"|\{\{\s*(?P<var>[A-Za-z0-9_]+)\s*\}\}"
    r"|\[\[\s*(?P<ref>[A-Za-z0-9:_-]+)\s*\]\]"
)
_ITEM = re.compile(r"^(?P<indent>[ \t]*)-\s+(?P<text>.*)$")


class MarkupError(ValueError):
    """Malformed markup, with a message saying where."""


@dataclass(frozen=True)
class Token:
    """A run of text, a variable or a cross-reference, with its formatting."""

    kind: str  # text | var | ref
    value: str
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of a clause: level 1 numbered paragraph, 2 item (a), 3 sub-item (i)."""

    level: int
    tokens: tuple[Token, ...]

    def names(self, kind: str) -> set[str]:
        """The variable or reference names this paragraph uses."""
        return {t.value for t in self.tokens if t.kind == kind}


def parse_inline(text: str) -> tuple[Token, ...]:
    """Tokenise one paragraph's text; raise MarkupError on unbalanced emphasis or stray braces."""
    tokens: list[Token] = []
    bold = italic = False
    buffer: list[str] = []
    pos = 0

    def flush() -> None:
        if buffer:
            tokens.append(Token("text", "".join(buffer), bold, italic))
            buffer.clear()

    for match in _TOKEN.finditer(text):
        buffer.append(text[pos:match.start()])
        pos = match.end()
        if match["escaped"]:
            buffer.append(match["escaped"])
        elif match["strong"]:
            _check_flanking(text, match, bold)
            flush()
            bold = not bold
        elif match["em"]:
            _check_flanking(text, match, italic)
            flush()
            italic = not italic
        elif match["var"]:
            flush()
            tokens.append(Token("var", match["var"], bold, italic))
        else:
            flush()
            tokens.append(Token("ref", match["ref"], bold, italic))
    buffer.append(text[pos:])
    flush()
    if bold or italic:
        raise MarkupError(f"unclosed {'**' if bold else '*'} in: {_excerpt(text)}")
    for token in tokens:
        if token.kind == "text" and ("{{" in token.value or "[[" in token.value
                                     or "}}" in token.value or "]]" in token.value):
            raise MarkupError(f"malformed {{{{variable}}}} or [[reference]] in: {_excerpt(text)}")
    return tuple(tokens)


def _check_flanking(text: str, match: re.Match, closing: bool) -> None:
    # As in Markdown: emphasis opens before a non-space and closes after one. Anything else is an asterisk
    # meant literally (or a "* " bullet), which would otherwise silently italicise the text up to the next.
    mark = match[0]
    if closing:
        ok = match.start() > 0 and not text[match.start() - 1].isspace()
    else:
        ok = match.end() < len(text) and not text[match.end()].isspace()
    if not ok:
        raise MarkupError(f"stray {mark!r} in: {_excerpt(text)}; write \\* for a literal asterisk and '- ' "
                          "for an item")


def parse_body(body: str) -> tuple[Paragraph, ...]:
    """Split a clause body into paragraphs, items and sub-items."""
    paragraphs: list[tuple[int, list[str]]] = []
    for block in re.split(r"\n[ \t]*\n", body.strip()):
        current: tuple[int, list[str]] | None = None
        for line in block.splitlines():
            if not line.strip():
                continue
            item = _ITEM.match(line)
            if item:
                level = 3 if len(item["indent"].expandtabs(4)) >= 2 else 2
                current = (level, [item["text"].strip()])
                paragraphs.append(current)
            elif current is None:
                current = (1, [line.strip()])
                paragraphs.append(current)
            else:
                current[1].append(line.strip())
    result = []
    previous_level = 1
    for level, lines in paragraphs:
        if level > previous_level + 1:
            raise MarkupError(f"a sub-item must follow an item: {_excerpt(' '.join(lines))}")
        previous_level = level
        result.append(Paragraph(level, parse_inline(" ".join(lines))))
    return tuple(result)


def _excerpt(text: str, size: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= size else text[:size] + "…")
