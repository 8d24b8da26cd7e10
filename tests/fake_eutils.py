"""A local stand-in for NCBI E-utilities (esearch, efetch, ecitmatch), for tests and benchmarks.

No machine here reaches NCBI, so the real client (`harvest.fetch.EutilsClient`)
is exercised against this server instead. It answers in the formats the real
service uses (DOCTYPE lines, element order, HTTP 200 with `<ERROR>` or
`ErrorList` inside, NCBI's JSON 429 body), limits the request rate the way NCBI
does, logs every request, and can be told to misbehave for the next requests.

    with FakeEutils(records=synthetic_records(20)) as server:
        client = EutilsClient(base_url=server.base_url, backoff=0.05)
        server.inject("429", times=2)          # the next two requests get 429
        client.esearch('"10.5555/x"[aid]')
        assert server.count("esearch.fcgi") == 3

Records are `FakeRecord`s (rendered to PubmedArticle XML) or raw
`<PubmedArticle>` / `<PubmedBookArticle>` chunks (`add_xml`), e.g. the
hand-written files in tests/fixtures.
"""

from __future__ import annotations

import collections
import json
import random
import re
import socket
import struct
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape, quoteattr

ESEARCH_DOCTYPE = (
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">'
)
PUBMED_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
EUTILS_PATH = "/entrez/eutils/"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

_HTML_ERROR = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<title>NCBI - WWW Error {status} Diagnostic</title>
</head><body>
<div id="main"><h1>Error {status}</h1>
<p class="error">{reason}</p>
<p>The server encountered an internal error or misconfiguration and was unable to complete your request.</p>
<p><em>Reference</em> = {ref}</p>
</div></body></html>
"""
_GATEWAY_ERROR = """<html>
<head><title>{status} {reason}</title></head>
<body>
<center><h1>{status} {reason}</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""


# --------------------------------------------------------------------------- records


@dataclass
class FakeRecord:
    """One PubMed journal article, rendered as a PubmedArticle chunk in the real format.

    `doi` goes in PubmedData/ArticleIdList, `elocation_doi` in Article/ELocationID
    (either may be None). `abstract` is a list of (label or None, text).
    Dates are "YYYY/MM/DD": `mdat` (last modified) and `edat` (Entrez date).
    """

    pmid: str
    title: str
    abstract: list = field(default_factory=list)
    doi: str | None = None
    elocation_doi: str | None = None
    journal_iso: str = "Pain Med"
    journal_title: str = "Pain medicine (Malden, Mass.)"
    issn: str = "1526-4637"
    year: int = 2020
    month: int = 1
    volume: str | None = "1"
    issue: str | None = "1"
    first_page: str | None = "1"
    last_page: str | None = None
    authors: list = field(default_factory=lambda: [("Doe", "Jane")])  # (last, fore)
    pmcid: str | None = None
    publication_types: list = field(default_factory=lambda: [("D016428", "Journal Article")])
    mdat: str = "2020/06/01"
    edat: str = "2020/01/15"
    language: str = "eng"

    def to_xml(self):
        e = escape
        mdat = _split_date(self.mdat)
        edat = _split_date(self.edat)
        parts = [
            '<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM" IndexingMethod="Automated">',
            f'<PMID Version="1">{e(self.pmid)}</PMID>',
            _date_xml("DateCompleted", edat),
            _date_xml("DateRevised", mdat),
            '<Article PubModel="Print-Electronic"><Journal>',
            f'<ISSN IssnType="Electronic">{e(self.issn)}</ISSN>' if self.issn else "",
            '<JournalIssue CitedMedium="Internet">',
            f"<Volume>{e(self.volume)}</Volume>" if self.volume else "",
            f"<Issue>{e(self.issue)}</Issue>" if self.issue else "",
            f"<PubDate><Year>{self.year}</Year><Month>{MONTHS[self.month - 1]}</Month></PubDate>",
            "</JournalIssue>",
            f"<Title>{e(self.journal_title)}</Title>",
            f"<ISOAbbreviation>{e(self.journal_iso)}</ISOAbbreviation></Journal>",
            f"<ArticleTitle>{e(self.title)}</ArticleTitle>",
        ]
        if self.first_page:
            pages = self.first_page + (f"-{self.last_page}" if self.last_page else "")
            parts.append(
                f"<Pagination><StartPage>{e(self.first_page)}</StartPage>"
                + (f"<EndPage>{e(self.last_page)}</EndPage>" if self.last_page else "")
                + f"<MedlinePgn>{e(pages)}</MedlinePgn></Pagination>"
            )
        if self.elocation_doi:
            parts.append(f'<ELocationID EIdType="doi" ValidYN="Y">{e(self.elocation_doi)}</ELocationID>')
        if not self.first_page and not self.elocation_doi:
            parts.append(f'<ELocationID EIdType="pii" ValidYN="Y">e{e(self.pmid)}</ELocationID>')
        if self.abstract:
            parts.append("<Abstract>")
            for label, text in self.abstract:
                attrs = (
                    f" Label={quoteattr(label)} NlmCategory={quoteattr(_nlm_category(label))}"
                    if label
                    else ""
                )
                parts.append(f"<AbstractText{attrs}>{e(text)}</AbstractText>")
            parts.append("</Abstract>")
        if self.authors:
            parts.append('<AuthorList CompleteYN="Y">')
            for last, fore in self.authors:
                parts.append(
                    f'<Author ValidYN="Y"><LastName>{e(last)}</LastName><ForeName>{e(fore)}</ForeName>'
                    f"<Initials>{e(_initials(fore))}</Initials></Author>"
                )
            parts.append("</AuthorList>")
        parts.append(f"<Language>{e(self.language)}</Language>")
        parts.append("<PublicationTypeList>")
        for ui, name in self.publication_types:
            parts.append(f'<PublicationType UI="{e(ui)}">{e(name)}</PublicationType>')
        parts.append("</PublicationTypeList>")
        parts.append(
            f'<ArticleDate DateType="Electronic"><Year>{edat[0]}</Year><Month>{edat[1]:02d}</Month>'
            f"<Day>{edat[2]:02d}</Day></ArticleDate>"
        )
        parts.append("</Article>")
        parts.append(
            "<MedlineJournalInfo><Country>United States</Country>"
            f"<MedlineTA>{e(self.journal_iso)}</MedlineTA><NlmUniqueID>100894201</NlmUniqueID>"
            "</MedlineJournalInfo>"
        )
        parts.append("<CitationSubset>IM</CitationSubset></MedlineCitation>")
        parts.append("<PubmedData><History>")
        parts.append(_pubmed_date("received", (edat[0] - (1 if edat[1] < 4 else 0), (edat[1] - 4) % 12 + 1, 3)))
        for status, date in (("entrez", edat), ("pubmed", edat), ("medline", mdat)):
            parts.append(_pubmed_date(status, date, with_time=True))
        parts.append("</History><PublicationStatus>ppublish</PublicationStatus><ArticleIdList>")
        parts.append(f'<ArticleId IdType="pubmed">{e(self.pmid)}</ArticleId>')
        if self.doi:
            parts.append(f'<ArticleId IdType="doi">{e(self.doi)}</ArticleId>')
        if self.pmcid:
            parts.append(f'<ArticleId IdType="pmc">{e(self.pmcid)}</ArticleId>')
        parts.append("</ArticleIdList></PubmedData></PubmedArticle>")
        return "".join(p for p in parts if p)


def _split_date(text):
    pieces = [int(p) for p in re.split(r"[/-]", text)]
    while len(pieces) < 3:
        pieces.append(1)
    return tuple(pieces[:3])


def _date_xml(tag, date):
    return f"<{tag}><Year>{date[0]}</Year><Month>{date[1]:02d}</Month><Day>{date[2]:02d}</Day></{tag}>"


def _pubmed_date(status, date, with_time=False):
    clock = "<Hour>6</Hour><Minute>0</Minute>" if with_time else ""
    return (
        f'<PubMedPubDate PubStatus="{status}"><Year>{date[0]}</Year><Month>{date[1]}</Month>'
        f"<Day>{date[2]}</Day>{clock}</PubMedPubDate>"
    )


def _initials(fore):
    return "".join(w[0] for w in re.split(r"[\s-]+", fore) if w).upper()


def _nlm_category(label):
    upper = label.upper()
    for key, category in (
        ("BACKGROUND", "BACKGROUND"), ("INTRODUCTION", "BACKGROUND"), ("OBJECTIVE", "OBJECTIVE"),
        ("AIM", "OBJECTIVE"), ("METHOD", "METHODS"), ("DESIGN", "METHODS"), ("RESULT", "RESULTS"),
        ("FINDING", "RESULTS"), ("CONCLUSION", "CONCLUSIONS"), ("INTERPRETATION", "CONCLUSIONS"),
    ):
        if key in upper:
            return category
    return "UNASSIGNED"


# ---------------------------------------------------------------- synthetic records

_JOURNALS = [
    ("Pain Med", "Pain medicine (Malden, Mass.)", "1526-4637", "10.1093/pm/pnz{n:03d}"),
    ("J Pain Res", "Journal of pain research", "1178-7090", "10.2147/JPR.S{n:06d}"),
    ("Clin Rheumatol", "Clinical rheumatology", "1434-9949", "10.1007/s10067-0{y2:02d}-0{n:04d}-x"),
    ("J Clin Med", "Journal of clinical medicine", "2077-0383", "10.3390/jcm{y2:02d}{n:05d}"),
    ("Arthritis Res Ther", "Arthritis research & therapy", "1478-6362", "10.1186/s13075-0{y2:02d}-0{n:04d}-{c}"),
    ("Front Pharmacol", "Frontiers in pharmacology", "1663-9812", "10.3389/fphar.20{y2:02d}.{n:06d}"),
    ("Eur J Pain", "European journal of pain (London, England)", "1532-2149", "10.1002/ejp.{n:04d}"),
    ("Medicine (Baltimore)", "Medicine", "1536-5964", "10.1097/MD.00000000000{n:05d}"),
]
_SURNAMES = [
    "Alvarez", "Bergstrom", "Chandra", "Dufresne", "Eklund", "Fujimoto", "Gallagher", "Haddad",
    "Ilves", "Jovanovic", "Kowalczyk", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Pereira",
    "Quintero", "Rasmussen", "Sato", "Thorsen", "Uribe", "Varga", "Whitfield", "Yilmaz", "Zanetti",
]
_FORENAMES = [
    "Amira", "Bjorn", "Carla", "Deepak", "Elin", "Farid", "Greta", "Hiroshi", "Ines", "Jonas",
    "Katarzyna", "Luis", "Mei", "Nils", "Olu", "Paula", "Rafael", "Sanna", "Tomasz", "Yara",
]
_LDN_TITLES = [
    "Low-dose naltrexone for {cond}: a {design}",
    "Effects of low-dose naltrexone on {outcome} in {cond}: a {design}",
    "{Outcome} after {weeks} weeks of low-dose naltrexone in women with {cond}",
    "Naltrexone at low doses and {outcome} in {cond}: {design}",
]
_OTHER_TITLES = [
    "{Outcome} in {cond}: a {design}",
    "Exercise therapy and {outcome} in {cond}: a {design}",
    "Duloxetine versus pregabalin for {outcome} in {cond}",
    "Sleep quality and {outcome} among adults with {cond}",
]
_CONDITIONS = ["fibromyalgia", "fibromyalgia syndrome", "chronic widespread pain", "fibromyalgia and chronic fatigue"]
_DESIGNS = [
    "randomized placebo-controlled trial", "pilot study", "retrospective cohort study",
    "crossover trial", "systematic review", "open-label feasibility study",
]
_OUTCOMES = ["pain intensity", "fatigue", "sleep disturbance", "inflammatory markers", "quality of life"]


def synthetic_records(n, seed=0, start_pmid=39000000, ldn_share=0.6):
    """`n` deterministic, invented PubMed records with distinct DOIs.

    About `ldn_share` of them mention low-dose naltrexone and fibromyalgia. DOI
    placement varies like PubMed's: most records carry the DOI both in
    ArticleIdList and ELocationID, every 5th only in ArticleIdList, every 7th
    only in ELocationID. Some DOIs keep the publisher's upper case.
    """
    rng = random.Random(seed)
    records = []
    for i in range(n):
        iso, title_full, issn, doi_pattern = _JOURNALS[i % len(_JOURNALS)]
        year = 2008 + (i * 7 + seed) % 17
        doi = doi_pattern.format(n=1000 + i + seed * 100003, y2=year % 100, c=i % 10)
        is_ldn = rng.random() < ldn_share
        values = {
            "cond": rng.choice(_CONDITIONS),
            "design": rng.choice(_DESIGNS),
            "outcome": rng.choice(_OUTCOMES),
            "weeks": rng.choice([8, 10, 12, 16]),
        }
        values["Outcome"] = values["outcome"][0].upper() + values["outcome"][1:]
        template = rng.choice(_LDN_TITLES if is_ldn else _OTHER_TITLES)
        title = template.format(**values) + "."
        title = title[0].upper() + title[1:]
        n_patients = rng.randint(12, 240)
        drug = "low-dose naltrexone (4.5 mg nightly)" if is_ldn else "the study intervention"
        abstract = [
            ("BACKGROUND", f"{values['Outcome']} remains hard to treat in {values['cond']}, and few "
             f"options address it directly. We examined {drug} in this setting."),
            ("METHODS", f"In this {values['design']}, {n_patients} adults were followed for "
             f"{values['weeks']} weeks; the primary outcome was change in {values['outcome']}."),
            ("RESULTS", f"{values['Outcome']} improved by {rng.randint(5, 40)}% on average "
             f"(95% CI {rng.randint(1, 4)} to {rng.randint(41, 60)}); adverse events were mild."),
            ("CONCLUSIONS", "The findings support a larger confirmatory study."),
        ]
        where = i % 35
        in_aid = where % 7 != 6  # every 7th: DOI only in ELocationID
        in_lid = where % 5 != 4  # every 5th: DOI only in ArticleIdList
        if not in_aid and not in_lid:
            in_aid = True
        month = 1 + (i * 5) % 12
        authors = [
            (rng.choice(_SURNAMES), rng.choice(_FORENAMES)) for _ in range(1 + rng.randint(0, 5))
        ]
        records.append(
            FakeRecord(
                pmid=str(start_pmid + i * 3 + 1),
                title=title,
                abstract=abstract,
                doi=doi if in_aid else None,
                elocation_doi=doi if in_lid else None,
                journal_iso=iso,
                journal_title=title_full,
                issn=issn,
                year=year,
                month=month,
                volume=str(year - 1990 + i % 3),
                issue=str(1 + i % 12),
                first_page=str(100 + (i * 37) % 900),
                last_page=str(100 + (i * 37) % 900 + 9),
                authors=authors,
                pmcid=f"PMC{8000000 + i}" if i % 3 == 0 else None,
                mdat=f"{min(year + 1, 2025)}/{month:02d}/{1 + i % 28:02d}",
                edat=f"{year}/{month:02d}/{1 + (i * 3) % 28:02d}",
            )
        )
    return records


def record_dois(records):
    """The DOI of each FakeRecord, lower-cased as the project normalises them."""
    return [(r.doi or r.elocation_doi).lower() for r in records]


# --------------------------------------------------------------------------- index


@dataclass
class _Entry:
    pmid: str
    xml: str
    aids: set  # lower-case ids from ArticleIdList (doi, pii, pmc ...)
    lids: set  # lower-case ELocationID values
    words: str  # lower-case title + abstract
    title: str
    journals: set
    year: str
    volume: str
    first_page: str
    authors: list  # lower-case "younger j"
    mdat: tuple
    edat: tuple


def _entry_from_xml(chunk, mdat=None, edat=None):
    root = ET.fromstring(chunk)
    book = root.tag == "PubmedBookArticle"
    if book:
        doc = root.find("BookDocument")
        pmid = doc.findtext("PMID")
        aid_nodes = doc.findall("ArticleIdList/ArticleId") + root.findall("PubmedBookData/ArticleIdList/ArticleId")
        lid_nodes = doc.findall("Book/ELocationID")
        title_node = doc.find("ArticleTitle")
        if title_node is None:
            title_node = doc.find("Book/BookTitle")
        abstract_nodes = doc.findall("Abstract/AbstractText")
        journals, year, volume, first_page = set(), doc.findtext("Book/PubDate/Year") or "", "", ""
        author_nodes = doc.findall("AuthorList/Author")
        revised = doc.find("DateRevised")
        history = root.find("PubmedBookData/History")
    else:
        citation = root.find("MedlineCitation")
        article = citation.find("Article")
        pmid = citation.findtext("PMID")
        aid_nodes = root.findall("PubmedData/ArticleIdList/ArticleId")
        lid_nodes = article.findall("ELocationID")
        title_node = article.find("ArticleTitle")
        abstract_nodes = article.findall("Abstract/AbstractText")
        issue = article.find("Journal/JournalIssue")
        journals = {
            t.lower()
            for t in (
                article.findtext("Journal/ISOAbbreviation"),
                article.findtext("Journal/Title"),
                citation.findtext("MedlineJournalInfo/MedlineTA"),
            )
            if t
        }
        year = issue.findtext("PubDate/Year") or ""
        if not year:
            found = re.search(r"\d{4}", issue.findtext("PubDate/MedlineDate") or "")
            year = found.group(0) if found else ""
        volume = issue.findtext("Volume") or ""
        first_page = article.findtext("Pagination/StartPage") or ""
        if not first_page:
            first_page = (article.findtext("Pagination/MedlinePgn") or "").split("-")[0]
        author_nodes = article.findall("AuthorList/Author")
        revised = citation.find("DateRevised")
        history = root.find("PubmedData/History")
    title = "".join(title_node.itertext()) if title_node is not None else ""
    text = " ".join([title] + ["".join(n.itertext()) for n in abstract_nodes])
    authors = []
    for node in author_nodes:
        if node.findtext("LastName"):
            authors.append(f"{node.findtext('LastName')} {node.findtext('Initials') or ''}".strip().lower())
        elif node.find("CollectiveName") is not None:
            authors.append("".join(node.find("CollectiveName").itertext()).lower())

    def date_of(node):
        if node is None or not node.findtext("Year"):
            return None
        return (int(node.findtext("Year")), int(node.findtext("Month") or 1), int(node.findtext("Day") or 1))

    entrez = None
    if history is not None:
        for status in ("entrez", "pubmed"):
            entrez = entrez or date_of(history.find(f"PubMedPubDate[@PubStatus='{status}']"))
    return _Entry(
        pmid=pmid,
        xml=chunk,
        aids={(n.text or "").strip().lower() for n in aid_nodes if n.get("IdType") != "pubmed"},
        lids={(n.text or "").strip().lower() for n in lid_nodes},
        words=text.lower(),
        title=title.lower(),
        journals=journals,
        year=year,
        volume=volume,
        first_page=first_page,
        authors=authors,
        mdat=_split_date(mdat) if mdat else (date_of(revised) or (1900, 1, 1)),
        edat=_split_date(edat) if edat else (entrez or date_of(revised) or (1900, 1, 1)),
    )


# ----------------------------------------------------------------------- term parser


class QuerySyntaxError(ValueError):
    pass


_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|"(?P<quoted>[^"]*)"(?:\[(?P<qfield>[^\]]*)\])?'
    r'|(?P<word>[^\s()"\[\]]+)(?:\[(?P<wfield>[^\]]*)\])?|(?P<bad>\S))'
)
_OPERATORS = {"AND", "OR", "NOT"}
_DATE_FIELDS = {"mdat": "mdat", "edat": "edat", "crdt": "edat", "dp": "pdat", "pdat": "pdat"}
_FIELDS = {
    "aid": "aid", "lid": "lid", "uid": "uid", "pmid": "uid", "ti": "ti", "title": "ti",
    "tiab": "tiab", "all fields": "tiab", "all": "tiab", "au": "au", "author": "au",
    "1au": "1au", "ta": "ta", "journal": "ta", "vi": "vi", "pg": "pg", "doi": "aid",
    **_DATE_FIELDS,
}


def _tokenize(term):
    tokens = []
    position = 0
    term = term.rstrip()
    while position < len(term):
        match = _TOKEN.match(term, position)
        if not match or match.end() == position:
            break
        position = match.end()
        if match.group("lp"):
            tokens.append(("(", None, None))
        elif match.group("rp"):
            tokens.append((")", None, None))
        elif match.group("quoted") is not None:
            tokens.append(("term", match.group("quoted"), match.group("qfield"), True))
        elif match.group("word") is not None:
            word = match.group("word")
            if word == ":" and match.group("wfield") is None:
                tokens.append((":", None, None))
            elif word in _OPERATORS and match.group("wfield") is None:
                tokens.append((word, None, None))
            elif match.group("wfield") is not None:
                # PubMed applies a tag to the whole run of bare words before it: "younger j[au]"
                words = [word]
                while tokens and tokens[-1][0] == "term" and tokens[-1][2] is None and not tokens[-1][3]:
                    words.insert(0, tokens.pop()[1])
                tokens.append(("term", " ".join(words), match.group("wfield"), False))
            else:
                tokens.append(("term", word, None, False))
        else:
            bad = match.group("bad")
            if bad == '"':
                raise QuerySyntaxError("Unbalanced quotation marks")
            raise QuerySyntaxError(f"Unexpected character {bad!r} in query")
    return tokens


class _Parser:
    """PubMed query grammar, booleans evaluated left to right as PubMed does.

    query   := group (OP group | group)*      (adjacent groups: implicit AND)
    group   := '(' query ')' | leaf [':' leaf]
    """

    def __init__(self, tokens):
        self.tokens = tokens
        self.position = 0

    def peek(self):
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def take(self):
        token = self.tokens[self.position]
        self.position += 1
        return token

    def parse(self):
        if not self.tokens:
            raise QuerySyntaxError("Empty term and query_key - nothing todo")
        node = self.query()
        if self.position != len(self.tokens):
            if self.peek() == ")":
                raise QuerySyntaxError("Unbalanced parentheses: unexpected ')'")
            raise QuerySyntaxError("Invalid query syntax")
        return node

    def query(self):
        node = self.group()
        while self.peek() not in (None, ")"):
            if self.peek() in _OPERATORS:
                op = self.take()[0]
                if self.peek() in (None, ")", "AND", "OR", "NOT", ":"):
                    raise QuerySyntaxError(f"Missing operand after {op}")
            else:
                op = "AND"
            right = self.group()
            # consecutive bare words form one "all words" phrase search
            if op == "AND" and node[0] == "leaf" and right[0] == "leaf" and _bare(node) and _bare(right):
                node = ("leaf", node[1] + " " + right[1], None, False, node[4] + " " + right[4])
            else:
                node = (op, node, right)
        return node

    def group(self):
        kind = self.peek()
        if kind == "(":
            self.take()
            node = self.query()
            if self.peek() != ")":
                raise QuerySyntaxError("Unbalanced parentheses: missing ')'")
            self.take()
            return node
        if kind != "term":
            raise QuerySyntaxError(f"Unexpected {kind or 'end of query'}")
        _, text, field_name, quoted = self.take()
        raw = (f'"{text}"' if quoted else text) + (f"[{field_name}]" if field_name is not None else "")
        leaf = ("leaf", text, field_name, quoted, raw)
        if self.peek() == ":":
            self.take()
            if self.peek() != "term":
                raise QuerySyntaxError("Incomplete range")
            _, upper, upper_field, upper_quoted = self.take()
            upper_raw = (f'"{upper}"' if upper_quoted else upper) + (f"[{upper_field}]" if upper_field else "")
            return ("range", text, upper, (field_name or upper_field or "").lower(), f"{raw} : {upper_raw}")
        return leaf


def _bare(leaf):
    return leaf[2] is None and not leaf[3]


def _date_bound(text, upper):
    pieces = [int(p) for p in re.findall(r"\d+", text)]
    if not pieces:
        raise QuerySyntaxError(f"Invalid date {text!r}")
    if upper:
        defaults = [pieces[0], 12, 31]
    else:
        defaults = [pieces[0], 1, 1]
    return tuple(pieces + defaults[len(pieces):])[:3]


class _Evaluator:
    def __init__(self, entries):
        self.entries = entries
        self.not_found = []
        self.field_not_found = []

    def run(self, node):
        kind = node[0]
        if kind in ("AND", "OR", "NOT"):
            left, right = self.run(node[1]), self.run(node[2])
            if kind == "AND":
                return left & right
            if kind == "OR":
                return left | right
            return left - right
        if kind == "range":
            _, low, high, field_name, raw = node
            attr = _DATE_FIELDS.get(field_name)
            if attr is None:
                raise QuerySyntaxError(f"Range search not supported for field [{field_name}]")
            lo, hi = _date_bound(low, False), _date_bound(high, True)
            found = {p for p, e in self.entries.items() if lo <= self._date(e, attr) <= hi}
            if not found:
                self.not_found.append(raw)
            return found
        _, text, field_name, quoted, raw = node
        found = self.leaf(text, field_name, quoted)
        if not found:
            self.not_found.append(raw)
        return found

    @staticmethod
    def _date(entry, attr):
        if attr == "pdat":
            return (int(entry.year or 0), 1, 1)
        return getattr(entry, attr)

    def leaf(self, text, field_name, quoted):
        value = text.strip().lower()
        name = _FIELDS.get((field_name or "").strip().lower()) if field_name is not None else "tiab"
        if name is None:
            self.field_not_found.append(field_name)
            name = "tiab"
        wildcard = value.endswith("*")
        stem = value.rstrip("*")
        if name in ("aid", "lid"):
            def match(entry):
                ids = entry.aids if name == "aid" else entry.lids
                return any(i.startswith(stem) for i in ids) if wildcard else value in ids
        elif name == "uid":
            return {value} & set(self.entries)
        elif name in _DATE_FIELDS.values():
            lo, hi = _date_bound(value, False), _date_bound(value, True)
            return {p for p, e in self.entries.items() if lo <= self._date(e, name) <= hi}
        elif name == "ta":
            def match(entry):
                return value in entry.journals
        elif name == "vi":
            def match(entry):
                return entry.volume.lower() == value
        elif name == "pg":
            def match(entry):
                return entry.first_page.lower() == value
        elif name in ("au", "1au"):
            def match(entry):
                names = entry.authors[:1] if name == "1au" else entry.authors
                return any(a == value or a.startswith(value + " ") or (wildcard and a.startswith(stem)) for a in names)
        else:
            haystack = "ti" if name == "ti" else "tiab"
            if quoted:
                def match(entry):
                    text_of = entry.title if haystack == "ti" else entry.words
                    return re.search(r"\b" + re.escape(value) + r"\b", text_of) is not None
            else:
                words = [w for w in re.split(r"[^\w*.-]+", value) if w]

                def match(entry):
                    text_of = entry.title if haystack == "ti" else entry.words
                    tokens = set(re.findall(r"[\w.-]+", text_of))
                    for word in words:
                        if word.endswith("*"):
                            if not any(t.startswith(word[:-1]) for t in tokens):
                                return False
                        elif word not in tokens and not any(t.strip(".-") == word for t in tokens):
                            return False
                    return bool(words)
        return {p for p, e in self.entries.items() if match(e)}


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """One scripted misbehaviour, applied to one matching request.

    kind: "429" (NCBI JSON body; `retry_after` adds the header), "500" / "502" /
    "503" / "504" (HTML error page), "status" (any `status`, `body`,
    `content_type`), "truncate" (200 whose body stops at `fraction` of its
    length; `at_tag=True` cuts just after a '>', `cut_after=b"..."` just after
    those bytes), "slow" (sleep `delay` s, then
    answer normally), "stall_mid_body" (headers and half the body, a `delay` s
    pause, then the rest), "reset" (drop the connection with a TCP RST before any
    reply), "reset_mid_body" (valid headers, half the body, then RST).

    E-utilities' own failures, as the live service produces them:
    "400_timeout" (HTTP 400 whose `<ERROR>` names a back-end timeout; the retry
    succeeds), "error_200" (HTTP 200 whose whole document is an `<ERROR>` with
    `text`), "midstream" (HTTP 200 with `text` inserted into the body between two
    records or ids; `plus=True` writes `+` for spaces; `cut=True` ends the body at the
    inserted text instead of continuing).
    """

    kind: str
    endpoint: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    fraction: float = 0.5
    at_tag: bool = False
    cut_after: bytes | None = None  # "truncate": cut right after the first occurrence of these bytes
    status: int = 500
    body: bytes | None = None
    content_type: str = "text/html; charset=UTF-8"
    text: str = "Error reading from remote server"
    plus: bool = False
    cut: bool = False


def realistic_faults(retry_after="2"):
    """The live service's misbehaviour as (kind, options) pairs, for `random_faults`: rate-limit
    429s with and without Retry-After (users report about 2 s), back-end timeouts as 400,
    `<ERROR>` documents and error text mid-stream in a 200, gateway errors, cut bodies, resets."""
    return [
        ("429", {}),
        ("429", {"retry_after": retry_after}),
        ("400_timeout", {}),
        ("error_200", {"text": "Error reading from remote server"}),
        ("midstream", {}),
        ("midstream", {"text": "Resource temporarily unavailable", "plus": True}),
        ("midstream", {"text": "Bad gateway", "cut": True}),
        ("502", {}),
        ("503", {}),
        ("truncate", {"endpoint": "efetch.fcgi", "fraction": 0.7}),
        ("reset", {}),
        ("reset_mid_body", {}),
    ]


@dataclass
class LoggedRequest:
    endpoint: str
    method: str
    params: dict
    time: float  # time.monotonic() at arrival
    client: str
    status: int | None = None
    fault: str | None = None


class _Dropped(Exception):
    """The handler dropped the connection on purpose."""


# --------------------------------------------------------------------------- server


class FakeEutils:
    """The fake E-utilities server. Start with `start()` or use as a context manager.

    rate_limit: enforce NCBI's 3 (no key) / 10 (with api_key) requests per second.
    retry_after: value of the Retry-After header on rate-limit 429s (None: no header,
    as NCBI usually sends). valid_api_keys: when set, other keys get NCBI's HTTP 400
    "API key invalid" JSON. pubmed_doctype: the DOCTYPE line of efetch answers.
    max_get_url: a GET whose URL is longer than this gets NCBI's 414 HTML page.
    content_type: of XML answers (the live service sends it with and without charset).
    Every answer carries X-RateLimit-Limit and X-RateLimit-Remaining, as NCBI's do.
    `random_faults(mix, rate, seed)` makes a share of requests misbehave at random.
    """

    def __init__(
        self,
        records=(),
        rate_limit=True,
        limit_without_key=3,
        limit_with_key=10,
        retry_after=None,
        valid_api_keys=None,
        pubmed_doctype=PUBMED_DOCTYPE,
        max_get_url=8000,
        content_type="text/xml; charset=UTF-8",
    ):
        self.rate_limit = rate_limit
        self.max_get_url = max_get_url
        self.content_type = content_type
        self._mix = None  # (faults, rate, random.Random) for random_faults
        self.pubmed_doctype = pubmed_doctype  # e.g. a newer DTD version than Biopython ships
        self.limit_without_key = limit_without_key
        self.limit_with_key = limit_with_key
        self.retry_after = retry_after
        self.valid_api_keys = set(valid_api_keys) if valid_api_keys is not None else None
        self.entries = {}
        self.log = []
        self._faults = []
        self._windows = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None
        for record in records:
            self.add(record)

    # records ---------------------------------------------------------------

    def add(self, record, mdat=None, edat=None):
        """Add a FakeRecord or one PubmedArticle/PubmedBookArticle XML chunk."""
        if isinstance(record, FakeRecord):
            entry = _entry_from_xml(record.to_xml(), mdat or record.mdat, edat or record.edat)
        else:
            entry = _entry_from_xml(record, mdat, edat)
        with self._lock:
            self.entries[entry.pmid] = entry
        return entry.pmid

    def add_xml(self, document, mdat=None, edat=None):
        """Add every record of an efetch document (bytes or str). Returns their PMIDs."""
        text = document.decode("utf-8") if isinstance(document, (bytes, bytearray)) else document
        chunks = re.findall(
            r"<PubmedArticle>.*?</PubmedArticle>|<PubmedBookArticle>.*?</PubmedBookArticle>", text, re.S
        )
        return [self.add(chunk, mdat, edat) for chunk in chunks]

    def remove(self, pmid):
        with self._lock:
            self.entries.pop(str(pmid), None)

    # faults ----------------------------------------------------------------

    def inject(self, kind, times=1, endpoint=None, **options):
        """Queue `times` copies of a fault for the next matching requests (FIFO)."""
        with self._lock:
            for _ in range(times):
                self._faults.append(Fault(kind=str(kind), endpoint=endpoint, **options))

    def random_faults(self, mix, rate, seed=0):
        """From now on, each request with no queued fault gets, with probability `rate`, a
        fault drawn from `mix` (a list of (kind, options) pairs), repeatably for a seed."""
        with self._lock:
            self._mix = ([Fault(kind=str(k), **options) for k, options in mix], rate, random.Random(seed))

    def clear_faults(self):
        with self._lock:
            self._faults.clear()
            self._mix = None

    @property
    def pending_faults(self):
        with self._lock:
            return len(self._faults)

    def _take_fault(self, endpoint):
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.endpoint in (None, endpoint):
                    return self._faults.pop(index)
            if self._mix and endpoint in _ENDPOINTS:
                faults, rate, rng = self._mix
                if rng.random() < rate:
                    return rng.choice([f for f in faults if f.endpoint in (None, endpoint)] or [None])
        return None

    # log -------------------------------------------------------------------

    def requests_to(self, endpoint=None):
        with self._lock:
            return [r for r in self.log if endpoint is None or r.endpoint == endpoint]

    def count(self, endpoint=None):
        return len(self.requests_to(endpoint))

    def clear_log(self):
        with self._lock:
            self.log.clear()
            self._windows.clear()

    def max_in_window(self, seconds=1.0, endpoint=None):
        """The most requests that arrived within any `seconds`-long window."""
        times = sorted(r.time for r in self.requests_to(endpoint))
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    # lifecycle -------------------------------------------------------------

    def start(self):
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}{EUTILS_PATH}"

    # rate limit --------------------------------------------------------------

    def _arrival(self, who, has_key, now):
        """Register an arrival; returns (count in the last second, limit)."""
        limit = self.limit_with_key if has_key else self.limit_without_key
        with self._lock:
            window = self._windows[who]
            window.append(now)
            while window and now - window[0] >= 1.0:
                window.popleft()
            return len(window), limit

    # answers -----------------------------------------------------------------

    def esearch(self, params):
        term = params.get("term", "")
        try:
            retmax = int(params.get("retmax", 20))
            retstart = int(params.get("retstart", 0))
        except ValueError:
            return 200, self.content_type, _esearch_error("Invalid retmax or retstart")
        if params.get("db", "pubmed") != "pubmed":
            return 200, self.content_type, _esearch_error(f"Invalid db name specified: {params.get('db')}")
        try:
            tree = _Parser(_tokenize(term)).parse()
            with self._lock:
                entries = dict(self.entries)
            evaluator = _Evaluator(entries)
            found = evaluator.run(tree)
        except QuerySyntaxError as error:
            return 200, self.content_type, _esearch_error(str(error))
        ids = sorted(found, key=int, reverse=True)  # most recent first, like PubMed's default
        page = ids[retstart : retstart + retmax]
        translation = escape(" ".join(term.split()))
        body = [
            '<?xml version="1.0" encoding="UTF-8" ?>\n' + ESEARCH_DOCTYPE + "\n",
            f"<eSearchResult><Count>{len(ids)}</Count><RetMax>{len(page)}</RetMax>"
            f"<RetStart>{retstart}</RetStart>",
            "<IdList>\n" + "".join(f"<Id>{p}</Id>\n" for p in page) + "</IdList>" if page else "<IdList/>",
            f"<TranslationSet/><QueryTranslation>{translation}</QueryTranslation>",
        ]
        errors = [f"<PhraseNotFound>{escape(p)}</PhraseNotFound>" for p in evaluator.not_found]
        errors += [f"<FieldNotFound>{escape(f)}</FieldNotFound>" for f in evaluator.field_not_found]
        if errors:
            body.append("<ErrorList>" + "".join(errors) + "</ErrorList>")
        if not ids:
            body.append("<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>")
        body.append("</eSearchResult>\n")
        return 200, self.content_type, "".join(body).encode("utf-8")

    def efetch(self, params):
        if params.get("db", "pubmed") != "pubmed":
            return 400, self.content_type, _efetch_error(f"Invalid db name specified: {params.get('db')}")
        ids = [i.strip() for i in params.get("id", "").split(",") if i.strip()]
        if not ids:
            return 200, self.content_type, _efetch_error("Empty id list - nothing todo")
        if params.get("retmode", "xml") != "xml" or params.get("rettype") not in (None, "", "xml", "full"):
            return 400, "text/plain; charset=UTF-8", b"Unsupported retmode/rettype in this stand-in\n"
        with self._lock:
            chunks = [self.entries[i].xml for i in dict.fromkeys(ids) if i in self.entries]
        body = (
            '<?xml version="1.0" ?>\n' + self.pubmed_doctype + "\n<PubmedArticleSet>\n"
            + "\n".join(chunks) + ("\n" if chunks else "") + "</PubmedArticleSet>"
        )
        return 200, self.content_type, body.encode("utf-8")

    def ecitmatch(self, params):
        if params.get("retmode") != "xml":
            return 200, "text/plain; charset=UTF-8", b"ERROR: retmode=xml is required\n"
        with self._lock:
            entries = list(self.entries.values())
        journals = {j for e in entries for j in e.journals}
        out = []
        for line in re.split(r"[\r\n]+", params.get("bdata", "")):
            if not line.strip():
                continue
            fields = line.split("|")
            fields += [""] * (6 - len(fields))
            journal, year, volume, page, author, key = (f.replace("+", " ").strip() for f in fields[:6])
            echo = "|".join(fields[:6])
            if journal.lower() not in journals:
                result = "NOT_FOUND;INVALID_JOURNAL"
            else:
                hits = [
                    e for e in entries
                    if journal.lower() in e.journals
                    and (not year or e.year == year)
                    and (not volume or e.volume == volume)
                    and (not page or e.first_page == page)
                    and (not author or (e.authors and e.authors[0].startswith(author.lower())))
                ]
                if len(hits) == 1:
                    result = hits[0].pmid
                elif hits:
                    result = "AMBIGUOUS " + ",".join(sorted(h.pmid for h in hits))
                else:
                    result = "NOT_FOUND"
            out.append(f"{echo}|{result}\n")
        return 200, "text/plain; charset=UTF-8", "".join(out).encode("utf-8")


def _eutils_error_document(endpoint, message):
    """An `<ERROR>`-only answer in the endpoint's own document type."""
    return (_esearch_error if endpoint == "esearch.fcgi" else _efetch_error)(message)


def _insert_midstream(payload, fault):
    """The body with error text inserted after its first record or id (or its middle)."""
    text = (fault.text.replace(" ", "+") if fault.plus else fault.text).encode()
    boundary = next((payload.index(end) + len(end) for end in (b"</PubmedArticle>", b"</Id>") if end in payload),
                    len(payload) // 2)
    return payload[:boundary] + b"\n" + text + b"\n" + (b"" if fault.cut else payload[boundary:])


def _esearch_error(message):
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n' + ESEARCH_DOCTYPE + "\n"
        f"<eSearchResult><ERROR>{escape(message)}</ERROR></eSearchResult>\n"
    ).encode("utf-8")


def _efetch_error(message):
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<!DOCTYPE eEfetchResult PUBLIC "-//NLM//DTD efetch 20131226//EN" '
        '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20131226/efetch.dtd">\n'
        f"<eFetchResult><ERROR>{escape(message)}</ERROR></eFetchResult>\n"
    ).encode("utf-8")


_ENDPOINTS = {"esearch.fcgi": "esearch", "efetch.fcgi": "efetch", "ecitmatch.cgi": "ecitmatch"}
_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Time-out", 400: "Bad Request", 404: "Not Found"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeEutils = None
    rate_headers: dict = {}  # set per request when the fake enforces NCBI's rate limit
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def handle(self):
        try:
            super().handle()
        except (_Dropped, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def do_GET(self):
        self._serve("GET", b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self._serve("POST", self.rfile.read(length) if length else b"")

    def _serve(self, method, body):
        fake = self.fake
        arrived = time.monotonic()
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        endpoint = url.path[len(EUTILS_PATH):] if url.path.startswith(EUTILS_PATH) else url.path
        entry = LoggedRequest(endpoint, method, params, arrived, self.client_address[0])
        with fake._lock:
            fake.log.append(entry)
        api_key = params.get("api_key") or None
        count, limit = fake._arrival(api_key or self.client_address[0], bool(api_key), arrived)
        over = (count, limit) if fake.rate_limit and count > limit else None
        if fake.rate_limit:  # a server that enforces no limit announces none
            self.rate_headers = {"X-RateLimit-Limit": str(limit),
                                 "X-RateLimit-Remaining": str(max(0, limit - count))}
        if method == "GET" and len(self.path) > fake.max_get_url:
            entry.status = 414
            page = _HTML_ERROR.format(status=414, reason="Request-URI Too Long", ref="fake")
            return self._send(414, "text/html; charset=UTF-8", page.encode())
        fault = fake._take_fault(endpoint)
        if fault:
            entry.fault = fault.kind
            self._apply_fault(fault, endpoint, params, entry)
            return
        if endpoint not in _ENDPOINTS:
            page = _HTML_ERROR.format(status=404, reason="Not Found", ref="fake").encode()
            entry.status = 404
            return self._send(404, "text/html; charset=UTF-8", page)
        if fake.valid_api_keys is not None and api_key and api_key not in fake.valid_api_keys:
            entry.status = 400
            body = json.dumps({"error": "API key invalid", "api-key": api_key, "type": "invalid",
                               "status": "unknown"}).encode()
            return self._send(400, "application/json", body)
        if over:
            entry.status = 429
            return self._send_429(api_key or self.client_address[0], over[0], over[1], fake.retry_after)
        status, content_type, payload = getattr(fake, _ENDPOINTS[endpoint])(params)
        entry.status = status
        self._send(status, content_type, payload)

    def _answer(self, endpoint, params):
        if endpoint not in _ENDPOINTS:
            return 404, "text/html; charset=UTF-8", b"<html><body>Not Found</body></html>"
        return getattr(self.fake, _ENDPOINTS[endpoint])(params)

    def _apply_fault(self, fault, endpoint, params, entry):
        kind = fault.kind
        if kind == "429":
            entry.status = 429
            who = params.get("api_key") or self.client_address[0]
            limit = self.fake.limit_with_key if params.get("api_key") else self.fake.limit_without_key
            return self._send_429(who, limit + 1, limit, fault.retry_after)
        if kind in ("500", "502", "503", "504"):
            status = int(kind)
            template = _HTML_ERROR if status == 500 else _GATEWAY_ERROR
            page = template.format(status=status, reason=_REASONS[status], ref="#4.6d1b3e17.1764060000.2f8a9c")
            entry.status = status
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._send(status, "text/html; charset=UTF-8", page.encode(), headers)
        if kind == "status":
            entry.status = fault.status
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._send(fault.status, fault.content_type, fault.body or b"", headers)
        if kind == "400_timeout":
            entry.status = 400
            return self._send(400, self.fake.content_type, _eutils_error_document(
                endpoint, "The back end sent an empty response in time (Status: Timeout)"))
        if kind == "error_200":
            entry.status = 200
            return self._send(200, self.fake.content_type, _eutils_error_document(endpoint, fault.text))
        if kind == "slow":
            self.fake._stopping.wait(fault.delay)
            status, content_type, payload = self._answer(endpoint, params)
            entry.status = status
            return self._send(status, content_type, payload)
        status, content_type, payload = self._answer(endpoint, params)
        if kind == "stall_mid_body":
            entry.status = status
            half = len(payload) // 2
            self.send_response(status, _REASONS.get(status))
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[:half])
            self.fake._stopping.wait(fault.delay)
            self.wfile.write(payload[half:])
            return None
        if kind == "truncate":
            cut = max(1, int(len(payload) * fault.fraction))
            if fault.cut_after is not None and fault.cut_after in payload:
                cut = payload.index(fault.cut_after) + len(fault.cut_after)
            elif fault.at_tag:
                cut = payload.rfind(b">", 0, cut) + 1 or cut
            elif payload[cut - 1 : cut] == b">":
                cut -= 1
            entry.status = 200
            return self._send(200, content_type, payload[:cut])
        if kind == "midstream":
            entry.status = 200
            return self._send(200, content_type, _insert_midstream(payload, fault))
        if kind == "reset":
            entry.status = None
            self._reset(b"")
        if kind == "reset_mid_body":
            entry.status = None
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode()
            self._reset(head + payload[: len(payload) // 2])
        raise ValueError(f"unknown fault kind {kind!r}")

    def _reset(self, partial):
        """Send `partial` bytes, then abort the connection with a TCP RST."""
        sock = self.connection
        if partial:
            sock.sendall(partial)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()
        self.wfile.close()
        sock.close()
        raise _Dropped()

    def _send_429(self, who, count, limit, retry_after):
        body = json.dumps(
            {"error": "API rate limit exceeded", "api-key": who, "count": str(count), "limit": str(limit)}
        ).encode()
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._send(429, "application/json", body, headers)

    def _send(self, status, content_type, payload, headers=None):
        self.send_response(status, _REASONS.get(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "private")
        self.send_header("NCBI-SID", "FAKE0000000000_0000SID")
        for name, value in {**self.rate_headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
