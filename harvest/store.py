"""Store stage: kb.db's shape, declared once as data, and the `save_*` functions.

Every table is created with explicit columns before anything is inserted, so
the shape never depends on the first record. `ensure_db_shape(db)` applies
tables, indexes, full-text search and views idempotently; every command calls it.

Paper key: every table that refers to a paper does so through a column named
`paper_id`, `papers.paper_id` being the key. It is the PubMed ID when the paper has one;
for a curated paper with no PubMed record yet, `doi:` followed by the lower-case DOI, or,
when even the DOI is unknown, `curated:` followed by the curated entry's key; for a
notice known only to Crossref, `doi:` and its DOI. `papers.pmid` holds the PubMed ID alone
(NULL when there is none), and every other column named `pmid` holds PubMed IDs too
(`raw_records`, `doi_lookups`, `discoveries`, `reference_checks`), as `ref_pmid` does.
A kb.db built before `paper_id` existed is migrated by `ensure_db_shape` (`PAPER_KEY_RENAMED`).
"""

import hashlib
import json
import sqlite3
from datetime import datetime, timezone

import sqlite_utils

from .views import VIEWS

# table -> (columns {name: type}, primary key, {column: (other table, other column)})
TABLES = {
    "papers": (
        {
            "paper_id": str, "pmid": str, "doi": str, "pmcid": str, "title": str, "title_html": str,
            "abstract": str, "journal": str, "journal_iso": str, "volume": str,
            "issue": str, "pages": str, "year": int, "pub_date": str, "language": str,
            "authors": str, "first_author": str, "citation": str,
            "publication_status": str, "date_revised": str, "source": str,
            "record_sha256": str, "first_seen": str, "updated_at": str,
        },
        "paper_id",
        {},
    ),
    "abstract_sections": (
        {"paper_id": str, "position": int, "label": str, "nlm_category": str, "text": str, "html": str},
        ("paper_id", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "authors": (
        {
            "paper_id": str, "position": int, "name": str, "last_name": str, "fore_name": str,
            "initials": str, "collective_name": str, "orcid": str, "affiliations": str,
        },
        ("paper_id", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "mesh_headings": (
        {
            "paper_id": str, "position": int, "descriptor": str, "descriptor_ui": str,
            "major_topic": int, "qualifiers": str,
        },
        ("paper_id", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "publication_types": (
        {"paper_id": str, "position": int, "name": str, "ui": str},
        ("paper_id", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "keywords": (
        {"paper_id": str, "position": int, "keyword": str, "major_topic": int},
        ("paper_id", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "registry_ids": (
        {"paper_id": str, "registry_id": str, "registry": str, "origin": str},
        ("paper_id", "registry_id"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "grants": (
        {"paper_id": str, "position": int, "grant_id": str, "agency": str, "country": str},
        ("paper_id", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "comments_corrections": (
        {"paper_id": str, "position": int, "ref_type": str, "ref_pmid": str, "ref_source": str},
        ("paper_id", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "history_dates": (
        {"paper_id": str, "status": str, "date": str},
        ("paper_id", "status"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "tags": (
        {
            "paper_id": str, "kind": str, "value": str, "detail": str, "evidence": str,
            "section": str, "start": int, "end": int, "source": str, "tagger_version": str,
        },
        None,
        {"paper_id": ("papers", "paper_id")},
    ),
    "tag_state": (
        {"paper_id": str, "text_sha256": str, "tagger_version": str, "tagged_at": str},
        "paper_id",
        {},
    ),
    "raw_records": (
        {"pmid": str, "xml": bytes, "sha256": str, "date_revised": str, "fetched_at": str},
        "pmid",
        {},
    ),
    "doi_lookups": (
        {"doi": str, "input": str, "pmid": str, "repaired_from": str, "resolved_at": str},
        "doi",
        {},
    ),
    "unresolved_dois": (
        {"doi": str, "input": str, "line": int, "reason": str, "first_seen": str},
        "doi",
        {},
    ),
    "discoveries": (
        {"pmid": str, "kept": int, "reason": str, "first_seen": str},
        "pmid",
        {},
    ),
    "harvest_runs": (
        {
            "id": int, "started_at": str, "ended_at": str, "mode": str, "eutils_url": str,
            "dois_asked": int, "found": int, "unresolved": int, "new_papers": int,
            "updated_papers": int, "requests": int, "errors": str, "status": str,
            "ctgov_requests": int, "crossref_requests": int,
            "stages_landed": str, "stages_failed": str, "stage_errors": str,
        },
        "id",
        {},
    ),
    "harvest_state": ({"name": str, "value": str}, "name", {}),
    # NCT ids and DOIs a harvest stage could not ask about (its service was down): the next
    # harvest asks about them again, and forgets them once that stage lands.
    "missed_lookups": (
        {"stage": str, "item": str, "service": str, "first_missed": str, "reason": str},
        ("stage", "item"),
        {},
    ),
    # Curated evidence (harvest/curated/*.yml), loaded by curate.py. In `links`, keys are
    # paper keys (`paper_id` values) or, for registered trials, registry ids.
    "curated_entries": (
        {
            "key": str, "paper_id": str, "type": str, "doi": str, "pmcid": str, "title": str,
            "authors": str, "year": int, "journal": str, "volume": str, "issue": str,
            "pages": str, "design": str, "population": str, "n_randomized": int,
            "n_enrolled": int, "n_analysed": int, "dose_text": str,
            "dose_min_mg_per_day": float, "dose_max_mg_per_day": float, "dose_regimen": str,
            "duration_weeks": float, "comparator": str, "primary_outcome": str,
            "outcomes": str, "adverse_events": str, "result": str, "result_direction": str,
            "registry_ids": str, "note": str, "checked": str,
        },
        "key",
        {"paper_id": ("papers", "paper_id")},
    ),
    "trials": (
        {
            "registry_id": str, "key": str, "registry": str, "other_ids": str, "title": str,
            "acronym": str, "status": str, "sponsor": str, "country": str, "start_year": int,
            "completion_year": int, "n_planned": int, "n_enrolled": int, "design": str,
            "dose_text": str, "dose_min_mg_per_day": float, "dose_max_mg_per_day": float,
            "dose_regimen": str, "duration_weeks": float, "comparator": str, "population": str,
            "primary_outcome": str, "published": int, "note": str, "checked": str,
        },
        "registry_id",
        {},
    ),
    "links": (
        {"from_key": str, "relation": str, "to_key": str, "origin": str},
        ("from_key", "relation", "to_key"),
        {},
    ),
    "sources": (
        {"key": str, "url": str, "checked": str, "facts": str, "kind": str, "position": int},
        ("key", "url"),  # key: a curated entry's key, publication or trial
        {},
    ),
    # What full-text search reads (harvest/search.py), one row per paper, keyed by its rowid.
    "search_texts": (
        {"paper_rowid": int, "paper_id": str, "title": str, "abstract": str, "summary": str, "topics": str},
        "paper_rowid",
        {},
    ),
    # Registry records and correction notices (harvest/integrity.py): raw JSON as fetched,
    # and the rows parsed from it, which `kb build` redoes offline.
    "ctgov_records": (
        {"registry_id": str, "json": str, "sha256": str, "last_update": str, "fetched_at": str},
        "registry_id",
        {},
    ),
    "ctgov_studies": (
        {
            "registry_id": str, "title": str, "overall_status": str, "why_stopped": str,
            "start_date": str, "start_date_type": str, "primary_completion_date": str,
            "primary_completion_date_type": str, "completion_date": str,
            "completion_date_type": str, "enrollment": int, "enrollment_type": str,
            "has_results": int, "last_update": str,
        },
        "registry_id",
        {},
    ),
    "registry_outcomes": (
        {
            "registry_id": str, "kind": str, "position": int, "measure": str,
            "time_frame": str, "outcome_values": str, "posted_result": str,
        },
        ("registry_id", "kind", "position"),
        {},
    ),
    "registry_interventions": (
        {
            "registry_id": str, "position": int, "type": str, "name": str, "description": str,
            "arms": str, "dose_min_mg_per_day": float, "dose_max_mg_per_day": float,
        },
        ("registry_id", "position"),
        {},
    ),
    "crossref_works": (
        {"doi": str, "json": str, "sha256": str, "fetched_at": str},
        "doi",
        {},
    ),
    "notices": (
        {
            "notice_doi": str, "target_doi": str, "relation": str, "notice_type": str,
            "source": str, "date": str, "label": str,
        },
        ("notice_doi", "target_doi", "relation"),
        {},
    ),
    # Curated registry facts (harvest/curated README, "Fields of a registered trial").
    "registry_facts": (
        {
            "registry_id": str, "primary_completion_date": str, "completion_date": str,
            "completion_date_type": str, "enrollment_type": str, "why_stopped": str,
            "primary_outcome_values": str, "results_posted": int,
        },
        "registry_id",
        {},
    ),
    # A paper's primary outcome: curated (primary_outcome_values), else, for a paper no curator
    # has checked, machine-read from its primary-outcome sentence (harvest/primary_outcome.py).
    "published_outcomes": (
        {"paper_id": str, "key": str, "primary_outcome_values": str, "source": str, "evidence": str},
        "paper_id",
        {},
    ),
}

# Columns of earlier shapes that must not survive in an old kb.db: `notes` held curators'
# working notes, which never reach a page (the public text is `note`).
RETIRED_COLUMNS = {"curated_entries": ["notes"], "trials": ["notes"]}

# Earlier shapes called the paper key `pmid` in every table, papers included, though it held
# doi: and curated: keys too. In an old kb.db, a table that now has `paper_id` gets its `pmid`
# renamed, values kept; papers.pmid is then filled with the keys that are PubMed IDs.
PAPER_KEY_RENAMED = ("pmid", "paper_id")

FTS_CONFIG = {"papers": ["title", "abstract"], "search_texts": ["title", "abstract", "summary", "topics"]}

# Link tables and tag lookups are filtered by paper; papers by the facets users ask for.
INDEXES = {
    "tags": [["paper_id"], ["kind", "value"]],
    "papers": [["pmid"], ["doi"], ["year"], ["journal_iso"]],
    "registry_ids": [["registry_id"]],
    "comments_corrections": [["ref_pmid"]],
    "notices": [["target_doi"]],
    "registry_outcomes": [["registry_id"]],
}


CHILD_TABLES = [
    "abstract_sections", "authors", "mesh_headings", "publication_types", "keywords",
    "grants", "comments_corrections", "history_dates",
]


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_pmid(value):
    """A PubMed ID: ASCII digits only (what `papers.pmid` may hold)."""
    text = str(value)
    return text.isascii() and text.isdigit()


def sha256(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def register(tables=None, views=None, fts=None, indexes=None):
    """Let a module outside the pipeline (reference checks) declare its own tables and views."""
    TABLES.update(tables or {})
    VIEWS.update(views or {})
    FTS_CONFIG.update(fts or {})
    for table, columns in (indexes or {}).items():
        INDEXES.setdefault(table, []).extend(columns)


def registered_modules():
    """Import the modules that declare tables of their own (`register`), so kb.db's shape never
    depends on which of them the caller happened to import first."""
    from . import (candidates, evidence, evidence_pages, refs, screening, sensitivity,  # noqa: F401
                   summary_of_findings)


def ensure_db_shape(db):
    """Create missing tables and columns, indexes, FTS and views. Idempotent."""
    registered_modules()
    # kb.db can be downloaded whole: what is deleted (retired columns, replaced curated rows)
    # is overwritten with zeros rather than left readable in free pages.
    db.execute("pragma secure_delete = on")
    _rename_paper_key(db)
    for name, (columns, pk, foreign_keys) in TABLES.items():
        table = db[name]
        if not table.exists():
            table.create(
                columns,
                pk=pk,
                foreign_keys=[(col, other, other_col) for col, (other, other_col) in foreign_keys.items()],
            )
        else:
            existing = table.columns_dict
            for column, kind in columns.items():
                if column not in existing:
                    table.add_column(column, kind)
            retired = [c for c in RETIRED_COLUMNS.get(name, []) if c in existing]
            if retired:
                table.transform(drop=retired)
    for name, column_sets in INDEXES.items():
        for columns in column_sets:
            db[name].create_index(columns, if_not_exists=True)
    for name, columns in FTS_CONFIG.items():
        if not db[f"{name}_fts"].exists():
            db[name].enable_fts(columns, create_triggers=True, tokenize="porter")
    existing_views = {
        row[0]: row[1] for row in db.execute("select name, sql from sqlite_master where type = 'view'")
    }
    for name, (needs, sql) in VIEWS.items():
        if not all(db[t].exists() for t in needs):
            continue
        wanted = f"CREATE VIEW {name} AS {sql}"
        if existing_views.get(name) != wanted:
            db.execute(f"DROP VIEW IF EXISTS {name}")
            db.execute(wanted)


def _rename_paper_key(db):
    """Migrate a kb.db whose tables still call the paper key `pmid` (see PAPER_KEY_RENAMED).

    Every value is kept: columns are renamed in place (SQLite rewrites indexes, triggers and
    foreign keys with them), so raw records, the harvest's record and every derived row survive,
    and `kb build` rebuilds the derived tables as usual. Views are dropped first (a view naming
    the old column would block the rename) and recreated by `ensure_db_shape`.
    """
    old, new = PAPER_KEY_RENAMED
    stale = _old_paper_key_tables(db)
    if not stale:
        return
    for view in db.view_names():
        db.execute(f"drop view [{view}]")
    for name in stale:
        db.execute(f"alter table [{name}] rename column [{old}] to [{new}]")
        db.execute(f"drop index if exists [idx_{name}_{old}]")  # recreated as idx_<table>_paper_id
    if "papers" in stale:
        db["papers"].add_column("pmid", str)
        db.execute("update papers set pmid = paper_id where paper_id not glob '*[^0-9]*'")
        # Put pmid beside the key, as a new kb.db has it. The copy keeps rowids (the search
        # index's keys) but not triggers: the full-text index is dropped, and ensure_db_shape
        # builds it again.
        db["papers"].transform(column_order=[c for c in TABLES["papers"][0] if c in db["papers"].columns_dict])
        db["papers_fts"].drop(ignore=True)


def _old_paper_key_tables(db):
    """The tables of `db` that still call the paper key `pmid`."""
    old, new = PAPER_KEY_RENAMED
    return [name for name, (columns, _, _) in TABLES.items()
            if new in columns and db[name].exists() and old in db[name].columns_dict
            and new not in db[name].columns_dict]


def author_name(author):
    """PubMed's citation form: 'Younger J', or a group's name."""
    if author.get("collective_name"):
        return author["collective_name"]
    return " ".join(p for p in (author.get("last_name"), author.get("initials")) if p)


def format_citation(paper, author_names):
    """A Vancouver-style citation line for display."""
    if len(author_names) > 6:
        names = ", ".join(author_names[:6]) + ", et al"
    else:
        names = ", ".join(author_names)
    where = ""
    if paper.get("year"):
        where = str(paper["year"])
        if paper.get("volume"):
            where += f";{paper['volume']}"
            if paper.get("issue"):
                where += f"({paper['issue']})"
        if paper.get("pages"):
            where += f":{paper['pages']}"
    parts = [names, (paper.get("title") or "").rstrip("."), paper.get("journal_iso") or paper.get("journal"), where]
    return ". ".join(p for p in parts if p) + "."


def save_raw_record(db, pmid, xml, date_revised=None, fetched_at=None):
    """Keep PubMed's XML for a PMID. Returns True when it is new or changed."""
    digest = sha256(xml)
    current = db.execute("select sha256 from raw_records where pmid = ?", [pmid]).fetchone()
    if current and current[0] == digest:
        return False
    db["raw_records"].upsert(
        {"pmid": pmid, "xml": xml, "sha256": digest, "date_revised": date_revised,
         "fetched_at": fetched_at or now()},
        pk="pmid",
    )
    return True


def save_paper(db, record, source="pubmed"):
    """Upsert a parsed record and its child rows. Returns (key, changed).

    The record's `paper_id` is its key; a PubMed record has none and is keyed by its `pmid`.
    A record whose content hash matches the stored one is not rewritten, so
    re-running a harvest or a build touches no rows.
    """
    key = record.get("paper_id") or record["pmid"]
    if record.get("pmid") is not None and not is_pmid(record["pmid"]):
        raise ValueError(f"not a PubMed ID: {record['pmid']!r} (a paper's other keys go in paper_id)")
    digest = sha256(json.dumps(record, sort_keys=True, default=str))
    current = db.execute(
        "select record_sha256, first_seen from papers where paper_id = ?", [key]
    ).fetchone()
    if current and current[0] == digest:
        return key, False
    names = [author_name(a) for a in record.get("authors", [])]
    stamp = now()
    paper = {column: record.get(column) for column in TABLES["papers"][0] if column in record}
    paper.update(
        {
            "paper_id": key,
            "pmid": record.get("pmid"),
            "authors": ", ".join(names) or None,
            "first_author": names[0] if names else None,
            "citation": format_citation(record, names),
            "source": source,
            "record_sha256": digest,
            "first_seen": current[1] if current else stamp,
            "updated_at": stamp,
        }
    )
    with db.conn:
        db["papers"].upsert(paper, pk="paper_id")
        for table in CHILD_TABLES:
            db.execute(f"delete from {table} where paper_id = ?", [key])
        db.execute("delete from registry_ids where paper_id = ? and origin = 'databank'", [key])
        _insert_children(db, key, record, names)
    return key, True


def _insert_children(db, key, record, names):
    def rows(table, items):
        if items:
            db[table].insert_all(items, pk=TABLES[table][1])

    rows("abstract_sections", [
        {"paper_id": key, "position": i, **{k: s.get(k) for k in ("label", "nlm_category", "text", "html")}}
        for i, s in enumerate(record.get("abstract_sections", []), 1)
    ])
    rows("authors", [
        {
            "paper_id": key, "position": a["position"], "name": name,
            **{k: a.get(k) for k in ("last_name", "fore_name", "initials", "collective_name", "orcid")},
            "affiliations": json.dumps(a.get("affiliations") or []),
        }
        for a, name in zip(record.get("authors", []), names)
    ])
    rows("mesh_headings", [
        {
            "paper_id": key, "position": i, "descriptor": m["descriptor"], "descriptor_ui": m.get("ui"),
            "major_topic": int(bool(m.get("major"))), "qualifiers": json.dumps(m.get("qualifiers") or []),
        }
        for i, m in enumerate(record.get("mesh", []), 1)
    ])
    rows("publication_types", [
        {"paper_id": key, "position": i, "name": t["name"], "ui": t.get("ui")}
        for i, t in enumerate(record.get("publication_types", []), 1)
    ])
    rows("keywords", [
        {"paper_id": key, "position": i, "keyword": k["keyword"], "major_topic": int(bool(k.get("major")))}
        for i, k in enumerate(record.get("keywords", []), 1)
    ])
    rows("grants", [{"paper_id": key, "position": i, **g} for i, g in enumerate(record.get("grants", []), 1)])
    rows("comments_corrections", [
        {"paper_id": key, "position": i, **c} for i, c in enumerate(record.get("comments_corrections", []), 1)
    ])
    rows("history_dates", [
        {"paper_id": key, **h} for h in {h["status"]: h for h in record.get("history", [])}.values()
    ])
    for registry in record.get("registry_ids", []):
        db["registry_ids"].upsert(
            {"paper_id": key, "registry_id": registry["accession"], "registry": registry["registry"],
             "origin": "databank"},
            pk=("paper_id", "registry_id"),
        )


def paper_text_for_tagging(db, key):
    """What the tagger reads for a stored paper: title, sections, publication types, MeSH."""
    row = db.execute("select title from papers where paper_id = ?", [key]).fetchone()
    return {
        "title": (row[0] if row else "") or "",
        "sections": [
            {"label": label, "text": text}
            for label, text in db.execute(
                "select label, text from abstract_sections where paper_id = ? order by position", [key]
            )
        ],
        "publication_types": [
            r[0] for r in db.execute("select name from publication_types where paper_id = ? order by position", [key])
        ],
        "mesh": [
            r[0] for r in db.execute("select descriptor from mesh_headings where paper_id = ? order by position", [key])
        ],
    }


def save_tags(db, key, tags, source, tagger_version=None):
    """Replace a paper's tags from one source ('auto' or 'curated')."""
    with db.conn:
        db.execute("delete from tags where paper_id = ? and source = ?", [key, source])
        if tags:
            db["tags"].insert_all(
                [
                    {
                        "paper_id": key, "kind": t["kind"], "value": str(t["value"]),
                        "detail": json.dumps(t.get("detail") or {}, sort_keys=True),
                        "evidence": t.get("evidence"), "section": t.get("section"),
                        "start": t.get("start"), "end": t.get("end"),
                        "source": source, "tagger_version": tagger_version,
                    }
                    for t in tags
                ]
            )


def get_state(db, name, default=None):
    row = db.execute("select value from harvest_state where name = ?", [name]).fetchone()
    return row[0] if row else default


def set_state(db, name, value):
    db["harvest_state"].upsert({"name": name, "value": value}, pk="name")


class ShapeError(Exception):
    """A kb.db of an older shape, opened for reading only, where it cannot be migrated."""


def open_readonly(path):
    """kb.db for reading only (checks and lookups never modify the published file)."""
    db = sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    if _old_paper_key_tables(db):
        db.close()
        raise ShapeError(f"{path} was built before papers.paper_id: `kb build --db {path}` migrates it")
    return db


def open_db(path):
    db = sqlite_utils.Database(path)
    ensure_db_shape(db)
    return db
