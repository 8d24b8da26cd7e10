"""The search log and the screening decisions behind kb.db (PRISMA 2020): `searches` (what was
searched, where, when, how many records it returned) and `screening` (one row per record each
search found, with its decision), from which the `prisma_flow` view counts the flow.

Where rows come from:
- `harvest/curated/searches.yml`: searches a curator logged (the systematic sweep, citation
  chasing, hand curation), each with the records it returned;
- `harvest/curated/screening.yml`: the decision on each of those records that is not in kb.db
  (excluded, with a reason);
- kb.db's own record of the harvest: the saved PubMed queries of sources.yml and the
  `discoveries` they made (kept or not, with the keep rule's reason), papers fetched by DOI,
  notices PubMed links to our papers, Crossref notices and ClinicalTrials.gov records;
- a curated entry that no logged search lists was added by hand: the `curation` search.

A record is included when it is in kb.db (a paper or a registered trial) and excluded when
screening.yml or the keep rule says why; a record found with neither is an error, so every
record has a decision. Records found by several searches are the same record: PRISMA counts
them once, after "duplicates removed".
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import curate, store
from .labels import LABELS
from .pipeline import FOLLOWED_LINKS

SEARCHES_FILE, SCREENING_FILE = curate.SEARCH_LOG_FILES
ROUTES = tuple(LABELS["search_route"])
DECISIONS = ("included", "excluded")
CURATION = "curation"  # the search every unlisted curated entry belongs to
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

TABLES = {
    "searches": (
        {"search_id": str, "source": str, "route": str, "query": str, "run_on": str, "hits": int,
         "url": str, "note": str},
        "search_id",
        {},
    ),
    "screening": (
        {"record": str, "search_id": str, "source": str, "title": str, "url": str, "decision": str,
         "reason": str, "decided_on": str},
        ("record", "search_id"),
        {"search_id": ("searches", "search_id")},
    ),
}
store.register(tables=TABLES, indexes={"screening": [["decision"], ["search_id"]]})


@dataclass
class SearchLog:
    """What the curated files and sources.yml say about searches and decisions."""

    searches: list = field(default_factory=list)  # searches.yml items
    exclusions: dict = field(default_factory=dict)  # record -> screening.yml item
    saved_queries: list = field(default_factory=list)  # sources.yml `queries`


def load(directory=curate.CURATED_DIR, saved_queries=()):
    """The search log of a curated folder (either file may be absent: then it is empty)."""
    directory = Path(directory)
    searches = _read_list(directory / SEARCHES_FILE)
    exclusions = {}
    for item in _read_list(directory / SCREENING_FILE):
        if isinstance(item, dict) and item.get("record") is not None:
            exclusions.setdefault(_identifier(item["record"]), item)
    return SearchLog(searches, exclusions, list(saved_queries))


def _read_list(path):
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as error:
        raise curate.CurationError([f"{path.name}: not valid YAML: {error}"]) from None
    if not isinstance(data, list):
        raise curate.CurationError([f"{path.name}: expected a list"])
    return data


def _identifier(value):
    """A record as written: a curated key, PMID, doi:..., registry id or URL (DOIs lower-cased)."""
    text = str(value).strip()
    return text.lower() if text.lower().startswith("doi:") else text


def _date(value):
    return None if value is None else str(value)


def validate(log, entries):
    """Problems in searches.yml and screening.yml, one line each naming the file and the item."""
    problems = []
    keys = set()
    listed = set()
    for index, search in enumerate(log.searches, 1):
        if not isinstance(search, dict):
            problems.append(f"{SEARCHES_FILE}: item {index}: expected a mapping")
            continue
        where = f"{SEARCHES_FILE}: {search.get('key') or f'item {index}'}"
        if not search.get("key"):
            problems.append(f"{where}: missing key")
        elif search["key"] in keys:
            problems.append(f"{where}: duplicate key")
        keys.add(search.get("key"))
        if search.get("route") not in ROUTES:
            problems.append(f"{where}: route must be one of {', '.join(ROUTES)}, not {search.get('route')!r}")
        for name in ("source", "query"):
            if not search.get(name):
                problems.append(f"{where}: needs `{name}`")
        if search.get("run_on") is not None and not DATE.match(_date(search["run_on"])):
            problems.append(f"{where}: run_on must be YYYY-MM-DD, not {search['run_on']!r}")
        records = search.get("records") or []
        if not isinstance(records, list):
            problems.append(f"{where}: records must be a list")
            continue
        for number, found in enumerate(records, 1):
            if not isinstance(found, dict) or not found.get("record"):
                problems.append(f"{where}: records[{number}]: needs `record` (a curated key, PMID, doi:..., registry id or URL)")
                continue
            listed.add(_identifier(found["record"]))
    curated = {entry["key"] for entry in entries} | {curate.entry_key(entry) for entry in entries}
    for record, item in log.exclusions.items():
        where = f"{SCREENING_FILE}: {record}"
        if item.get("decision") != "excluded":
            problems.append(f"{where}: decision must be excluded (a record in kb.db is included by being there), "
                            f"not {item.get('decision')!r}")
        if not item.get("reason"):
            problems.append(f"{where}: an exclusion needs a reason")
        if not item.get("title"):
            problems.append(f"{where}: needs `title` (what the record is, in our words)")
        if not DATE.match(_date(item.get("decided_on")) or ""):
            problems.append(f"{where}: decided_on must be YYYY-MM-DD, not {item.get('decided_on')!r}")
        if record in curated:
            problems.append(f"{where}: is a curated entry, so it is in kb.db and cannot be excluded")
        if record not in listed:
            problems.append(f"{where}: no search in {SEARCHES_FILE} found it")
    return problems


# ---- building the tables ---------------------------------------------------------------------


@dataclass
class Found:
    """A record one search returned, before its decision is known."""

    record: str
    url: str = None
    decided_on: str = None
    excluded_because: str = None  # set by the harvest's keep rule


@dataclass
class Search:
    key: str
    source: str
    route: str
    query: str
    run_on: str = None
    url: str = None
    note: str = None
    found: list = field(default_factory=list)


def build(db, entries, log):
    """Replace `searches` and `screening`. Raises CurationError naming every record found by a
    search that has no decision (neither in kb.db nor excluded) or is excluded yet in kb.db."""
    searches = logged_searches(log, entries) + harvest_searches(db, log.saved_queries)
    in_kb = _records_in_kb(db)
    titles = _titles(db)
    rows, problems = [], []
    for search in searches:
        for found in _distinct(search.found):
            decision, reason, decided_on = _decision(found, search, log, in_kb)
            if decision is None:
                problems.append(f"{SEARCHES_FILE}: {search.key}: record {found.record} has no decision: add it to "
                                f"kb.db (a curated entry) or exclude it in {SCREENING_FILE} with a reason")
                continue
            if found.record in in_kb and found.record in log.exclusions:
                problems.append(f"{SCREENING_FILE}: {found.record}: is in kb.db, so it cannot be excluded")
            exclusion = log.exclusions.get(found.record) or {}
            rows.append({
                "record": found.record, "search_id": search.key, "source": search.route,
                "title": titles.get(found.record) or exclusion.get("title"),
                "url": found.url or exclusion.get("url") or _record_url(found.record),
                "decision": decision, "reason": reason, "decided_on": decided_on,
            })
    if problems:
        raise curate.CurationError(list(dict.fromkeys(problems)))
    with db.conn:
        db.execute("delete from screening")
        db.execute("delete from searches")
    db["searches"].insert_all([
        {"search_id": s.key, "source": s.source, "route": s.route, "query": s.query, "run_on": s.run_on,
         "hits": len(_distinct(s.found)), "url": s.url, "note": s.note}
        for s in searches
    ], pk="search_id")
    db["screening"].insert_all(rows, pk=("record", "search_id"))


def _distinct(found):
    """Each record once per search (a search may list a record under two of its pages)."""
    first = {}
    for item in found:
        first.setdefault(item.record, item)
    return list(first.values())


def _decision(found, search, log, in_kb):
    """(decision, reason, decided_on): in kb.db means included; otherwise the curated exclusion,
    else the harvest's keep rule; (None, None, None) when nothing decides."""
    if found.record in in_kb:
        return "included", None, found.decided_on or search.run_on
    exclusion = log.exclusions.get(found.record)
    if exclusion:
        return "excluded", exclusion["reason"], _date(exclusion["decided_on"])
    if found.excluded_because:
        return "excluded", found.excluded_because, found.decided_on or search.run_on
    return None, None, None


def logged_searches(log, entries):
    """The searches of searches.yml, curated keys resolved to kb.db's keys, and every curated
    entry that no logged search lists added to the `curation` search."""
    by_key = {entry["key"]: entry for entry in entries}
    searches = []
    for item in log.searches:
        found = []
        for record in item.get("records") or []:
            entry = by_key.get(_identifier(record["record"]))
            found.append(Found(
                record=curate.entry_key(entry) if entry else _identifier(record["record"]),
                url=record.get("url"),
                decided_on=curate.latest_check(entry) if entry and item["route"] == CURATION else None,
            ))
        searches.append(Search(
            key=item["key"], source=item["source"], route=item["route"], query=str(item["query"]).strip(),
            run_on=_date(item.get("run_on")), url=item.get("url"), note=item.get("note"), found=found,
        ))
    listed = {found.record for search in searches for found in search.found}
    unlisted = [entry for entry in entries if curate.entry_key(entry) not in listed]
    if unlisted:
        curation = next((s for s in searches if s.key == CURATION), None)
        if curation is None:
            curation = Search(key=CURATION, source="hand curation", route=CURATION,
                              query="publications and registrations a curator added by hand; the searches "
                                    "that found them were not logged")
            searches.append(curation)
        curation.found += [Found(curate.entry_key(e), decided_on=curate.latest_check(e)) for e in unlisted]
    return searches


def harvest_searches(db, saved_queries):
    """The harvest's own routes into kb.db, from what it stored; a route that found nothing is
    left out, except the saved PubMed queries, which are listed even before their first run."""
    last = store.get_state(db, "last_harvest_at")
    run_on = last[:10] if last else None

    def found(sql, params=(), reason=None):
        return [Found(row[0], url=_record_url(row[0]), decided_on=(row[1] or "")[:10] or None,
                      excluded_because=reason(row) if reason else None)
                for row in db.execute(sql, params).fetchall()]

    searches = []
    if saved_queries:
        searches.append(Search(
            key="pubmed-saved-queries", source="PubMed (E-utilities)", route="harvest",
            query=" OR ".join(f"({q})" for q in saved_queries), run_on=run_on,
            note="the saved queries of harvest/sources.yml, asked as one search for records entered since "
                 "the previous harvest; a hit is kept when its title or abstract names a term of every group "
                 "of the keep rule",
            found=found("select pmid, first_seen, kept, reason from discoveries order by pmid",
                        reason=lambda row: None if row[2] else f"automatic keep rule: {row[3]}"),
        ))
    followed = ", ".join("?" for _ in FOLLOWED_LINKS)
    routes = [
        ("pubmed-dois", "PubMed (E-utilities)", "harvest",
         "the DOIs of harvest/sources.yml, of `kb harvest --dois` and of curated entries, looked up by DOI",
         "select l.pmid, min(l.resolved_at) from doi_lookups l join papers p on p.pmid = l.pmid group by l.pmid", ()),
        ("pubmed-linked-notices", "PubMed (E-utilities)", "harvest",
         "errata, retractions, comments and updates that PubMed links to papers in kb.db",
         f"select p.paper_id, p.first_seen from papers p where p.pmid in (select ref_pmid from comments_corrections "
         f"where ref_type in ({followed}))", FOLLOWED_LINKS),
        ("crossref-notices", "Crossref REST API", "crossref",
         "corrections, retractions, expressions of concern and comments Crossref records for DOIs in kb.db",
         "select p.paper_id, p.first_seen from papers p where p.source = 'crossref' or lower(p.doi) in "
         "(select lower(notice_doi) from notices)", ()),
        ("ctgov-records", "ClinicalTrials.gov (API v2)", "registry",
         "the study record of every NCT id named in kb.db",
         "select registry_id, fetched_at from ctgov_records where registry_id in "
         "(select registry_id from ctgov_studies)", ()),
    ]
    for key, source, route, query, sql, params in routes:
        hits = found(sql, params)
        if hits:
            searches.append(Search(key=key, source=source, route=route, query=query, run_on=run_on, found=hits))
    return searches


def _records_in_kb(db):
    return {row[0] for row in db.execute(
        "select paper_id from papers union select registry_id from trials union select registry_id from ctgov_studies")}


def _titles(db):
    return {key: title for key, title in db.execute(
        "select registry_id, title from ctgov_studies union all select registry_id, title from trials "
        "union all select paper_id, title from papers") if title}


def _record_url(record):
    """A public page for a record known only by its identifier."""
    if record.isdigit():
        return f"https://pubmed.ncbi.nlm.nih.gov/{record}/"
    if record.startswith("doi:"):
        return "https://doi.org/" + record[4:]
    if record.startswith(("http://", "https://")):
        return record
    return None
