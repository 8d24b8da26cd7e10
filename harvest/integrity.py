"""Registry records and correction notices: stored raw, parsed into tables, rebuilt offline.

ClinicalTrials.gov study records (`ctgov_records`, raw JSON) become `ctgov_studies`,
`registry_outcomes` and `registry_interventions`. Crossref works (`crossref_works`, raw
JSON) become `notices`, and each notice becomes a paper in kb.db (its PubMed record when
PubMed indexes it, else Crossref's metadata, `papers.source = 'crossref'`) linked to the
paper it is about in `links` (origin: the notice's source). `rebuild` redoes every
parsed row from the raw JSON, offline.
"""

import json
from datetime import datetime, timezone

from . import crossref, ctgov, curate, store

CTGOV_PARSED = ("ctgov_studies", "registry_outcomes", "registry_interventions")


# ------------------------------------------------------------------ ClinicalTrials.gov


def nct_ids(db):
    """Every NCT id kb.db knows: from PubMed records, tags and curated entries."""
    return [row[0] for row in db.execute(
        "select registry_id from registry_ids where registry_id like 'NCT%' "
        "union select registry_id from trials where registry_id like 'NCT%' "
        "union select upper(value) from tags where kind = 'registry_id' and upper(value) like 'NCT%' "
        "order by 1")]


def save_study(db, study):
    """Keep one study's raw JSON and its parsed rows. Returns True when it is new or changed."""
    text = json.dumps(study, sort_keys=True, ensure_ascii=False)
    registry_id = ctgov.nct_id(study)
    digest = store.sha256(text)
    current = db.execute("select sha256 from ctgov_records where registry_id = ?", [registry_id]).fetchone()
    if current and current[0] == digest:
        return False
    db["ctgov_records"].upsert(
        {"registry_id": registry_id, "json": text, "sha256": digest,
         "last_update": ctgov.last_update(study), "fetched_at": store.now()},
        pk="registry_id")
    _save_parsed_study(db, study)
    return True


def _save_parsed_study(db, study):
    parsed = ctgov.parse_study(study)
    registry_id = parsed["study"]["registry_id"]
    for table in CTGOV_PARSED:
        db.execute(f"delete from {table} where registry_id = ?", [registry_id])
    db["ctgov_studies"].insert(parsed["study"], pk="registry_id")
    db["registry_outcomes"].insert_all(
        [{**o, "outcome_values": json.dumps(o["outcome_values"])} for o in parsed["outcomes"]],
        pk=("registry_id", "kind", "position"))
    db["registry_interventions"].insert_all(parsed["interventions"], pk=("registry_id", "position"))


def harvest_ctgov(db, client, ids, progress=None):
    """Fetch the study records of these NCT ids. Returns the number of records new or changed.

    Ids never fetched are asked for in full; the others only when updated since the last
    fetch that landed (a fetch that failed moves nothing, so the next one covers its window).
    """
    since = store.get_state(db, "ctgov_last_fetch")
    known = {row[0] for row in db.execute("select registry_id from ctgov_records")}
    fresh, stale = [i for i in ids if i not in known], [i for i in ids if i in known]
    changed = 0
    for group, after in ((fresh, None), (stale, since)):
        for study in ctgov.fetch_studies(client, group, since=after):
            changed += save_study(db, study)
            if progress is not None:
                progress.update(1)
    store.set_state(db, "ctgov_last_fetch", datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    return changed


# ------------------------------------------------------------------ Crossref


def paper_dois(db):
    return [row[0] for row in db.execute(
        "select distinct lower(doi) from papers where doi is not null order by 1")]


def save_work(db, work):
    """Keep one Crossref work's raw JSON and its notices. Returns True when new or changed."""
    text = json.dumps(work, sort_keys=True, ensure_ascii=False)
    doi = work["DOI"].lower()
    digest = store.sha256(text)
    current = db.execute("select sha256 from crossref_works where doi = ?", [doi]).fetchone()
    if current and current[0] == digest:
        return False
    db["crossref_works"].upsert(
        {"doi": doi, "json": text, "sha256": digest, "fetched_at": store.now()}, pk="doi")
    if current:  # the changed work may no longer state what it stated: derive every notice again
        derive_notices(db)
    else:
        _save_notices(db, work)
    return True


def derive_notices(db):
    """`notices` again from every stored Crossref work."""
    db.execute("delete from notices")
    for (text,) in db.execute("select json from crossref_works").fetchall():
        _save_notices(db, json.loads(text))


def _save_notices(db, work):
    for notice in crossref.notices(work):
        db["notices"].upsert(notice, pk=("notice_doi", "target_doi", "relation"))


def harvest_crossref(db, client, dois, mailto=None, progress=None):
    """Ask Crossref about these DOIs and the works updating them, then for the notices they
    name that we have no record of (a comment named only in a relation). Returns the number
    of works new or changed."""
    changed = _save_works(db, crossref.fetch_works(client, dois, mailto), progress)
    stored = {row[0] for row in db.execute("select doi from crossref_works")}
    unseen = [doi for doi in missing_notice_dois(db) if doi not in stored]
    changed += _save_works(db, crossref.fetch_works(client, unseen, mailto, updates=False), progress)
    return changed


def _save_works(db, answers, progress):
    changed = 0
    for batch, message in answers:
        for work in crossref.items(message):
            if work.get("DOI"):
                changed += save_work(db, work)
        if progress is not None:
            progress.update(len(batch))
    return changed


def missing_notice_dois(db):
    """DOIs of notices about our papers that are not papers in kb.db yet."""
    return [row[0] for row in db.execute(
        "select distinct n.notice_doi from notices n "
        "where n.target_doi in (select lower(doi) from papers where doi is not null) "
        "and n.notice_doi not in (select lower(doi) from papers where doi is not null) order by 1")]


def link_notices(db):
    """Make every notice about a kb.db paper a paper (Crossref metadata unless PubMed has it)
    and link it to that paper; links of notices no longer stated are removed."""
    for doi in missing_notice_dois(db):
        row = db.execute("select json from crossref_works where doi = ?", [doi]).fetchone()
        if row:
            store.save_paper(db, crossref.work_metadata(json.loads(row[0])), source="crossref")
    # A Crossref-only paper later found in PubMed is the same paper: keep the PubMed one.
    for (key,) in db.execute(
            "select c.paper_id from papers c where c.source = 'crossref' and exists "
            "(select 1 from papers p where p.source = 'pubmed' and lower(p.doi) = lower(c.doi))").fetchall():
        curate._delete_paper(db, key)
    keys = {doi: key for doi, key in db.execute(
        "select lower(doi), paper_id from papers where doi is not null "
        "order by pmid is not null asc")}  # a PubMed key wins over doi: keys for the same DOI
    wanted = set()
    for notice, target, relation, source in db.execute(
            "select notice_doi, target_doi, relation, source from notices").fetchall():
        if notice in keys and target in keys and keys[notice] != keys[target]:
            wanted.add((keys[notice], relation, keys[target], source))
    current = set(db.execute(
        "select from_key, relation, to_key, origin from links where origin like 'Crossref%'").fetchall())
    for from_key, relation, to_key, origin in current - wanted:
        db.execute("delete from links where from_key = ? and relation = ? and to_key = ? and origin = ?",
                   [from_key, relation, to_key, origin])
    for from_key, relation, to_key, origin in wanted - current:
        # A link a curator already made stays theirs.
        db["links"].insert({"from_key": from_key, "relation": relation, "to_key": to_key,
                            "origin": origin}, pk=("from_key", "relation", "to_key"), ignore=True)


# ------------------------------------------------------------------ offline rebuild


def rebuild(db):
    """Every parsed registry and notice row again from the stored raw JSON (no network)."""
    with db.conn:
        for table in CTGOV_PARSED:
            db.execute(f"delete from {table}")
    for (text,) in db.execute("select json from ctgov_records").fetchall():
        _save_parsed_study(db, json.loads(text))
    derive_notices(db)
    link_notices(db)
