"""Parse stage: PubMed efetch XML (bytes or any binary stream) into plain record dicts.

Bio.Entrez does the XML work with the DTDs it ships (validation on, so an
unknown tag fails loudly) and `escape=True`, which keeps PubMed's inline
markup (<i>, <sup>...) as tags and escapes everything else; we then sanitise
that to a small safe HTML subset and derive a plain-text copy.
"""

import html
import io
import logging
import re
from pathlib import Path

import nh3
from Bio import Entrez

from .relations import PUBMED_RELATIONS

log = logging.getLogger(__name__)

INLINE_TAGS = {"i", "b", "u", "sup", "sub", "em", "strong"}
SEASON_MONTHS = {"spring": "03", "summer": "06", "autumn": "09", "fall": "09", "winter": "12"}
_TAG = re.compile(r"<[^>]+>")
_PUBMED_DTD = re.compile(rb"pubmed_\d{6}\.dtd")
BUNDLED_PUBMED_DTDS = sorted(
    path.name for path in (Path(Entrez.__file__).parent / "DTDs").glob("pubmed_*.dtd")
)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


class ParseError(ValueError):
    """The bytes are not a PubMed efetch document this parser can read."""


def parse_pubmed_xml(source):
    """Records from a PubMed efetch document.

    `source` is bytes or a binary stream. Returns (records, skipped) where
    `skipped` lists (id, reason) for entries deliberately not stored.
    """
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else source.read()
    try:
        document = Entrez.read(io.BytesIO(with_bundled_dtd(data)), validate=True, escape=True)
    except Exception as error:  # Bio raises several unrelated types for bad XML
        raise ParseError(f"unreadable PubMed XML ({type(error).__name__}: {error})") from None
    if not isinstance(document, dict) or "PubmedArticle" not in document:
        raise ParseError("not a PubmedArticleSet document")
    records = [parse_article(article) for article in document["PubmedArticle"]]
    skipped = []
    for book in document.get("PubmedBookArticle", []):
        pmid = str(book.get("BookDocument", {}).get("PMID", "?"))
        # Book chapters (e.g. GeneReviews) carry no journal citation or MeSH we can use.
        reason = "PubmedBookArticle: book chapter, not a journal article"
        log.info("skipping PMID %s: %s", pmid, reason)
        skipped.append((pmid, reason))
    return records, skipped


def with_bundled_dtd(data):
    """The document, pointing at a DTD that Biopython ships.

    PubMed names a new DTD each year; Biopython would download one it lacks,
    which fails offline (and in `kb build`). Yearly DTDs mostly add elements, so
    the newest bundled one reads newer records; a truly unknown element still
    fails validation with a clear error.
    """
    named = _PUBMED_DTD.search(data[:2000])
    if named and named.group(0).decode() not in BUNDLED_PUBMED_DTDS:
        newest = BUNDLED_PUBMED_DTDS[-1]
        log.info("%s is not bundled with Biopython; reading with %s", named.group(0).decode(), newest)
        data = data.replace(named.group(0), newest.encode(), 1)
    return data


def split_records(source):
    """Each PubmedArticle of an efetch document as a standalone document, keyed by PMID.

    The raw store keeps one document per PMID, with the DOCTYPE PubMed sent, so
    `kb build` re-parses each record exactly as it arrived.
    """
    text = source.decode("utf-8") if isinstance(source, (bytes, bytearray)) else source
    doctype = re.search(r"<!DOCTYPE[^>]*>", text)
    head = '<?xml version="1.0" ?>\n' + (doctype.group(0) + "\n" if doctype else "")
    pieces = {}
    for match in re.finditer(r"<PubmedArticle>.*?</PubmedArticle>", text, re.S):
        chunk = match.group(0)
        pmid = re.search(r"<PMID[^>]*>(\d+)</PMID>", chunk)
        if pmid:
            document = f"{head}<PubmedArticleSet>\n{chunk}\n</PubmedArticleSet>\n"
            pieces[pmid.group(1)] = document.encode("utf-8")
    return pieces


def safe_html(text):
    """Inline markup kept (<i>, <sup>...), everything else escaped or dropped."""
    return nh3.clean(str(text), tags=INLINE_TAGS, attributes={})


def plain_text(text):
    return html.unescape(_TAG.sub("", str(text))).strip()


def parse_article(article):
    citation = article["MedlineCitation"]
    data = article.get("PubmedData", {})
    art = citation["Article"]
    journal = art.get("Journal", {})
    journal_issue = journal.get("JournalIssue", {})
    ids = {str(i.attributes.get("IdType")): str(i) for i in data.get("ArticleIdList", [])}
    elocations = {
        str(e.attributes.get("EIdType")): str(e) for e in art.get("ELocationID", [])
    }
    sections = parse_abstract(art.get("Abstract"))
    return {
        "pmid": str(citation["PMID"]),
        "doi": (ids.get("doi") or elocations.get("doi") or "").lower() or None,
        "dois": sorted({d.lower() for d in (ids.get("doi"), elocations.get("doi")) if d}),
        "pmcid": ids.get("pmc"),
        "title": plain_text(art.get("ArticleTitle", "")),
        "title_html": safe_html(art.get("ArticleTitle", "")),
        "abstract": "\n".join(
            f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections
        ) or None,
        "abstract_sections": sections,
        "journal": str(journal.get("Title", "")) or None,
        "journal_iso": str(journal.get("ISOAbbreviation", ""))
        or str(citation.get("MedlineJournalInfo", {}).get("MedlineTA", ""))
        or None,
        "issn": str(journal.get("ISSN", "")) or None,
        "volume": str(journal_issue.get("Volume", "")) or None,
        "issue": str(journal_issue.get("Issue", "")) or None,
        "pages": parse_pages(art.get("Pagination")),
        "year": parse_year(journal_issue.get("PubDate", {}), art.get("ArticleDate", [])),
        "pub_date": parse_pub_date(journal_issue.get("PubDate", {})),
        "language": ",".join(str(lang) for lang in art.get("Language", [])) or None,
        "authors": parse_authors(art.get("AuthorList", [])),
        "publication_types": [
            {"ui": t.attributes.get("UI"), "name": str(t)}
            for t in art.get("PublicationTypeList", [])
        ],
        "mesh": parse_mesh(citation.get("MeshHeadingList", [])),
        "keywords": [
            {"keyword": plain_text(k), "major": k.attributes.get("MajorTopicYN") == "Y"}
            for group in citation.get("KeywordList", [])
            for k in group
        ],
        "registry_ids": [
            {"registry": str(bank["DataBankName"]), "accession": str(acc)}
            for bank in art.get("DataBankList", [])
            for bank in ([bank] if isinstance(bank, dict) else bank)
            for acc in bank.get("AccessionNumberList", [])
        ],
        "grants": [
            {
                "grant_id": str(g.get("GrantID", "")) or None,
                "agency": str(g.get("Agency", "")) or None,
                "country": str(g.get("Country", "")) or None,
            }
            for g in art.get("GrantList", [])
        ],
        "comments_corrections": [
            {
                "ref_type": c.attributes.get("RefType"),
                "ref_pmid": str(c["PMID"]) if c.get("PMID") else None,
                "ref_source": str(c.get("RefSource", "")) or None,
            }
            for c in citation.get("CommentsCorrectionsList", [])
            if c.attributes.get("RefType") in PUBMED_RELATIONS  # not "Cites" (reference lists)
        ],
        "publication_status": str(data.get("PublicationStatus", "")) or None,
        "history": [
            {"status": h.attributes.get("PubStatus"), "date": format_date(h)}
            for h in data.get("History", [])
        ],
        "date_revised": format_date(citation.get("DateRevised")),
    }


def parse_abstract(abstract):
    if not abstract:
        return []
    sections = []
    for part in abstract.get("AbstractText", []):
        attributes = getattr(part, "attributes", {})
        sections.append(
            {
                "label": attributes.get("Label"),
                "nlm_category": attributes.get("NlmCategory"),
                "text": plain_text(part),
                "html": safe_html(part),
            }
        )
    return sections


def parse_authors(author_list):
    authors = []
    for position, author in enumerate(author_list, start=1):
        orcid = next(
            (
                normalise_orcid(str(i))
                for i in author.get("Identifier", [])
                if i.attributes.get("Source") == "ORCID"
            ),
            None,
        )
        authors.append(
            {
                "position": position,
                "last_name": str(author.get("LastName", "")) or None,
                "fore_name": str(author.get("ForeName", "")) or None,
                "initials": str(author.get("Initials", "")) or None,
                "collective_name": plain_text(author["CollectiveName"])
                if author.get("CollectiveName")
                else None,
                "orcid": orcid,
                "affiliations": [
                    str(a["Affiliation"]) for a in author.get("AffiliationInfo", [])
                ],
            }
        )
    return authors


def normalise_orcid(text):
    """ORCID iD as 0000-0002-1825-0097, from a URL or PubMed's occasional undashed form."""
    bare = text.rsplit("/", 1)[-1].replace("-", "").strip().upper()
    if re.fullmatch(r"\d{15}[\dX]", bare):
        return "-".join(bare[i : i + 4] for i in range(0, 16, 4))
    return text.strip()


def parse_mesh(headings):
    return [
        {
            "descriptor": str(h["DescriptorName"]),
            "ui": h["DescriptorName"].attributes.get("UI"),
            "major": h["DescriptorName"].attributes.get("MajorTopicYN") == "Y",
            "qualifiers": [
                {
                    "name": str(q),
                    "ui": q.attributes.get("UI"),
                    "major": q.attributes.get("MajorTopicYN") == "Y",
                }
                for q in h.get("QualifierName", [])
            ],
        }
        for h in headings
    ]


def parse_pages(pagination):
    if not pagination:
        return None
    if pagination.get("MedlinePgn"):
        return str(pagination["MedlinePgn"])
    start, end = pagination.get("StartPage"), pagination.get("EndPage")
    if start:
        return f"{start}-{end}" if end else str(start)
    return None


def parse_year(pub_date, article_dates):
    """Publication year from PubDate/Year, else from MedlineDate ('1998 Dec-1999 Jan'), else ArticleDate."""
    for text in (pub_date.get("Year"), pub_date.get("MedlineDate")):
        match = _YEAR.search(str(text or ""))
        if match:
            return int(match.group(1))
    for date in article_dates:
        if date.get("Year"):
            return int(date["Year"])
    return None


def parse_pub_date(pub_date):
    """ISO-ish date of issue: YYYY, YYYY-MM or YYYY-MM-DD; seasons map to their first month."""
    year = pub_date.get("Year")
    if not year:
        medline = str(pub_date.get("MedlineDate", ""))
        match = _YEAR.search(medline)
        return match.group(1) if match else None
    month = str(pub_date.get("Month", "") or pub_date.get("Season", "")).lower()
    month = SEASON_MONTHS.get(month, month)
    if month and not month.isdigit():
        month = _MONTHS.get(month[:3])
    if not month:
        return str(year)
    day = pub_date.get("Day")
    return f"{year}-{int(month):02d}" + (f"-{int(day):02d}" if day else "")


_MONTHS = {
    name: f"{number:02d}"
    for number, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


def format_date(date):
    if not date or not date.get("Year"):
        return None
    parts = [str(date["Year"])]
    for key in ("Month", "Day"):
        if date.get(key):
            value = str(date[key])
            parts.append(_MONTHS.get(value.lower()[:3], value).zfill(2))
    return "-".join(parts)
