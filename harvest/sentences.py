"""A paper's text laid out as sections and sentences, for the tagger and the result reader.

A title and an abstract, as PubMed gives them (labelled sections), as pasted
text ("METHODS: ..." lines, labels inline in one paragraph, or a label alone on
its line as some publishers print it), become sentences that know their
section, their offsets in it and what kind of section it is (background,
methods, results, conclusions...). The terms come from vocabulary.yml
(sections `sentences` and `sections`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .caseless import Caseless, alternation
from .vocabulary import VOCABULARY

# What a section is for, as the result reader weighs it.
SECTION_KINDS = ("title", "background", "methods", "results", "conclusions", "unlabelled", "other")


@dataclass(slots=True)
class Sentence:
    section: str
    text: str
    start: int
    end: int
    background: bool
    results: bool = True       # may state this paper's results (not aims or methods)
    conclusion: bool = False   # in a conclusions section
    kind: str = "unlabelled"   # one of SECTION_KINDS
    position: float = 0.0      # 0 for the paper's first sentence, 1 for its last
    memo: dict = field(default_factory=dict, repr=False)  # what readers found in it, kept for the next reader


class Layout:
    """Sentence boundaries and section kinds, compiled from a vocabulary."""

    def __init__(self, vocab: dict) -> None:
        sections = vocab["sections"]
        self.abbreviation = Caseless(alternation(vocab["sentences"]["abbreviations"]) + r"\.?")
        self.sentence_end = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
        # A text without a line break is split at sentence ends alone: the same
        # boundaries, found without trying "\s*\n" at every position.
        self.boundary = re.compile(self.sentence_end.pattern + r"|\s*\n\s*")
        self.background_labels = {label.upper() for label in sections["background"]}
        self.not_results_labels = {label.upper() for label in sections["not_results"]}
        self.conclusion_labels = {label.upper() for label in sections["conclusions"]}
        self.kind_words = [(kind, re.compile(alternation(stems))) for kind, stems in sections["kind_words"].items()]
        self._kinds: dict[str | None, str] = {}  # labels recur from paper to paper

    def _ends_with_abbreviation(self, text: str) -> bool:
        last = text.rsplit(None, 1)[-1:] or [""]
        return bool(last[0]) and bool(self.abbreviation.fullmatch(last[0].lstrip("([")))

    def split(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each sentence. A boundary is . ! or ? before whitespace and
        a capital or digit, or a line break; "e.g.", "vs." and "et al." are not
        boundaries, and decimals ("4.5 mg", "p < 0.05") never have the whitespace."""
        spans, start = [], 0
        for m in (self.boundary if "\n" in text else self.sentence_end).finditer(text):
            punctuated = text[m.start()] in ".!?"
            if text[m.start()] == "." and self._ends_with_abbreviation(text[start:m.start()]):
                continue
            spans.append((start, m.start() + len(m.group().rstrip()) if punctuated else m.start()))
            start = m.end()
        spans.append((start, len(text)))
        return [(s + len(text[s:e]) - len(text[s:e].lstrip()), e) for s, e in spans if text[s:e].strip()]

    def kind(self, label: str | None) -> str:
        """The kind of a section label: the vocabulary's lists first, then the words in it."""
        if label not in self._kinds:
            self._kinds[label] = self._kind(label)
        return self._kinds[label]

    def _kind(self, label: str | None) -> str:
        key = (label or "abstract").upper()
        if key == "ABSTRACT":
            return "unlabelled"
        if key == "TITLE":
            return "title"
        if key in self.background_labels:
            return "background"
        if key in self.conclusion_labels:
            return "conclusions"
        return next((kind for kind, stems in self.kind_words if stems.search(key)),
                    "methods" if key in self.not_results_labels else "other")

    def sentences(self, paper: dict) -> list[Sentence]:
        """The title's and every section's sentences, in order."""
        sections = [("title", paper.get("title") or "")]  # a title states no results (sections.not_results)
        sections += [(s.get("label"), s.get("text") or "") for s in paper.get("sections", [])]
        laid_out = [(label, text, self.split(text)) for label, text in sections]
        last = max(sum(len(spans) for _, _, spans in laid_out) - 1, 1)
        found: list[Sentence] = []
        for label, text, spans in laid_out:
            key = (label or "abstract").upper()
            background = key in self.background_labels
            results = not background and key not in self.not_results_labels
            conclusion, kind = key in self.conclusion_labels, self.kind(label)
            found += [Sentence(label or "abstract", text[s:e], s, e, background, results, conclusion, kind,
                               (len(found) + k) / last)
                      for k, (s, e) in enumerate(spans)]
        return found


LAYOUT = Layout(VOCABULARY)

# "METHODS: ..." or "Methods: ..." (at most five words before the colon).
_LABEL_WORDS = r"[A-Z][A-Za-z0-9,&/'()-]*(?: [A-Za-z0-9,&/'()-]+){0,4}"
_SECTION_LABEL = re.compile(rf"^({_LABEL_WORDS}):\s+(.*)$")
# A label alone on its line ("Results:" or "Results::"), its text on the lines after.
_LABEL_LINE = re.compile(rf"^({_LABEL_WORDS})::?$")
# The same label inside a paragraph, after a sentence end: upper case ("METHODS
# AND ANALYSIS:") or title case with at most three more lower-case words
# ("Trial registration:").
_INLINE_LABEL = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+"
    r"(?P<label>[A-Z][A-Z0-9,&/'()-]+(?: (?:[A-Z0-9,&/'()-]+|and|of))*|[A-Z][a-z]+(?: (?:[a-z]+|and|of)){0,3}):\s+")


def split_inline_sections(sections: list[dict]) -> list[dict]:
    """Sections with labels written inline ("BACKGROUND: ... METHODS: ...")
    split into labelled sections, as PubMed XML gives them; a paragraph
    starting with a label takes that label. Other sections are unchanged."""
    split = []
    for section in sections:
        text, label = section.get("text") or "", section.get("label")
        pieces, start = [], 0
        if ":" in text:  # every label ends with one: most sections need no scan
            if label is None and (m := _SECTION_LABEL.match(text)):
                label, text = m.group(1), text[m.start(2):]
            for m in _INLINE_LABEL.finditer(text):
                pieces.append((label, text[start:m.start()]))
                label, start = m["label"], m.end()
        pieces.append((label, text[start:]))
        split += [{**section, "label": lab, "text": body.strip()} for lab, body in pieces if body.strip()]
    return split


def paper_from_text(text: str) -> dict:
    """First line = title; "LABEL: text" lines, or a "LABEL:" line alone, start
    labelled sections, other lines continue one; labels inline in a paragraph
    also start sections."""
    lines = text.strip("\n").split("\n")
    sections: list[dict] = []
    for line in lines[1:]:
        line = line.strip()
        if not line:
            continue
        if m := _LABEL_LINE.match(line):
            sections.append({"label": m.group(1), "text": ""})
        elif m := _SECTION_LABEL.match(line):
            sections.append({"label": m.group(1), "text": m.group(2)})
        elif sections:
            sections[-1]["text"] += ("\n" if sections[-1]["text"] else "") + line
        else:
            sections.append({"label": None, "text": line})
    sections = [s for s in sections if s["text"]]
    return {"title": lines[0].strip(), "sections": split_inline_sections(sections),
            "publication_types": [], "mesh": []}
