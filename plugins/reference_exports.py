"""RIS (.ris) and BibTeX (.bib) exports of any table, view or query that lists papers.

Reference managers (Zotero, EndNote, Mendeley, JabRef) import either format. Like
datasette-atom, the renderer has a column contract and is only offered where the result
has those columns; add ?_size=max to a table page to export every row, not one page.
"""

import re
import unicodedata

from datasette import hookimpl
from datasette.utils.asgi import Response
from datasette.views.base import DatasetteError

from harvest.refs import page_range  # '529-38' -> ('529', '538'), as the checker reads ranges
from harvest.store import is_pmid

# A result can be exported when it has these columns, and names its papers by one of PAPER_COLUMNS
# (the key, or the PubMed ID)...
REQUIRED_COLUMNS = {"title", "authors", "year"}
PAPER_COLUMNS = {"paper_id", "pmid"}
# ...and these are used when present. `journal` wins over `journal_iso`; `pmid` gives the PMID.
OPTIONAL_COLUMNS = {"pmid", "journal", "journal_iso", "volume", "issue", "pages", "doi", "abstract"}

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{}/"
# PubMed style "Younger J", "D'Souza RS": a family name then up to three capital initials.
PERSON = re.compile(r"^(?P<family>.+?)\s+(?P<initials>[A-Z]{1,3})$")
BIBTEX_SPECIALS = re.compile(r"([\\{}&%$#_~^])")
# Letters Unicode does not decompose into a base letter and an accent.
UNDECOMPOSED = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L",
                              "đ": "d", "Đ": "D", "þ": "th", "œ": "oe", "ı": "i"})
ANONYMOUS = "Anonymous"  # what a paper with no author (person or group) is cited under


def can_render(columns):
    return REQUIRED_COLUMNS.issubset(columns) and bool(PAPER_COLUMNS.intersection(columns))


def references(columns, rows):
    """Each row as a plain reference dict, with a PMID only where the paper has one."""
    if not can_render(columns):
        # Reached by typing the extension on a result the link was not offered for.
        raise DatasetteError(
            "RIS and BibTeX need the columns " + ", ".join(sorted(REQUIRED_COLUMNS))
            + " and " + " or ".join(sorted(PAPER_COLUMNS)), status=400
        )
    for row in rows:
        row = dict(zip(columns, row))
        pmid = row.get("pmid")
        yield {
            "pmid": str(pmid) if pmid and is_pmid(pmid) else None,  # an old query's `pmid` may hold a doi: key
            "title": row["title"] or "",
            "authors": [name.strip() for name in (row["authors"] or "").split(",") if name.strip()],
            "year": row["year"],
            "journal": row.get("journal") or row.get("journal_iso"),
            "volume": row.get("volume"),
            "issue": row.get("issue"),
            "pages": single_page_once(page_range(row.get("pages"))),
            "doi": row.get("doi"),
            "abstract": row.get("abstract"),
        }


def single_page_once(pages):
    """(first, last), or (first, None) for a one-page article or an e-locator."""
    return pages and (pages[0], pages[1] if pages[1] != pages[0] else None)


def split_name(name):
    """(family, initials) for a person; (name, None) for a group author."""
    match = PERSON.match(name)
    return (match["family"], match["initials"]) if match else (name, None)


def ris(reference):
    lines = [("TY", "JOUR"), ("TI", reference["title"])]
    for name in reference["authors"]:
        family, initials = split_name(name)
        lines.append(("AU", f"{family}, {initials}" if initials else family))
    pages = reference["pages"]
    lines += [
        ("PY", reference["year"]),
        ("JO", reference["journal"]),
        ("VL", reference["volume"]),
        ("IS", reference["issue"]),
        ("SP", pages and pages[0]),
        ("EP", pages and pages[1]),
        ("DO", reference["doi"]),
        ("AN", reference["pmid"] and f"PMID:{reference['pmid']}"),
        ("UR", reference["pmid"] and PUBMED_URL.format(reference["pmid"])),
        ("AB", reference["abstract"] and " ".join(reference["abstract"].split())),
    ]
    body = "".join(f"{tag}  - {value}\r\n" for tag, value in lines if value not in (None, ""))
    return body + "ER  - \r\n"


def bibtex_escape(value):
    return BIBTEX_SPECIALS.sub(r"\\\1", " ".join(str(value).split()))


def ascii_letters(text):
    """Häuser -> Hauser, Rodríguez -> Rodriguez, Møller -> Moller: accents dropped, letters kept."""
    decomposed = unicodedata.normalize("NFKD", text.translate(UNDECOMPOSED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def bibtex_key(reference, taken):
    family = split_name(reference["authors"][0])[0] if reference["authors"] else ANONYMOUS
    stem = re.sub(r"[^a-z0-9]", "", ascii_letters(family).lower()) + str(reference["year"] or "")
    key = stem or "paper"
    suffix = ord("a")
    while key in taken:
        key = f"{stem}{chr(suffix)}"
        suffix += 1
    taken.add(key)
    return key


def bibtex_author(name):
    family, initials = split_name(name)
    if not initials:
        return "{" + bibtex_escape(family) + "}"  # braces keep a group name whole
    return f"{bibtex_escape(family)}, {' '.join(c + '.' for c in initials)}"


def bibtex(reference, taken):
    pages = reference["pages"]
    fields = [
        ("author", " and ".join(bibtex_author(n) for n in reference["authors"]) or None),
        ("title", reference["title"] and bibtex_escape(reference["title"])),
        ("journal", reference["journal"] and bibtex_escape(reference["journal"])),
        ("year", reference["year"]),
        ("volume", reference["volume"]),
        ("number", reference["issue"]),
        ("pages", pages and "--".join(p for p in pages if p)),
        ("doi", reference["doi"]),
        ("pmid", reference["pmid"]),
        ("url", reference["pmid"] and PUBMED_URL.format(reference["pmid"])),
        ("abstract", reference["abstract"] and bibtex_escape(reference["abstract"])),
    ]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value not in (None, ""))
    return f"@article{{{bibtex_key(reference, taken)},\n{body}\n}}\n"


def download(text, content_type, name, extension):
    return Response(
        text,
        content_type=f"{content_type}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name or "papers"}.{extension}"'},
    )


def render_ris(columns, rows, table, query_name):
    text = "\r\n".join(ris(reference) for reference in references(columns, rows))
    return download(text, "application/x-research-info-systems", table or query_name, "ris")


def render_bibtex(columns, rows, table, query_name):
    taken = set()
    text = "\n".join(bibtex(reference, taken) for reference in references(columns, rows))
    return download(text, "application/x-bibtex", table or query_name, "bib")


@hookimpl
def register_output_renderer():
    return [
        {"extension": "ris", "render": render_ris, "can_render": can_render},
        {"extension": "bib", "render": render_bibtex, "can_render": can_render},
    ]
