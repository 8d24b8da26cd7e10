"""Case-insensitive regular expressions, run on lower-cased text.

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
