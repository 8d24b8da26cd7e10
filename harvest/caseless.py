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

# Lower-cased texts: each stage of the tagger scans every sentence of a paper
# with several patterns, and the reader its clauses, so texts recur between
# scans of others. More than one paper's sentences and their pieces.
_lowered_texts: dict[str, str] = {}
_KEPT = 256


def lower(text: str) -> str:
    """text.lower(), keeping offsets (a character whose lower case is longer stays as it is)."""
    lowered = _lowered_texts.get(text)
    if lowered is None:
        lowered = text.lower()
        if len(lowered) != len(text):
            lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        if len(_lowered_texts) >= _KEPT:
            _lowered_texts.clear()
        _lowered_texts[text] = lowered
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
    """A compiled case-insensitive pattern with re's search/match/fullmatch/finditer/findall.

    `needs`: lower-case literals (plain text, no regex syntax) one of which
    every match contains; a text with none of them is not scanned. Testing
    them with `in` costs a fraction of a scan (and of one regex alternation of
    them), and most sentences lack most cues.
    """

    __slots__ = ("regex", "pattern", "needs")

    def __init__(self, source: str, needs: tuple[str, ...] = ()) -> None:
        self.regex = re.compile(_lower_source(source))
        self.pattern = source  # as written, for composing larger patterns
        self.needs = needs

    def _lowered(self, text: str) -> str | None:
        """The text lower-cased, or None when it cannot match."""
        lowered = _lowered_texts.get(text) or lower(text)  # the call only when not kept (or empty)
        if not self.needs:
            return lowered
        for literal in self.needs:
            if literal in lowered:
                return lowered
        return None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every match."""
        lowered = self._lowered(text)
        return [] if lowered is None else [m.span() for m in self.regex.finditer(lowered)]

    def search(self, text: str, *span):
        lowered = self._lowered(text)
        return None if lowered is None else self.regex.search(lowered, *span)

    def match(self, text: str, *span):
        lowered = self._lowered(text)
        return None if lowered is None else self.regex.match(lowered, *span)

    def fullmatch(self, text: str, *span):
        lowered = self._lowered(text)
        return None if lowered is None else self.regex.fullmatch(lowered, *span)

    def finditer(self, text: str, *span):
        lowered = self._lowered(text)
        return iter(()) if lowered is None else self.regex.finditer(lowered, *span)

    def findall(self, text: str, *span):
        lowered = self._lowered(text)
        return [] if lowered is None else self.regex.findall(lowered, *span)


# Characters that stand for themselves in a pattern (upper case is left out:
# Caseless lower-cases it, which could merge two branches kept apart here).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 -'")
_SYNTAX = frozenset("\\[](){}|?*+.^$")


def alternation(phrases) -> str:
    """One non-capturing group of regex phrases, longest first so longer phrases win.

    re tries every branch of an alternation at every position of the text; the
    branches are factored on their common leading letters ("n(?:altrexone|
    aproxen)"), so most are skipped after one character test, with the same
    matches: branches that could both match at a position keep their order.
    A phrase starting with a group, a class or an optional letter is written
    out in its place as the branches it stands for ("(?:a|b)?c": "ac", "bc",
    "c"), so that they too start with a letter and are factored.
    """
    branches = [b for phrase in sorted(phrases, key=len, reverse=True) for b in _written_out(phrase)]
    return "(?:" + "|".join(_factored(list(dict.fromkeys(branches)), 0)) + ")"  # a repeated branch adds nothing


def _written_out(phrase: str) -> list[str]:
    """The branches, each starting with a literal character, that together
    match what the phrase matches, in its order; the phrase itself when its
    start is something else or it holds a capturing group (which would repeat)."""
    has_group = any(char == "(" and (not phrase.startswith("(?", i) or phrase.startswith("(?P", i))
                    for i, char, _ in _structure(phrase))
    return (None if has_group else _plain_headed(phrase)) or [phrase]


def words(phrases, then: str = r"(?!\w)") -> Caseless:
    """Phrases as whole words, case-insensitive, followed by `then` (a word's
    end unless given); texts lacking the literals the phrases contain are
    not scanned."""
    return Caseless(r"(?<!\w)" + alternation(phrases) + then, needed_literals(phrases))


# Testing this many literals with `in` costs about one scan of a sentence; with
# more, the test only adds to the scan (and one of them is in most sentences).
_MAX_NEEDED = 64


def needed_literals(phrases) -> tuple[str, ...]:
    """Lower-case literals (of two characters or more, and with no regex
    syntax), one of which every match of the phrases contains: for each
    branch, the longest literal it always contains ("\\d+ mg": " mg"), else
    the literals its written-out forms start with ("[xy]z": "xz", "yz"); ()
    when some match may contain none or there would be more than _MAX_NEEDED."""
    literals: set[str] = set()
    for phrase in phrases:
        for branch in _top_level_branches(phrase):
            inside = _longest_literal(branch)
            found = [inside] if len(inside) >= 2 else [_plain_run(b) for b in _plain_headed(branch) or [""]]
            if min(len(literal) for literal in found) < 2:
                return ()
            literals.update(literal.lower() for literal in found)
    # A literal containing another adds no test: a text with it has the other.
    kept = tuple(sorted(a for a in literals if not any(b != a and b in a for b in literals)))
    return kept if len(kept) <= _MAX_NEEDED else ()


def _longest_literal(branch: str) -> str:
    """The longest run of literal characters that every match of a pattern with
    no "|" outside groups contains: outside groups, classes and counts' braces,
    and no quantifier after any of them."""
    best = run = ""
    previous, counting = -1, False
    for i, char, depth in _structure(branch):
        counting = (counting or char == "{") and char != "}"
        literal = (not depth and not counting and char.lower() in _PLAIN
                   and branch[i + 1:i + 2] not in ("?", "*", "+", "{"))
        run = (run if i == previous + 1 else "") + char if literal else ""  # escapes and classes are gaps
        best = max(best, run, key=len)
        previous = i
    return best


def _plain_run(source: str) -> str:
    """The literal text a pattern starts with (a character followed by a quantifier is not in it)."""
    end = 0
    while end < len(source) and source[end] not in _SYNTAX and source[end + 1:end + 2] not in ("?", "*", "+", "{"):
        end += 1
    return source[:end]


def _plain_headed(source: str) -> list[str] | None:
    """Patterns, each starting with a literal character, that together match
    what `source` matches (a leading group, class or optional item written
    out: "(?:a|b)?c" gives "ac", "bc", "c"); None when the start is something
    else (an escape, a lookaround, a class of many characters)."""
    branches: list[str] = []
    for branch in _top_level_branches(source):
        if not branch:
            return None
        if branch.startswith("(?:"):
            end = _group_end(branch, 0)
            items = _top_level_branches(branch[3:end - 1]) if end else None
        elif branch[0] == "[":
            chars, end = _class_chars(branch, 0)
            items = sorted(chars) if chars is not None and len(chars) <= _MAX_NEEDED else None
        elif branch[0] not in _SYNTAX:
            end, items = 1, [branch[0]]
        else:
            return None
        if items is None:
            return None
        quantifier, rest = branch[end:end + 1], branch[end + 1:]
        if quantifier == "{" or quantifier in ("?", "*", "+") and rest[:1] in ("?", "+"):
            return None  # a count, or a lazy or possessive quantifier
        if quantifier == "?":  # with the item, then without
            written = [item + rest for item in items] + [rest]
        elif quantifier in ("*", "+"):  # one item, then any more; for "*" also none
            written = [item + branch[:end] + "*" + rest for item in items] + ([rest] if quantifier == "*" else [])
        else:
            written = [item + branch[end:] for item in items]
        if written == [branch]:
            branches.append(branch)
            continue
        for pattern in written:
            headed = _plain_headed(pattern)
            if headed is None:
                return None
            branches += headed
    return branches


def _factored(phrases: list[str], depth: int) -> list[str]:
    """The branches for phrases that share their first `depth` plain characters,
    without those characters. Phrases whose next character is plain are grouped
    on it. Another phrase (starting with a class, a group, an optional letter,
    or ending) is a branch of its own, and the groups it could match alongside
    (those of the characters it can start with) are closed before it, so it
    keeps its place among them."""
    branches: list[str] = []
    groups: dict[str, list[str]] = {}

    def close(chars) -> None:
        for char in [c for c in groups if chars is None or c in chars]:
            group = groups.pop(char)
            if len(group) == 1:
                branches.append(group[0][depth:])
            else:
                inner = _factored(group, depth + 1)
                branches.append(char + (inner[0] if len(inner) == 1 else "(?:" + "|".join(inner) + ")"))

    for phrase in phrases:
        char = _plain_char(phrase, depth)
        if char is None:
            close(_first_chars(phrase[depth:]))
            branches.append(phrase[depth:])
        else:
            groups.setdefault(char, []).append(phrase)
    close(None)
    return branches


def _plain_char(phrase: str, depth: int) -> str | None:
    """The phrase's character at `depth` when it matches only itself (no quantifier
    follows it, and the phrase is one branch: no "|" outside groups)."""
    char = phrase[depth:depth + 1]
    if not char or char not in _PLAIN or phrase[depth + 1:depth + 2] in ("?", "*", "+", "{"):
        return None
    return char if depth or len(_top_level_branches(phrase)) == 1 else None


def _first_chars(source: str) -> set[str] | None:
    """The characters (in both cases) a match of a pattern can start with; None
    when that is not known or the pattern can match empty text."""
    chars: set[str] = set()
    for branch in _top_level_branches(source):
        first = _sequence_first_chars(branch)
        if first is None:
            return None
        chars |= first
    return chars | {c.lower() for c in chars}


def _sequence_first_chars(source: str) -> set[str] | None:
    """_first_chars of a pattern with no "|" outside groups: the first items'
    characters, as far as the first item that must match."""
    chars: set[str] = set()
    i = 0
    while i < len(source):
        if source.startswith("(?:", i):
            end = _group_end(source, i)
            item = _first_chars(source[i + 3:end - 1]) if end else None
        elif source[i] == "[":
            item, end = _class_chars(source, i)
        elif source[i] not in _SYNTAX:
            item, end = {source[i]}, i + 1
        else:  # an escape, any character, an anchor, a lookaround or a numbered group
            return None
        if item is None:
            return None
        chars |= item
        quantifier = source[end:end + 1]
        if quantifier == "{":
            return None
        if quantifier not in ("?", "*"):
            return chars
        i = end + 1 + (source[end + 1:end + 2] == "?")  # a lazy quantifier
    return None


def _class_chars(source: str, start: int) -> tuple[set[str] | None, int]:
    """The members of the class at `start` (None for a negated class or one with
    escapes) and the index after it."""
    chars: set[str] = set()
    i = start + 1
    if source[i:i + 1] in ("^", "\\"):
        return None, i
    while i < len(source) and (source[i] != "]" or i == start + 1):  # "]" first is a member
        if source[i:i + 1] == "\\" or source[i + 1:i + 2] == "-" and source[i + 2:i + 3] == "\\":
            return None, i
        if source[i + 1:i + 2] == "-" and source[i + 2:i + 3] not in ("]", ""):
            chars |= {chr(c) for c in range(ord(source[i]), ord(source[i + 2]) + 1)}
            i += 3
        else:
            chars.add(source[i])
            i += 1
    return chars, i + 1


def _structure(source: str, start: int = 0):
    """(index, character, depth) of each character of a pattern from `start`
    that is neither escaped nor in a class; depth counts the groups open around
    it (a group's own parentheses are outside it)."""
    depth, i = 0, start
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":  # a class: "]" first (or after "^") is a member, not its end
            i += 2 if source.startswith("[^", i) else 1
            i += 2 if source[i:i + 1] == "\\" else 1
            while i < len(source) and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
            i += 1
            continue
        if char == ")":
            depth -= 1
        yield i, char, depth
        if char == "(":
            depth += 1
        i += 1


def _top_level_branches(source: str) -> list[str]:
    bars = [i for i, char, depth in _structure(source) if char == "|" and depth == 0]
    return [source[a + 1:b] for a, b in zip([-1] + bars, bars + [len(source)])]


def _group_end(source: str, start: int) -> int | None:
    """The index after the ")" closing the group opened at `start`."""
    return next((i + 1 for i, char, depth in _structure(source, start) if char == ")" and depth == 0), None)
