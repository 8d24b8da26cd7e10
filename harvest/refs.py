"""Reference checking (`kb check-refs`): is each reference in a list right, and if not, what is wrong?

The stages, each a plain function:

- `split_references(text)`: a pasted reference list into one string per reference
  (numbered lists, blank-line separated, or one per line with wrapped lines re-joined);
- `parse_reference(text)`: one reference into authors, title, journal, year, volume,
  issue, pages, DOI and PMID (Vancouver, AMA, APA and "Journal 10(4):663-72" styles);
- `Resolver.resolve(ref)`: the record it cites, tried by PMID, DOI, repaired truncated
  DOI, ECitMatch and title words, in kb.db first and then in PubMed;
- `compare(ref, record, journals)`: the discrepancies, by kind (`KINDS`);
- `corrected_ama` / `corrected_vancouver`: the citation as it should read.

`check_references` runs them all; `format_report`, `exit_code` and `save_checks`
serve the command. Journal names are compared through `Journals`, built from
journals.yml and kb.db's own (journal, journal_iso) pairs.
"""

import difflib
import json
import logging
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import sqlite_utils
import yaml

from . import store
from .dois import DOIError, normalise_doi
from .fetch import (
    EsearchError, EutilsClient, EutilsError, fetch_pmids_for_dois, fetch_records,
    fetch_truncated_candidates,
)
from .parse import ParseError, parse_pubmed_xml

log = logging.getLogger(__name__)

KINDS = (
    "doi_truncated", "doi_wrong", "journal_wrong", "journal_missing", "year_wrong",
    "volume_wrong", "issue_wrong", "pages_wrong", "author_order", "author_missing",
    "author_wrong", "title_mismatch",
    # Not in the list: a cited PMID that belongs to another paper.
    "pmid_wrong",
)
METHODS = ("pmid", "doi", "doi_repaired", "ecitmatch", "title")

# A candidate is the cited paper when the fields the reference gives agree at least this
# much (see `agreement`). Identifiers are strong evidence by themselves, so they need less
# agreement; a repaired DOI, a citation match or title words need more.
ACCEPT_AT = {"pmid": 0.5, "doi": 0.5, "doi_repaired": 0.7, "ecitmatch": 0.6, "title": 0.65}
# Confidence = prior + (1 - prior) * agreement: what the method alone tells us, raised by agreement.
METHOD_PRIOR = {"pmid": 0.6, "doi": 0.6, "doi_repaired": 0.4, "ecitmatch": 0.3, "title": 0.0}
IDENTIFIER_ONLY_CONFIDENCE = 0.9  # "PMID: 123" alone: nothing else to cross-check
WEIGHTS = {"title": 3, "authors": 2, "year": 1, "volume": 1, "first_page": 1, "journal": 1}
TITLE_CANDIDATES = 10
DEFAULT_CLIENT_OPTIONS = {"max_retries": 1, "timeout": 15.0}  # a reachable-or-not answer, fast

store.register(
    tables={
        "reference_checks": (
            {
                "id": int, "position": int, "input": str, "pmid": str, "doi": str,
                "status": str, "method": str, "confidence": float, "discrepancies": str,
                "corrected_ama": str, "corrected_vancouver": str, "reason": str,
                "checked_at": str,
            },
            "id",
            {},
        )
    },
    indexes={"reference_checks": [["pmid"], ["status"]]},
)

# ------------------------------------------------------------------ text helpers

_DASHES = r"\-" + "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_PAGES = rf"[A-Za-z]{{0,3}}\d+[A-Za-z]?(?:\s*[{_DASHES}]\s*[A-Za-z]{{0,3}}\d+[A-Za-z]?(?:\.e\d+)?)?"  # 891-902.e1
_STOPWORDS = {
    "a", "an", "and", "the", "of", "in", "on", "for", "to", "with", "by", "at", "from", "or",
    "is", "are", "as", "its", "their", "vs", "versus",
}


# Letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d"}
)


def fold(text):
    """Lower case, accents removed ("Møller" -> "moller"), "&" read as "and", punctuation as spaces."""
    text = unicodedata.normalize("NFKD", (text or "").translate(_UNDECOMPOSED))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().replace("&", " and ")
    return " ".join(re.sub(r"[^\w]+|_", " ", text).split())


def fold_name(text):
    """A surname's comparable form: 'Rodríguez-Freire' -> 'rodriguezfreire'."""
    return fold(text).replace(" ", "")


def title_words(title):
    return [w for w in fold(title).split() if w not in _STOPWORDS and len(w) > 2]


def title_similarity(a, b):
    return difflib.SequenceMatcher(None, fold(a), fold(b)).ratio()


def page_range(pages):
    """(first, last) with the last page written in full: '663-72' -> ('663', '672'), 'e31-9' -> ('e31', 'e39')."""
    if not pages:
        return None
    parts = [p.strip() for p in re.split(rf"[{_DASHES}]", str(pages)) if p.strip()]
    if not parts:
        return None
    first, last = parts[0], parts[-1]
    prefix = re.match(r"[A-Za-z]*", first).group(0)
    last_digits = last[len(prefix):] if prefix and last.lower().startswith(prefix.lower()) else last
    first_digits = first[len(prefix):]
    if last_digits.isdigit() and first_digits.isdigit() and len(last_digits) < len(first_digits):
        last_digits = first_digits[: len(first_digits) - len(last_digits)] + last_digits
    return first, prefix + last_digits


def first_page(pages):
    return (page_range(pages) or (None,))[0]


def same_number(a, b):
    """Volumes and issues: '04' is '4', case and spaces do not count."""
    def norm(value):
        return re.sub(r"\b0+(\d)", r"\1", fold(str(value)))
    return norm(a) == norm(b)


# ------------------------------------------------------------------------ journals


@lru_cache(maxsize=1)
def journal_entries():
    """journals.yml: the curated equivalence of journal names."""
    return yaml.safe_load(Path(__file__).with_name("journals.yml").read_text(encoding="utf-8"))


def _fold_journal(name):
    words = fold(name).split()
    return " ".join(words[1:] if words[:1] == ["the"] else words)


def _abbreviates(short, full):
    """'Pain Med' abbreviates 'Pain Medicine': each word a prefix of the full title's word."""
    short_words = _fold_journal(short).split()
    full_words = [w for w in _fold_journal(full).split() if w not in _STOPWORDS]
    return len(short_words) == len(full_words) and all(
        f.startswith(s) for s, f in zip(short_words, full_words)
    )


class Journals:
    """Which names denote the same journal: journals.yml, then kb.db's (journal, iso) pairs.

    A pair never merges two journals the curated list keeps apart (a mislabelled
    record cannot make "Arthritis Rheumatol" equal "Arthritis Rheum").
    """

    def __init__(self, entries, pairs=()):
        self._ids = {}
        self._names = {}
        for entry in entries:
            self._add(entry["iso"], [entry["iso"], entry.get("title"), *entry.get("variants", [])])
        for journal, iso in pairs:
            self.add_pair(journal, iso)

    def _add(self, journal_id, names):
        for name in names:
            if name:
                self._ids.setdefault(_fold_journal(name), journal_id)
                self._names.setdefault(journal_id, []).append(name)

    def add_pair(self, journal, iso):
        names = [n for n in (iso, journal) if n]
        known = {self.lookup(n) for n in names} - {None}
        if len(known) > 1 or not names:
            return
        self._add(known.pop() if known else names[0], names)

    def lookup(self, name):
        """The journal's id (its ISO abbreviation) or None when the name is unknown."""
        if not name:
            return None
        folded = _fold_journal(name)
        return self._ids.get(folded) or self._ids.get(_fold_journal(re.sub(r"\([^)]*\)", "", name)))

    def _guess(self, name):
        """An unknown name's journal when it abbreviates (or spells out) exactly one we know."""
        ids = {
            journal_id
            for journal_id, names in self._names.items()
            if any(_abbreviates(name, n) or _abbreviates(n, name) for n in names)
        }
        return ids.pop() if len(ids) == 1 else None

    def same(self, a, b):
        id_a = self.lookup(a) or self._guess(a)
        id_b = self.lookup(b) or self._guess(b)
        if id_a and id_b:
            return id_a == id_b
        return _fold_journal(a) == _fold_journal(b) or _abbreviates(a, b) or _abbreviates(b, a)

    def iso(self, name):
        return self.lookup(name) or self._guess(name)


def load_journals(db=None):
    pairs = []
    if db is not None and db["papers"].exists():
        pairs = db.execute("select distinct journal, journal_iso from papers").fetchall()
    return Journals(journal_entries(), pairs)


# ------------------------------------------------------------------------ splitting

_NUMBER = re.compile(r"^\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\d{1,4}[.)])\s+")
_PARTICLES = r"(?:(?:van|von|der|den|de|del|della|di|da|dos|du|le|la|ten|ter)\s+)*"
# A capitalised word with a lower-case letter somewhere ("McCue", not "LDN"), optionally two
# ("Del Pino-Gaya"). Possessive runs: a list of names that fails must fail in linear time.
_SURNAME_WORD = r"[A-ZÀ-Þ](?=[\w'’-]*[a-zß-ÿ])[\w'’-]*+"
_SURNAME = rf"{_SURNAME_WORD}(?:\s{_SURNAME_WORD})?"
_AUTHOR_START = re.compile(rf"^{_PARTICLES}{_SURNAME},?\s+[A-Z]{{1,3}}(?:[.,\s]|$)")
_HEADING = re.compile(r"^\s*(?:references?|bibliography|literature cited|works cited|sources)\s*:?\s*$", re.I)
_CONTINUATION = re.compile(r"^(?:doi|https?:|pmid|pmcid|pubmed|epub|\[epub|available|published)", re.I)
_ENDS_REFERENCE = re.compile(r"(?:[.?!\d]|10\.\d{4,9}/\S+)$")
_DOI_TAIL = re.compile(r"(?:10\.\d{4,9}/|https?://)\S*$")


def split_references(text):
    """One string per reference, wrapped lines re-joined, in input order."""
    lines = [line.rstrip() for line in text.splitlines() if not _HEADING.match(line)]
    numbered = sum(bool(_numbered_start(line)) for line in lines) >= 2 or bool(
        _numbered_start(next((line for line in lines if line.strip()), ""))
    )
    blocks, current, number = [], [], None
    for line in lines:
        marker = _NUMBER.match(line)
        if not line.strip():
            current = _flush(blocks, current)
        elif current and not _starts_new_reference(line, current, numbered, number):
            current.append(line)
        else:
            current = _flush(blocks, current) + [line]
            number = _marker_number(marker)
    _flush(blocks, current)
    return [_join_lines(block) for block in blocks]


def _flush(blocks, current):
    if current:
        blocks.append(current)
    return []


def _numbered_start(line):
    """The number marker of a line that starts a numbered reference ("2. Younger", "[3] Smith")."""
    marker = _NUMBER.match(line)
    if not marker:
        return None
    rest = line[marker.end():]
    return None if re.match(r"[a-z\d]", rest) or _CONTINUATION.match(rest) else marker


def _marker_number(marker):
    return int(re.sub(r"\D", "", marker.group(0))) if marker else None


def _starts_new_reference(line, block, numbered, number):
    marker = _NUMBER.match(line)
    if numbered:
        # The next number, or a marker before something that is not the rest of a wrapped
        # line: "38. doi:..." after "...;65(2):529-" continues reference 2.
        return bool(marker) and (_marker_number(marker) == (number or 0) + 1 or bool(_numbered_start(line)))
    # Unnumbered: a line starts a reference when the previous one ended a reference and
    # this one reads like the start of one, not the rest of a wrapped title or locus.
    line = line.strip()
    if not _ENDS_REFERENCE.search(block[-1].strip()) or _CONTINUATION.match(line) or re.match(r"[a-z\d]", line):
        return False
    return bool(_AUTHOR_START.match(line)) or bool(_find_locus(" ".join(block))[0])


def _join_lines(block):
    text = block[0].strip()
    for line in block[1:]:
        line = line.strip()
        text += _glue(text, line) + line
    return text


def _glue(text, line):
    """No space where a line break cut a hyphenated word or a DOI ('...2009.' + 'x')."""
    if text.endswith("-") and not text.endswith(" -"):
        return ""
    if _DOI_TAIL.search(text) and not _CONTINUATION.match(line):
        if text.endswith(("/", "_")) or (text.endswith(".") and re.match(r"[a-z0-9]", line)):
            return ""
    return " "


# ------------------------------------------------------------------------- parsing

_PMID = re.compile(
    r"\b(?:PubMed\s+)?PMID\s*:?\s*(\d{1,9})\b[.;,]?"
    r"|\bhttps?://(?:pubmed\.ncbi\.nlm\.nih\.gov/|www\.ncbi\.nlm\.nih\.gov/pubmed/)(\d{1,9})/?",
    re.I,
)
_PMCID = re.compile(r"\bPMCID\s*:?\s*PMC\d+\b[.;,]?|\bPMC\d{4,}\b[.;,]?", re.I)
_DOI = re.compile(
    r"(?:\bdoi\s*:?\s*|\bhttps?://(?:dx\.)?doi\.org/|\b(?:dx\.)?doi\.org/)?(10\.\d{4,9}/[^\s\"<>]+)",
    re.I,
)
_URL = re.compile(r"(?:\b(?:Available (?:from|at)|Retrieved from)\s*:?\s*)?\bhttps?://\S+", re.I)
_NOISE = re.compile(
    r"\[(?:Epub ahead of print|PubMed|Google Scholar|CrossRef|PMC free article|Ref list|Internet)\]\.?"
    r"|\[(?:cited|accessed)[^\]]*\]\.?"
    r"|\bEpub\s+(?:ahead of print\.?|\d{4}(?:\s+[A-Z][a-z]{2,8})?(?:\s+\d{1,2})?\.?)"
    r"|\bPublished online\b[^.]*\.",
    re.I,
)
_APA_YEAR = re.compile(r"\(\s*((?:19|20)\d\d)[a-z]?(?:,[^)]*)?\s*\)\.?")
_YEAR = re.compile(r"(?<![\d.])((?:19|20)\d\d)[a-z]?(?!\d)")
_DATE_WORD = r"(?:[A-Z][a-z]{2,8}\.?|\d{1,2})"
_VANCOUVER_LOCUS = re.compile(
    rf"(?<![\d/.])(?P<year>(?:19|20)\d\d)[a-z]?(?:\s+{_DATE_WORD}(?:[\s/{_DASHES}]+{_DATE_WORD})*)?"
    rf"\s*;\s*(?P<volume>[A-Za-z]?\d[^();:\s]*)?\s*(?:\((?P<issue>[^)]*)\))?"
    rf"(?:\s*:\s*(?P<pages>{_PAGES}))?"
)
# "Pain Medicine, 10(4), 663-672." (APA), "Pain Med 10(4):663-672" (Springer),
# "Biomedicines 2017, 5, 16." (MDPI: the year is taken from what precedes it)
_VOLUME_LOCUS = re.compile(
    rf"(?:,\s*|\s+)(?P<volume>\d+[A-Za-z]?)\s*(?:\((?P<issue>[^)]*)\))?\s*[,:]\s*"
    rf"(?:Article\s+|pp?\.\s*)?(?P<pages>{_PAGES})\s*\.?\s*$"
)
_INITIALS = r"[A-Z]{1,6}"  # PubMed writes up to five or six ("Azi LMTDA")
_NAME = rf"{_PARTICLES}{_SURNAME}\s+{_INITIALS}\b"
_SHORT_NAME = rf"[A-ZÀ-Þ]\s+{_INITIALS}\b"  # a surname PubMed has only as an initial ("V D")
_GROUP = (
    r"[A-Z][\w'’-]*(?:\s+[\w'’&-]+){0,8}?\s+"
    r"(?:Group|Investigators|Consortium|Collaboration|Collaborative|Committee|Network)"
)
_ET_AL = r"et\s*al\b\.?"
_VANCOUVER_AUTHORS = re.compile(
    rf"^(?P<names>(?:{_NAME}|{_GROUP})(?:\s*,\s*(?:{_NAME}|{_GROUP}|{_SHORT_NAME}))*)"
    rf"(?P<et_al>\s*,?\s*{_ET_AL})?\s*[.:]\s+"
)
_APA_NAME = re.compile(rf"({_PARTICLES}[A-ZÀ-Þ][^,&()]*?),\s*((?:[A-Z]\.\s*-?\s*){{1,4}})(?=[,;&\s]|$)")
_ABBREVIATION = re.compile(r"[A-Z][a-z]{0,5}\.")  # one word of a dotted journal abbreviation
_MAX_UNKNOWN_JOURNAL_WORDS = 7  # longer tails of the text are the end of a title


def parse_reference(text, journals=None):
    """The fields of one reference; absent fields are None (authors: an empty list)."""
    journals = journals or Journals(journal_entries())
    ref = {
        "input": text, "authors": [], "et_al": False, "title": None, "journal": None,
        "year": None, "volume": None, "issue": None, "pages": None, "doi": None,
        "doi_cited": None, "pmid": None,
    }
    body = _take_identifiers(_NUMBER.sub("", text, count=1), ref)
    apa_year = _APA_YEAR.search(body)
    apa_names = _parse_names(body[: apa_year.start()]) if apa_year else None
    if apa_names:  # "Younger, J., & Mackey, S. (2009)." or "Younger J, Mackey S (2009)"
        ref["authors"], ref["et_al"] = apa_names
        ref["year"] = int(apa_year.group(1))
        rest = body[apa_year.end():]
    else:
        rest = _take_vancouver_authors(body, ref)
    locus, before = _find_locus(rest)
    if locus:
        for field in ("volume", "issue", "pages"):
            ref[field] = (locus.groupdict().get(field) or "").strip() or None
        if locus.groupdict().get("year"):
            ref["year"] = int(locus.group("year"))
    before = _take_trailing_year(before, ref)
    ref["title"], ref["journal"] = _split_title_journal(before, journals)
    return ref


def _take_identifiers(body, ref):
    """Record PMID and DOI, then drop every identifier, URL and "Epub" note from the text."""
    pmid = _PMID.search(body)
    if pmid:
        ref["pmid"] = pmid.group(1) or pmid.group(2)
    doi = _DOI.search(body)
    if doi:
        ref["doi_cited"] = doi.group(1)
        try:
            ref["doi"] = normalise_doi(doi.group(1))
        except DOIError:
            ref["doi"] = None
    for pattern in (_PMID, _PMCID, _DOI, _URL, _NOISE):
        body = pattern.sub(" ", body)
    return " ".join(body.split()).strip(" ;,")


def _take_vancouver_authors(body, ref):
    """Leading authors: 'Younger J, Mackey S.' (Vancouver, AMA) or 'Parkitny, L.; Younger, J.' (MDPI)."""
    match = _VANCOUVER_AUTHORS.match(body)
    names = _parse_names(match.group("names")) if match else None
    if names:
        ref["authors"], ref["et_al"] = names[0], bool(match.group("et_al"))
        return body[match.end():]
    # Inverted names end at an initial followed by the title: take the longest prefix that
    # is all names ("Younger, J. W. Reduced" ends after "W.", not after "J.").
    # A prefix that is not all names stays so when extended: stop at the first one.
    found, taken = None, 0
    for match in re.finditer(r"[A-Z]\.(?=\s+[A-Z\"“‘'])", body):
        names = _parse_names(body[: match.end()])
        if not names:
            break
        found, taken = names, match.end()
    if found:
        ref["authors"], ref["et_al"] = found
    return body[taken:]


def _parse_names(text):
    """(names as PubMed writes them, et_al) from a Vancouver/AMA or APA author list, or None."""
    et_al = bool(re.search(rf"\b{_ET_AL}|\.\.\.|…", text))
    text = re.sub(rf",?\s*(?:\b{_ET_AL}|\.\.\.|…)", " ", text).strip(" ,;")
    if not text:
        return None
    if _APA_NAME.search(text):
        if re.sub(r"\b(?:and)\b|[\s,;&.]", "", _APA_NAME.sub("", text)):
            return None  # words that are not names: this is not an author list
        names = [(last.strip(), re.sub(r"[^A-Z]", "", initials)) for last, initials in _APA_NAME.findall(text)]
    else:
        names = []
        for piece in re.split(r"\s*(?:,|;|&|\band\b)\s*", text.rstrip(".")):
            match = re.fullmatch(rf"({_PARTICLES}{_SURNAME}|[A-ZÀ-Þ])\s+({_INITIALS})", piece)
            if match:
                names.append((match.group(1), match.group(2)))
            elif re.fullmatch(_GROUP, piece):
                names.append((piece, ""))
            elif piece:
                return None
    if not names:
        return None
    return [f"{last} {initials}".strip() for last, initials in names], et_al


def _find_locus(rest):
    """(match, text before it) for 'YYYY;vol(issue):pages' or 'Journal, vol(issue), pages'."""
    for pattern in (_VANCOUVER_LOCUS, _VOLUME_LOCUS):
        match = pattern.search(rest)
        if match:
            return match, rest[: match.start()]
    return None, rest


def _take_trailing_year(text, ref):
    """A year closing the text: 'Pain Med. 2009.', 'Lancet Rheumatol. 2023 Dec 12:S2665-...'
    (an online-first locus), 'Biomedicines 2017'. Returns the text before it."""
    years = list(_YEAR.finditer(text))
    if not years:
        return text
    last = years[-1]
    after = text[last.end():]
    if re.search(r"[.?!]\s+\S", after):
        return text  # more sentences follow: the year is part of the title
    before = text[: last.start()].rstrip()
    starts_sentence = not before or before[-1] in ".?!"
    ends_text = re.fullmatch(r"[a-z]?[.,;]?\s*", after)
    if not (starts_sentence or ends_text):
        return text
    if ref["year"] is None:
        ref["year"] = int(last.group(1))
    return text[: last.start()]


def _split_title_journal(text, journals):
    """The title, and the journal as the trailing sentence(s) of what precedes the locus."""
    text = text.strip().strip(",;")
    quoted = re.match(r"[\"“‘'](.+?)[\"”’'][.,]?\s+([^a-z].*)$", text)  # Harvard, Chicago
    if quoted:
        return _clean_title(quoted.group(1)), _clean_journal(quoted.group(2))
    segments = [s for s in re.split(r"(?<=[.?!])\s+", text) if s]
    if not segments:
        return None, None
    for cut in range(1, len(segments)):  # the longest known journal name at the end
        if journals.lookup(" ".join(segments[cut:]).rstrip(",")):
            return _clean_title(" ".join(segments[:cut])), _clean_journal(" ".join(segments[cut:]))
    if len(segments) == 1:
        return _clean_title(segments[0]), None
    cut = len(segments) - 1
    while cut > 1 and _ABBREVIATION.fullmatch(segments[cut - 1]):  # "J. Clin. Med."
        cut -= 1
    journal = " ".join(segments[cut:])
    if len(journal.split()) > _MAX_UNKNOWN_JOURNAL_WORDS or journal.endswith("?"):
        return _clean_title(text), None
    return _clean_title(" ".join(segments[:cut])), _clean_journal(journal)


def _clean_title(title):
    title = title.strip().strip("\"“”'‘’").strip()
    return re.sub(r"[.,;:]+$", "", title).strip() or None


def _clean_journal(journal):
    return re.sub(r"[.,;:]+$", "", journal.strip().strip("*_")).strip() or None


def is_recognisable(ref):
    """Enough to look for: an identifier, or a title of three words or more with authors, year or journal."""
    if ref["pmid"] or ref["doi"]:
        return True
    has_title = bool(ref["title"]) and len(title_words(ref["title"])) >= 3
    return has_title and bool(ref["authors"] or ref["year"] or ref["journal"])


# ----------------------------------------------------------------------- records

_RECORD_FIELDS = ("pmid", "doi", "title", "journal", "journal_iso", "volume", "issue", "pages", "year")


def record_from_kb(db, key):
    """A paper from kb.db in the form `compare` reads, or None."""
    row = db.execute(
        f"select {', '.join(_RECORD_FIELDS)}, authors from papers where paper_id = ?", [key]
    ).fetchone()
    if not row:
        return None
    record = dict(zip(_RECORD_FIELDS, row))
    names = [r[0] for r in db.execute("select name from authors where paper_id = ? order by position", [key])]
    record["authors"] = names or [n for n in (row[-1] or "").split(", ") if n]
    record["key"] = key
    return record


def record_from_pubmed(parsed):
    """A parse_pubmed_xml record in the same form."""
    record = {field: parsed.get(field) for field in _RECORD_FIELDS}
    record["authors"] = [store.author_name(a) for a in parsed.get("authors", [])]
    record["key"] = parsed["pmid"]
    return record


# ----------------------------------------------------------------------- scoring


def _name_parts(name):
    """'Younger J' -> ('younger', 'j'); a group name stays whole."""
    match = re.fullmatch(rf"(.+?)\s+({_INITIALS})", name.strip())
    if match:
        return fold_name(match.group(1)), match.group(2)[0].lower()
    return fold_name(name), ""


def _same_author(cited, correct):
    last_a, initial_a = _name_parts(cited)
    last_b, initial_b = _name_parts(correct)
    return last_a == last_b and (not initial_a or not initial_b or initial_a == initial_b)


def agreement(ref, record, journals):
    """How well the record fits the fields the reference gives, 0-1; None if it gives none."""
    checks = []
    if ref["title"] and record.get("title"):
        checks.append(("title", title_similarity(ref["title"], record["title"])))
    if ref["authors"] and record.get("authors"):
        found = sum(any(_same_author(a, b) for b in record["authors"]) for a in ref["authors"])
        checks.append(("authors", found / len(ref["authors"])))
    if ref["year"] and record.get("year"):
        gap = abs(int(ref["year"]) - int(record["year"]))
        checks.append(("year", 1.0 if gap == 0 else 0.5 if gap == 1 else 0.0))
    if ref["volume"] and record.get("volume"):
        checks.append(("volume", float(same_number(ref["volume"], record["volume"]))))
    cited_pages, correct_pages = page_range(ref["pages"]), page_range(record.get("pages"))
    if cited_pages and correct_pages:
        checks.append(("first_page", float(cited_pages[0].lower() == correct_pages[0].lower())))
    if ref["journal"] and (record.get("journal_iso") or record.get("journal")):
        checks.append(("journal", float(_journal_matches(ref["journal"], record, journals))))
    if not checks:
        return None
    return sum(WEIGHTS[k] * v for k, v in checks) / sum(WEIGHTS[k] for k, _ in checks)


def _journal_matches(cited, record, journals):
    return any(journals.same(cited, name) for name in (record.get("journal_iso"), record.get("journal")) if name)


def confidence(method, score):
    if score is None:
        return IDENTIFIER_ONLY_CONFIDENCE
    prior = METHOD_PRIOR[method]
    return round(prior + (1 - prior) * score, 2)


# --------------------------------------------------------------------- comparing


def compare(ref, record, journals):
    """Discrepancies between a parsed reference and its record, in `KINDS` order."""
    found = []

    def report(kind, cited, correct):
        found.append({"kind": kind, "cited": cited, "correct": correct})

    if ref["pmid"] and record.get("pmid") and ref["pmid"] != record["pmid"]:
        report("pmid_wrong", ref["pmid"], record["pmid"])
    correct_doi = (record.get("doi") or "").lower()
    if ref["doi_cited"] and correct_doi and ref["doi"] != correct_doi:
        cited = ref["doi"] or ref["doi_cited"]
        kind = "doi_truncated" if correct_doi.startswith(cited.rstrip(".-_/")) else "doi_wrong"
        report(kind, ref["doi_cited"].rstrip(",;"), correct_doi)
    # A bare identifier ("PMID: 123") cites no fields, so none of them is missing.
    cites_fields = bool(ref["title"])
    correct_journal = record.get("journal_iso") or record.get("journal")
    if correct_journal and not ref["journal"]:
        if cites_fields:
            report("journal_missing", None, correct_journal)
    elif correct_journal and not _journal_matches(ref["journal"], record, journals):
        report("journal_wrong", ref["journal"], correct_journal)
    if ref["year"] and record.get("year") and int(ref["year"]) != int(record["year"]):
        report("year_wrong", int(ref["year"]), int(record["year"]))
    for field in ("volume", "issue"):
        if ref[field] and record.get(field) and not same_number(ref[field], record[field]):
            report(f"{field}_wrong", ref[field], record[field])
    cited_pages, correct_pages = page_range(ref["pages"]), page_range(record.get("pages"))
    if cited_pages and correct_pages and not _same_pages(cited_pages, correct_pages):
        report("pages_wrong", ref["pages"], record["pages"])
    if ref["authors"] or cites_fields:
        for kind, cited, correct in compare_authors(ref["authors"], ref["et_al"], record.get("authors") or []):
            report(kind, cited, correct)
    if ref["title"] and record.get("title") and fold(ref["title"]) != fold(record["title"]):
        report("title_mismatch", ref["title"], _clean_title(record["title"]))
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(found, key=lambda d: order[d["kind"]])


def _same_pages(cited, correct):
    """A cited first page alone matches; a cited range must match the whole range."""
    cited, correct = [p.lower() for p in cited], [p.lower() for p in correct]
    if cited[0] != correct[0]:
        return False
    return cited[1] == cited[0] or cited[1] == correct[1]


def compare_authors(cited, et_al, correct):
    """(kind, cited, correct) for wrong, missing and misordered authors.

    "et al." covers every author after the ones listed; names match on surname
    and first initial, so "Younger JW" is "Younger J".
    """
    if not correct:
        return []
    cited_names = list(cited)
    if not cited_names:
        return [("author_missing", None, ", ".join(correct))]
    used, matched, wrong = set(), [], []
    for name in cited_names:
        index = next(
            (i for i, c in enumerate(correct) if i not in used and _same_author(name, c)), None
        )
        if index is None:
            wrong.append(name)
        else:
            used.add(index)
            matched.append(index)
    listed_span = len(cited_names) if et_al else len(correct)
    unmatched = [c for i, c in enumerate(correct) if i not in used and i < listed_span]
    problems = []
    if matched != sorted(matched):
        problems.append(("author_order", ", ".join(cited_names), ", ".join(correct[: max(listed_span, 1)])))
    # A wrong name usually stands where a correct one should: pair them off in order.
    replaced = unmatched[: len(wrong)]
    missing = unmatched[len(wrong):]
    if missing:
        problems.append(("author_missing", ", ".join(cited_names), ", ".join(missing)))
    if wrong:
        problems.append(("author_wrong", ", ".join(wrong), ", ".join(replaced) or None))
    return problems


# -------------------------------------------------------------------- citations


def corrected_vancouver(record):
    """NLM/Vancouver, as PubMed cites: up to six authors then "et al", abbreviated pages."""
    citation = store.format_citation(record, record["authors"])
    return _with_identifiers(citation, record, pmid=True)


def corrected_ama(record):
    """AMA 11th edition: up to six authors (else three and "et al"), full page range."""
    names = record["authors"]
    if len(names) > 6:
        names = names[:3] + ["et al"]
    title = (record.get("title") or "").strip()
    title = title if title.endswith(("?", "!", ".")) else title + "."
    locus = str(record.get("year") or "")
    if record.get("volume"):
        locus += f";{record['volume']}" + (f"({record['issue']})" if record.get("issue") else "")
    pages = page_range(record.get("pages"))
    if pages:
        locus += ":" + (pages[0] if pages[0] == pages[1] else f"{pages[0]}-{pages[1]}")
    journal = record.get("journal_iso") or record.get("journal") or ""
    parts = [
        ", ".join(names) + "." if names else "", title,
        f"{journal}." if journal else "", f"{locus}." if locus else "",
    ]
    return _with_identifiers(" ".join(p for p in parts if p), record, pmid=False)


def _with_identifiers(citation, record, pmid):
    if record.get("doi"):
        citation += f" doi:{record['doi']}" + ("." if pmid else "")
    if pmid and record.get("pmid"):
        citation += f" PMID: {record['pmid']}."
    return citation


# --------------------------------------------------------------------- resolving


class KnowledgeBase:
    """Lookups in kb.db: each returns paper keys."""

    name = "kb.db"

    def __init__(self, db):
        self.db = db

    def record(self, key):
        return record_from_kb(self.db, key)

    def find(self, method, ref, journals):
        return getattr(self, f"by_{method}")(ref, journals)

    def by_pmid(self, ref, journals):
        return self._keys("select paper_id from papers where pmid = ?", [ref["pmid"]]) if ref["pmid"] else []

    def by_doi(self, ref, journals):
        if not ref["doi"]:
            return []
        return self._keys(
            "select paper_id from papers where lower(doi) = ? or paper_id = ?", [ref["doi"], f"doi:{ref['doi']}"]
        )

    def by_doi_repaired(self, ref, journals):
        if not ref["doi"]:
            return []
        return self._keys(
            "select paper_id from papers where substr(lower(doi), 1, length(?)) = ? and lower(doi) != ?",
            [ref["doi"], ref["doi"], ref["doi"]],
        )

    def by_ecitmatch(self, ref, journals):
        """What ECitMatch does, in kb.db: same year and first page (and volume when cited)."""
        first = first_page(ref["pages"])
        if not (ref["year"] and first):
            return []
        rows = self.db.execute("select paper_id, volume, pages from papers where year = ?", [ref["year"]])
        return [
            key for key, volume, pages in rows
            if (first_page(pages) or "").lower() == first.lower()
            and (not ref["volume"] or not volume or same_number(ref["volume"], volume))
        ]

    def by_title(self, ref, journals):
        words = title_words(ref["title"])
        if not words:
            return []
        if not self.db["papers_fts"].exists():
            return []  # a kb.db not yet shaped by ensure_db_shape has no search index
        query = "title : (" + " OR ".join(f'"{w}"' for w in words) + ")"
        return self._keys(
            "select papers.paper_id from papers_fts join papers on papers.rowid = papers_fts.rowid "
            "where papers_fts match ? order by rank limit ?",
            [query, TITLE_CANDIDATES],
        )

    def _keys(self, sql, params):
        return [row[0] for row in self.db.execute(sql, params)]


class PubMed:
    """Lookups in PubMed through E-utilities: each returns PMIDs; records are fetched once."""

    name = "PubMed"

    def __init__(self, client):
        self.client = client
        self._records = {}

    def record(self, pmid):
        if pmid not in self._records:
            self.fetch([pmid])
        return self._records.get(pmid)

    def fetch(self, pmids):
        wanted = [p for p in pmids if p not in self._records]
        for _, xml in fetch_records(self.client, wanted):
            try:
                records, _ = parse_pubmed_xml(xml)
            except ParseError as error:
                log.warning("PubMed sent an unreadable record for %s: %s", ",".join(wanted), error)
                continue
            for parsed in records:
                self._records[parsed["pmid"]] = record_from_pubmed(parsed)
        for pmid in wanted:
            self._records.setdefault(pmid, None)

    def find(self, method, ref, journals):
        pmids = getattr(self, f"by_{method}")(ref, journals)
        self.fetch(pmids)  # one efetch for all of a method's candidates
        return pmids

    def by_pmid(self, ref, journals):
        return [ref["pmid"]] if ref["pmid"] else []

    def by_doi(self, ref, journals):
        return fetch_pmids_for_dois(self.client, [ref["doi"]]) if ref["doi"] else []

    def by_doi_repaired(self, ref, journals):
        return fetch_truncated_candidates(self.client, [ref["doi"]]) if ref["doi"] else []

    def by_ecitmatch(self, ref, journals):
        first = first_page(ref["pages"])
        if not (ref["journal"] and ref["year"] and first):
            return []
        author = ref["authors"][0] if ref["authors"] else ""
        found = self.client.ecitmatch([{
            "journal": journals.iso(ref["journal"]) or ref["journal"], "year": ref["year"],
            "volume": ref["volume"], "first_page": first, "author": author, "key": "ref",
        }])
        return [found["ref"]] if found.get("ref") else []

    def by_title(self, ref, journals):
        # Plain words, as a person types them: PubMed maps them to fields itself.
        words = [w for w in re.split(r"[^\w-]+", (ref["title"] or "").lower()) if w.strip("-")]
        words = [w for w in words if w not in _STOPWORDS]
        if not words:
            return []
        pmids, _ = self.client.esearch(" ".join(words), retmax=TITLE_CANDIDATES, sort="relevance")
        return pmids


class Resolver:
    """Finds the record a reference cites: kb.db first, then PubMed unless offline or unreachable."""

    def __init__(self, db=None, client=None, offline=False, journals=None):
        self.journals = journals or load_journals(db)
        self.sources = [KnowledgeBase(db)] if db is not None else []
        self._client = client
        self.offline = offline
        self.pubmed_problem = None  # why PubMed could not be asked; said once

    def _pubmed(self):
        if self.offline or self.pubmed_problem:
            return None
        if not any(isinstance(s, PubMed) for s in self.sources):
            self.sources.append(PubMed(self._client or EutilsClient(**DEFAULT_CLIENT_OPTIONS)))
        return self.sources[-1]

    def resolve(self, ref):
        """(record, method, score) or (None, None, reason)."""
        best_rejected = None
        for source in self._sources():
            for method in METHODS:
                try:
                    keys = source.find(method, ref, self.journals)
                    candidates = [r for r in (source.record(k) for k in keys) if r]
                except EsearchError as error:
                    log.info("%s %s lookup failed: %s", source.name, method, error)
                    continue
                except EutilsError as error:
                    self._pubmed_unreachable(error)
                    break
                for record in candidates:
                    self.journals.add_pair(record.get("journal"), record.get("journal_iso"))
                scored = [(agreement(ref, r, self.journals), r) for r in candidates]
                accepted = [(s, r) for s, r in scored if _accepted(method, s)]
                if accepted:
                    score, record = max(accepted, key=lambda pair: pair[0] or 0)
                    return record, method, score
                for score, record in scored:
                    if best_rejected is None or (score or 0) > best_rejected[0]:
                        best_rejected = (score or 0, record)
        return None, None, self._unresolved_reason(best_rejected)

    def _sources(self):
        """kb.db, then PubMed: PubMed is created only when kb.db did not answer."""
        yield from [s for s in self.sources if isinstance(s, KnowledgeBase)]
        pubmed = self._pubmed()
        if pubmed:
            yield pubmed

    def _pubmed_unreachable(self, error):
        self.pubmed_problem = f"PubMed not reachable ({error}); results from kb.db only"
        log.info(self.pubmed_problem)  # users see it once, in the report or the JSON notes

    def _unresolved_reason(self, best_rejected):
        places = " or ".join(s.name for s in self._searched())
        if not places:
            return "nothing to search: no kb.db, and " + ("offline" if self.offline else "PubMed not reachable")
        if best_rejected:
            score, record = best_rejected
            return (
                f"no confirmed match in {places}; closest was {record['key']} "
                f"({(record.get('title') or '')[:60]}), agreement {score:.2f}"
            )
        return f"no match in {places}"

    def _searched(self):
        return [s for s in self.sources if not (isinstance(s, PubMed) and self.pubmed_problem)]


def _accepted(method, score):
    if score is None:
        return method in ("pmid", "doi")
    return score >= ACCEPT_AT[method]


# ----------------------------------------------------------------- the command's API


def check_references(text, db=None, client=None, offline=False):
    """Check every reference in `text`; one result dict per reference, in input order.

    `db` is a sqlite_utils Database or a path to kb.db (read only; missing is fine);
    `client` an EutilsClient (default: one for KB_EUTILS_URL); `offline` never
    touches the network.
    """
    db = _open_existing(db)
    resolver = Resolver(db, client, offline)
    return [
        check_reference(position, reference, resolver)
        for position, reference in enumerate(split_references(text), start=1)
    ]


def _open_existing(db):
    if db is None or isinstance(db, sqlite_utils.Database):
        return db
    return sqlite_utils.Database(db) if Path(db).exists() else None


def check_reference(position, text, resolver):
    ref = parse_reference(text, resolver.journals)
    result = {
        "position": position, "input": text, "status": "unresolved", "pmid": None, "doi": None,
        "method": None, "confidence": None, "citation": None, "discrepancies": [],
        "corrected_citation": None, "corrected_ama": None, "corrected_vancouver": None,
        "reason": None, "note": None, "cited": cited_fields(ref),
    }
    if not is_recognisable(ref):
        result["reason"] = (
            "no recognisable reference: no identifier, and no title with authors, year or journal"
        )
        return result
    problem_before = resolver.pubmed_problem
    record, method, score = resolver.resolve(ref)
    if resolver.pubmed_problem and (record is None or resolver.pubmed_problem != problem_before):
        result["note"] = resolver.pubmed_problem
    if record is None:
        result["reason"] = score
        return result
    discrepancies = compare(ref, record, resolver.journals)
    vancouver = corrected_vancouver(record)
    result.update(
        status="discrepancies" if discrepancies else "ok",
        pmid=record.get("pmid"), doi=record.get("doi"), method=method,
        confidence=confidence(method, score),
        citation=store.format_citation(record, record["authors"]),
        discrepancies=discrepancies, corrected_citation=vancouver,
        corrected_ama=corrected_ama(record), corrected_vancouver=vancouver,
    )
    return result


def cited_fields(ref):
    fields = {k: ref[k] for k in ("title", "journal", "year", "volume", "issue", "pages", "doi", "pmid")}
    fields["authors"] = ref["authors"] + (["et al"] if ref["et_al"] else [])
    return fields


def exit_code(results):
    """0 all clean, 1 discrepancies, 2 any reference unresolved (or nothing to check)."""
    statuses = {r["status"] for r in results}
    if not results or "unresolved" in statuses:
        return 2
    return 1 if "discrepancies" in statuses else 0


def format_report(results):
    """Human-readable report: one block per reference, then a summary line."""
    lines = []
    notes = list(dict.fromkeys(r["note"] for r in results if r.get("note")))
    lines += [f"Note: {note}" for note in notes]
    for result in results:
        lines += _report_block(result)
    counts = {s: sum(r["status"] == s for r in results) for s in ("ok", "discrepancies", "unresolved")}
    lines.append(
        f"{len(results)} reference(s): {counts['ok']} ok, {counts['discrepancies']} with "
        f"discrepancies, {counts['unresolved']} unresolved"
    )
    return "\n".join(lines) + "\n"


def _report_block(result):
    lines = [f"[{result['position']}] {result['input']}"]
    if result["status"] == "unresolved":
        return lines + [f"    UNRESOLVED: {result['reason']}", ""]
    lines.append(
        f"    {result['status'].upper()}: PMID {result['pmid'] or '-'}, DOI {result['doi'] or '-'} "
        f"(matched by {result['method']}, confidence {result['confidence']:.2f})"
    )
    lines.append(f"    record: {result['citation']}")
    for d in result["discrepancies"]:
        cited = "(none)" if d["cited"] is None else d["cited"]
        lines.append(f"    - {d['kind']}: cited {cited}; correct {d['correct']}")
    if result["discrepancies"]:
        lines.append(f"    corrected (AMA):       {result['corrected_ama']}")
        lines.append(f"    corrected (Vancouver): {result['corrected_vancouver']}")
    return lines + [""]


def save_checks(db, results):
    """Store results in reference_checks (one row per reference, per run). Returns the row ids."""
    store.ensure_db_shape(db)
    stamp = store.now()
    ids = []
    with db.conn:
        for result in results:
            row = {
                column: result.get(column)
                for column in ("position", "input", "pmid", "doi", "status", "method", "confidence",
                               "corrected_ama", "corrected_vancouver", "reason")
            }
            row.update(discrepancies=json.dumps(result["discrepancies"]), checked_at=stamp)
            ids.append(db["reference_checks"].insert(row).last_pk)
    return ids
