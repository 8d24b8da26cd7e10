"""Case-insensitive regular expressions, run on lower-cased text, and the
phrase alternations the tagger builds them from.

Python's re tries each branch of a case-insensitive alternation character
class by character class; on lower-cased text a case-sensitive pattern can
test literal first characters instead, which makes the tagger's long phrase
alternations several times faster with the same matches (scripts/bench_tag.py
measures it). Matches refer to the lower-cased text, at the same offsets:
take text written out (a dose as written) from the original string.
"""

from __future__ import annotations

import re

_last: tuple[str, str] = ("", "")


def lower(text: str) -> str:
    """text.lower(), keeping offsets (a character whose lower case is longer stays as it is)."""
    global _last
    if _last[0] is text:  # the tagger runs many patterns over one sentence in a row
        return _last[1]
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    _last = (text, lowered)
    return lowered


def _lower_source(source: str) -> str:
    """Lower-case a pattern's literals, leaving escapes (\\S, \\W, \\D, \\B) and group syntax (?P<...>) alone."""
    out, i = [], 0
    while i < len(source):
        if source[i] == "\\":
            out.append(source[i:i + 2])
            i += 2
        elif source.startswith("(?P", i):
            out.append("(?P")
            i += 3
        else:
            out.append(source[i].lower())
            i += 1
    return "".join(out)


class Caseless:
    """A compiled case-insensitive pattern with re's search/match/fullmatch/finditer/findall."""

    __slots__ = ("regex", "pattern")

    def __init__(self, source: str) -> None:
        self.regex = re.compile(_lower_source(source))
        self.pattern = source  # as written, for composing larger patterns

    def search(self, text: str, *span):
        return self.regex.search(lower(text), *span)

    def match(self, text: str, *span):
        return self.regex.match(lower(text), *span)

    def fullmatch(self, text: str, *span):
        return self.regex.fullmatch(lower(text), *span)

    def finditer(self, text: str, *span):
        return self.regex.finditer(lower(text), *span)

    def findall(self, text: str, *span):
        return self.regex.findall(lower(text), *span)


# Characters that stand for themselves in a pattern (upper case is left out:
# Caseless lower-cases it, which could merge two branches kept apart here).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 -'")


def alternation(phrases) -> str:
    """One non-capturing group of regex phrases, longest first so longer phrases win.

    re tries every branch of an alternation at every position of the text; the
    branches are factored on their common leading letters ("n(?:altrexone|
    aproxen)"), so most are skipped after one character test, with the same
    matches: branches that could both match at a position keep their order.
    """
    return "(?:" + "|".join(_factored(sorted(phrases, key=len, reverse=True), 0)) + ")"


def words(phrases) -> Caseless:
    """Phrases as whole words, case-insensitive."""
    return Caseless(r"(?<!\w)" + alternation(phrases) + r"(?!\w)")


def _factored(phrases: list[str], depth: int) -> list[str]:
    """The branches for phrases that share their first `depth` plain characters,
    without those characters. Phrases whose next character is plain are grouped
    on it; the others (a class, a group, an optional letter, the end) split the
    list into runs, so no branch moves past one that could match the same text."""
    branches: list[str] = []
    run: dict[str, list[str]] = {}

    def close_run() -> None:
        for char, group in run.items():
            if len(group) == 1:
                branches.append(group[0][depth:])
            else:
                inner = _factored(group, depth + 1)
                branches.append(char + (inner[0] if len(inner) == 1 else "(?:" + "|".join(inner) + ")"))
        run.clear()

    for phrase in phrases:
        char = _plain_char(phrase, depth)
        if char is None:
            close_run()
            branches.append(phrase[depth:])
        else:
            run.setdefault(char, []).append(phrase)
    close_run()
    return branches


def _plain_char(phrase: str, depth: int) -> str | None:
    """The phrase's character at `depth` when it matches only itself (no quantifier
    follows it, and the phrase is one branch: no "|" outside brackets)."""
    char = phrase[depth:depth + 1]
    if not char or char not in _PLAIN or phrase[depth + 1:depth + 2] in ("?", "*", "+", "{"):
        return None
    return char if depth or not _has_top_level_bar(phrase) else None


def _has_top_level_bar(source: str) -> bool:
    depth, i = 0, 0
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 1
        elif char == "[":  # a class: "]" first (or after "^") is a member, not its end
            i += 2 if source.startswith("[^", i) else 1
            i += 2 if source[i:i + 1] == "\\" else 1
            while i < len(source) and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
        i += 1
    return False
