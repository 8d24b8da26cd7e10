"""Crossref (REST API): request building and parsing of works and the notices about them.

Two batched requests cover up to WORKS_BATCH DOIs: `/works?filter=doi:a,doi:b,...`
(the works themselves, with their `updated-by`, `update-to` and `relation`), and
`/works?filter=updates:a,updates:b,...` (works that declare they update ours:
corrections, retractions, expressions of concern, from the publisher or from
Retraction Watch). Crossref ORs repeated filters of one name. Parsing turns a
work into notices in our relation vocabulary; nothing here touches the database.
"""

import os
import re

from .http import PoliteClient, expect_json

DEFAULT_CROSSREF_URL = "https://api.crossref.org/"
START_PER_SECOND = 5.0  # until the first answer announces the limit
MIN_INTERVAL = 0.1  # never faster than 10 requests/s, whatever is announced
WORKS_BATCH = 50  # DOIs per request: a filter list this long keeps the URL well under 8 kB

# Crossref update type -> our relation (harvest/relations.py) from the notice to the work.
UPDATE_RELATIONS = {
    "correction": "correction_of",
    "erratum": "correction_of",
    "corrigendum": "correction_of",
    "retraction": "retraction_of",
    "partial_retraction": "retraction_of",
    "withdrawal": "retraction_of",
    "removal": "retraction_of",
    "expression_of_concern": "expression_of_concern_for",
}

# Crossref relation type -> (our relation, True when the other work is the notice).
RELATION_TYPES = {
    "is-comment-on": ("comment_on", False),
    "has-comment": ("comment_on", True),
    "is-reply-to": ("reply_to", False),
    "has-reply": ("reply_to", True),
}

SOURCE_NAMES = {"publisher": "Crossref (publisher)", "retraction-watch": "Crossref (Retraction Watch)"}


def contact_email():
    """The address for Crossref's polite pool: $KB_CONTACT_EMAIL, else $NCBI_EMAIL (sent, never stored)."""
    return os.environ.get("KB_CONTACT_EMAIL") or os.environ.get("NCBI_EMAIL") or None


def make_client(base_url=None, per_second=START_PER_SECOND, **options):
    """The polite client for Crossref, at $KB_CROSSREF_URL (default the public API).

    Starts at a cautious pace; `follow_rate_limit` adopts the limit the service announces.
    """
    base_url = base_url or os.environ.get("KB_CROSSREF_URL") or DEFAULT_CROSSREF_URL
    return PoliteClient("Crossref", base_url, per_second, secrets=[contact_email()],
                        classify=expect_json, **options)


def follow_rate_limit(client, headers):
    """Pace at 80% of the announced X-Rate-Limit-Limit per X-Rate-Limit-Interval ("1s", "60s")."""
    try:
        limit = int(headers["X-Rate-Limit-Limit"])
        interval = float(re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*s?\s*", headers["X-Rate-Limit-Interval"]).group(1))
    except (KeyError, ValueError, AttributeError):
        return
    if limit > 0 and interval > 0:
        client.limiter.interval = max(interval / (limit * 0.8), MIN_INTERVAL)


def works_params(dois, mailto=None):
    return _params("doi", dois, mailto)


def updates_params(dois, mailto=None):
    return _params("updates", dois, mailto)


def _params(name, dois, mailto):
    # Several updates can point at one DOI: ask for more rows than DOIs.
    params = {"filter": ",".join(f"{name}:{doi}" for doi in dois), "rows": max(20, 4 * len(dois))}
    if mailto:
        params["mailto"] = mailto
    return params


def fetch_works(client, dois, mailto=None, updates=True):
    """Yield (dois asked, message) per request: the works, then (with `updates`) the works
    updating them, per batch of WORKS_BATCH DOIs; a longer answer is followed page by page."""
    builders = (works_params, updates_params) if updates else (works_params,)
    for start in range(0, len(dois), WORKS_BATCH):
        batch = dois[start : start + WORKS_BATCH]
        for build in builders:
            params, offset = build(batch, mailto), 0
            while True:
                response = client.request("works", {**params, "offset": offset or None})
                follow_rate_limit(client, response.headers)
                message = response.json()["message"]
                yield batch, message
                offset += params["rows"]
                if offset >= (message.get("total-results") or 0):
                    break


def items(message):
    """The works in a `/works` answer (a list) or in a single-work answer."""
    return message.get("items") if "items" in message else [message]


def work_metadata(work):
    """A Crossref work as a paper record (`store.save_paper`'s shape), marked as from Crossref."""
    title = " ".join(work.get("title") or []) or None
    journal = (work.get("short-container-title") or work.get("container-title") or [None])[0]
    year = _year(work.get("published") or work.get("issued"))
    authors = [
        {"position": i, "last_name": a.get("family"), "fore_name": a.get("given"),
         "initials": _initials(a.get("given"))} if a.get("family")
        else {"position": i, "collective_name": a.get("name")}
        for i, a in enumerate(work.get("author") or [], 1)
    ]
    return {
        "paper_id": "doi:" + work["DOI"].lower(), "doi": work["DOI"].lower(), "title": title,
        "title_html": None, "abstract": None, "journal": journal, "journal_iso": journal,
        "volume": work.get("volume"), "issue": work.get("issue"), "pages": work.get("page"),
        "year": year, "authors": authors, "publication_types": [], "mesh": [],
    }


def notices(work):
    """Every link this work states: {notice_doi, target_doi, relation, notice_type, source, date, label}.

    `notice_doi` is the notice (correction, comment...) and `target_doi` the work it is about,
    whichever of the two this record belongs to.
    """
    doi = work["DOI"].lower()
    found = []
    for update in work.get("updated-by") or []:
        found += _update(update, notice=update.get("DOI"), target=doi)
    for update in work.get("update-to") or []:
        found += _update(update, notice=doi, target=update.get("DOI"))
    for kind, others in (work.get("relation") or {}).items():
        if kind not in RELATION_TYPES:
            continue
        relation, other_is_notice = RELATION_TYPES[kind]
        for other in others if isinstance(others, list) else [others]:
            if other.get("id-type") != "doi" or not other.get("id"):
                continue
            other_doi = _doi(other["id"])
            notice, target = (other_doi, doi) if other_is_notice else (doi, other_doi)
            found.append({"notice_doi": notice, "target_doi": target, "relation": relation,
                          "notice_type": kind, "source": "Crossref (relation)", "date": None,
                          "label": None})
    return found


def _update(update, notice, target):
    kind = (update.get("type") or "").lower().replace("-", "_")
    if kind not in UPDATE_RELATIONS or not notice or not target:
        return []  # e.g. new_version: not an integrity notice
    return [{
        "notice_doi": _doi(notice), "target_doi": _doi(target), "relation": UPDATE_RELATIONS[kind],
        "notice_type": kind, "source": SOURCE_NAMES.get(update.get("source"), "Crossref"),
        "date": _date(update.get("updated")), "label": update.get("label"),
    }]


def _doi(text):
    return re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", "", text.strip(), flags=re.I).lower()


def _date(value):
    parts = ((value or {}).get("date-parts") or [[None]])[0]
    if not parts or parts[0] is None:
        return None
    return "-".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts))


def _year(value):
    parts = ((value or {}).get("date-parts") or [[None]])[0]
    return parts[0] if parts else None


def _initials(given):
    return "".join(word[0] for word in re.split(r"[\s.-]+", given or "") if word).upper() or None
