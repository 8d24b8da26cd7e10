"""The pipeline: fetch -> parse -> tag -> store, for DOIs, PMIDs, refreshes and offline rebuilds.

Commands call these functions inside `atomic_database`, so a harvest that
fails or is interrupted leaves the previous kb.db byte-identical.
"""

import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from . import (crossref, curate, evidence, evidence_pages, fetch, integrity, parse, search, sensitivity, store,
               summary_of_findings, tag)
from .dois import DOIInput, looks_truncated, read_doi_lines


# PubMed links from a paper to later notices about it, which a refresh follows.
FOLLOWED_LINKS = (
    "ErratumIn", "RetractionIn", "PartialRetractionIn", "ExpressionOfConcernIn",
    "CorrectedandRepublishedIn", "CommentIn", "UpdateIn",
)


@dataclass
class Summary:
    """What one harvest did, for the end-of-run summary and `harvest_runs`."""

    dois_asked: int = 0
    found: int = 0
    new_papers: int = 0
    updated_papers: int = 0
    unresolved: dict = field(default_factory=dict)  # doi or input -> reason
    repaired: dict = field(default_factory=dict)  # truncated doi -> full doi
    skipped: list = field(default_factory=list)  # (pmid, reason)
    requests: int = 0
    retries: int = 0  # of those requests, how many repeated one that had failed
    seconds: float = 0.0
    registry_ids: int = 0  # NCT ids asked of ClinicalTrials.gov
    registry_records: int = 0  # study records new or changed
    crossref_dois: int = 0  # DOIs asked of Crossref
    crossref_works: int = 0  # works new or changed
    notices: int = 0  # notice links about our papers after the run
    service_requests: dict = field(default_factory=dict)  # service -> requests made

    def lines(self):
        out = [
            f"DOIs asked: {self.dois_asked}, found: {self.found}, unresolved: {len(self.unresolved)}",
            f"papers new: {self.new_papers}, updated: {self.updated_papers}",
            f"requests: {self.requests} ({self.retries} retries), time: {self.seconds:.1f} s",
        ]
        if self.service_requests:
            out += [
                f"ClinicalTrials.gov: {self.registry_ids} registry ids, {self.registry_records} records new or changed",
                f"Crossref: {self.crossref_dois} DOIs, {self.crossref_works} works new or changed, "
                f"{self.notices} notices about our papers",
                "requests by service: " + ", ".join(f"{k} {v}" for k, v in self.service_requests.items()),
            ]
        out += [f"repaired DOI {short} -> {full}" for short, full in self.repaired.items()]
        out += [f"unresolved {doi}: {reason}" for doi, reason in self.unresolved.items()]
        out += [f"skipped PMID {pmid}: {reason}" for pmid, reason in self.skipped]
        return out


@contextmanager
def measured(client):
    """A fresh Summary that ends up holding the requests made (retries among them) and the time taken."""
    summary = Summary()
    started, before = time.monotonic(), client.counts()
    yield summary
    after = client.counts()
    summary.requests = after["requests"] - before["requests"]
    summary.retries = after["retries"] - before["retries"]
    summary.seconds = time.monotonic() - started


@contextmanager
def atomic_database(path):
    """Yield a Database on a copy of `path`; move it into place only if the block succeeds.

    On any exception, Ctrl-C included, the copy is deleted and `path` is untouched.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.db")
    if path.exists():
        shutil.copyfile(path, temporary)
    db = sqlite_utils.Database(temporary)
    try:
        store.ensure_db_shape(db)
        yield db
        db.conn.commit()
        db.close()
        os.replace(temporary, path)
    except BaseException:
        db.close()
        temporary.unlink(missing_ok=True)
        raise


def save_fetched(db, xml, summary, accept=None):
    """Parse an efetch document and store each record (raw and parsed).

    `accept(record)` decides which records are kept (e.g. only exact DOI
    matches); returns the kept records.
    """
    records, skipped = parse.parse_pubmed_xml(xml)
    summary.skipped.extend(skipped)
    raw = parse.split_records(xml)
    kept = []
    for record in records:
        if accept and not accept(record):
            continue
        store.save_raw_record(db, record["pmid"], raw[record["pmid"]], record["date_revised"])
        existed = db["papers"].count_where("pmid = ?", [record["pmid"]]) > 0
        _, changed = store.save_paper(db, record)
        if changed:
            if existed:
                summary.updated_papers += 1
            else:
                summary.new_papers += 1
        kept.append(record)
    return kept


def harvest_dois(db, client, inputs, progress=None):
    """Harvest DOIs (DOIInput items): batched esearch, batched efetch, exact DOI mapping.

    Known DOIs are not looked up again; malformed ones are recorded with their line.
    """
    with measured(client) as summary:
        _harvest_dois(db, client, inputs, progress, summary)
    return summary


def _harvest_dois(db, client, inputs, progress, summary):
    stamp = store.now()
    wanted = {}  # normalised doi -> the DOIInput it came from
    for item in inputs:
        if item.doi is None:
            reason = f"malformed DOI on line {item.line}: {item.error}"
            summary.unresolved[item.original] = reason
            _save_unresolved(db, item.original, item.original, item.line, reason, stamp)
            continue
        wanted.setdefault(item.doi, item)
    summary.dois_asked = len(wanted)
    known = {
        row["doi"]: row["pmid"]
        for row in db.query("select doi, pmid from doi_lookups where pmid is not null")
    }
    known.update({row["repaired_from"]: row["pmid"] for row in db.query(
        "select repaired_from, pmid from doi_lookups where repaired_from is not null")})
    pending = [doi for doi in wanted if doi not in known]
    summary.found = len(wanted) - len(pending)

    matched = {}
    if pending:
        pmids = fetch.fetch_pmids_for_dois(client, pending)
        pending_set = set(pending)
        for _, xml in _tick(fetch.fetch_records(client, pmids), progress):
            kept = save_fetched(db, xml, summary, accept=lambda r: pending_set & set(r["dois"]))
            for record in kept:
                for doi in pending_set & set(record["dois"]):
                    matched[doi] = record["pmid"]
        for doi, pmid in matched.items():
            _save_lookup(db, doi, wanted[doi].original, pmid, None, stamp)
        missing = [doi for doi in pending if doi not in matched]
        truncated = [doi for doi in missing if looks_truncated(wanted[doi].original)]
        repaired, ambiguous = repair_truncated(db, client, truncated, summary)
        for short, (full, pmid) in repaired.items():
            matched[short] = pmid
            summary.repaired[short] = full
            _save_lookup(db, full, wanted[short].original, pmid, short, stamp)
        for doi in missing:
            if doi in matched:
                continue
            if doi in ambiguous:
                reason = (f"looks truncated; {len(ambiguous[doi])} PubMed records complete it "
                          f"({', '.join(ambiguous[doi])}), so none is chosen")
            elif doi in truncated:
                reason = "looks truncated; no PubMed record completes it"
            else:
                reason = "PubMed has no record with this DOI"
            summary.unresolved[doi] = reason
            _save_unresolved(db, doi, wanted[doi].original, wanted[doi].line, reason, stamp)
        summary.found += len(matched)
    for doi in matched:
        db.execute("delete from unresolved_dois where doi = ?", [doi])
    tag_papers(db)


def repair_truncated(db, client, dois, summary):
    """({truncated doi: (full doi, pmid)} for DOIs that exactly one PubMed record completes,
    {truncated doi: [full dois]} for those that several complete, which stay unresolved).

    Candidates come from one wildcard esearch; only a confirmed record is stored.
    """
    if not dois:
        return {}, {}
    candidates = fetch.fetch_truncated_candidates(client, dois)
    fetched = []  # (record, its raw XML)
    for _, xml in fetch.fetch_records(client, candidates):
        raw = parse.split_records(xml)
        fetched += [(record, raw[record["pmid"]]) for record in parse.parse_pubmed_xml(xml)[0]]
    repaired, ambiguous = {}, {}
    for doi in dois:
        completions = [
            (full, record, xml)
            for record, xml in fetched
            for full in record["dois"]
            if full.startswith(doi) and full != doi
        ]
        if len(completions) > 1:
            ambiguous[doi] = sorted(full for full, _, _ in completions)
        if len(completions) != 1:
            continue
        full, record, xml = completions[0]
        store.save_raw_record(db, record["pmid"], xml, record["date_revised"])
        if store.save_paper(db, record)[1]:
            summary.new_papers += 1
        repaired[doi] = (full, record["pmid"])
    return repaired, ambiguous


def harvest_sources(db, client, sources, progress=None):
    """`make harvest`: the DOIs of sources.yml and of curated papers not yet harvested,
    curated PMIDs, then a refresh (changed records, new hits of the saved queries)."""
    texts = [item["doi"] if isinstance(item, dict) else item for item in sources.get("dois") or []]
    texts += [row[0] for row in db.execute(
        "select doi from curated_entries where doi is not null and pmid not glob '[0-9]*'")]
    inputs = [
        DOIInput(original=item.original, line=number, doi=item.doi, error=item.error)
        for number, text in enumerate(texts, 1)
        for item in read_doi_lines([str(text)])
    ]
    curated_pmids = [row[0] for row in db.execute(
        "select pmid from curated_entries where pmid glob '[0-9]*'")]
    with measured(client) as summary:
        _harvest_dois(db, client, inputs, progress, summary)
        _refresh(db, client, sources.get("queries") or [], make_keep_rule(sources.get("keep")),
                 curated_pmids, summary)
    return summary


def harvest_pmids(db, client, pmids, summary):
    """Fetch and store these PMIDs (changed records, curated PMIDs, discoveries)."""
    for _, xml in fetch.fetch_records(client, pmids):
        save_fetched(db, xml, summary)


def refresh(db, client, queries, keep_rule, pmids=()):
    """Ask PubMed only for what changed since the last harvest.

    Known PMIDs: one esearch with an [mdat] range. Saved queries: one esearch
    with an [edat] range; new hits are fetched and kept by `keep_rule`.
    `pmids` are further PMIDs to have (e.g. curated ones not yet harvested);
    notices PubMed links to our papers (errata, retractions, comments) follow.
    A refresh with nothing new makes two requests and rewrites no rows.
    """
    with measured(client) as summary:
        _refresh(db, client, queries, keep_rule, pmids, summary)
    return summary


def _refresh(db, client, queries, keep_rule, pmids, summary):
    since = store.get_state(db, "last_harvest_date")
    known = [row[0] for row in db.execute("select pmid from raw_records")]
    changed = fetch.fetch_changed_pmids(client, known, since) if since else []
    missing = [p for p in pmids if p not in set(known)]
    harvest_pmids(db, client, list(dict.fromkeys(changed + missing)), summary)
    if queries:
        seen = {row[0] for row in db.execute("select pmid from discoveries")} | set(known)
        hits = [p for p in fetch.fetch_new_for_queries(client, queries, since) if p not in seen]
        for _, xml in fetch.fetch_records(client, hits):
            for record, kept, reason in judge_discoveries(xml, keep_rule):
                db["discoveries"].upsert(
                    {"pmid": record["pmid"], "kept": int(kept), "reason": reason,
                     "first_seen": store.now()}, pk="pmid")
            save_fetched(db, xml, summary, accept=lambda r: keep_rule(r)[0])
    harvest_pmids(db, client, missing_linked_notices(db), summary)
    tag_papers(db)


def harvest_integrity(db, eutils, ctgov_client, crossref_client, summary, progress=None):
    """After the PubMed stage: registry records for every NCT id and Crossref notices for every
    DOI then in kb.db; notices PubMed indexes are fetched from PubMed, the others kept as
    Crossref's metadata, and each is linked to the paper it is about."""
    before = {c.service: c.requests_made for c in (eutils, ctgov_client, crossref_client)}
    summary.registry_records, summary.registry_ids = integrity.harvest_ctgov(db, ctgov_client, progress)
    summary.crossref_works, summary.crossref_dois = integrity.harvest_crossref(
        db, crossref_client, crossref.contact_email(), progress)
    notice_dois = set(integrity.missing_notice_dois(db))
    if notice_dois:
        for _, xml in fetch.fetch_records(eutils, fetch.fetch_pmids_for_dois(eutils, sorted(notice_dois))):
            save_fetched(db, xml, summary, accept=lambda r: notice_dois & set(r["dois"]))
    integrity.link_notices(db)
    tag_papers(db)
    summary.notices = db.execute(
        "select count(*) from integrity_notices where sources like 'Crossref%'").fetchone()[0]
    made = {c.service: c.requests_made - before[c.service] for c in (eutils, ctgov_client, crossref_client)}
    summary.requests += made[eutils.service]  # `requests` counts every E-utilities request of the run
    summary.service_requests = {**made, eutils.service: summary.requests}


def missing_linked_notices(db):
    """PMIDs of corrections, retractions, comments and updates that PubMed links to our papers
    but that are not in kb.db yet: a refresh fetches them, so a notice appears beside its paper."""
    marks = ", ".join("?" for _ in FOLLOWED_LINKS)
    return [row[0] for row in db.execute(
        f"select distinct ref_pmid from comments_corrections where ref_type in ({marks}) "
        "and ref_pmid is not null and ref_pmid not in (select pmid from papers)", FOLLOWED_LINKS)]


def judge_discoveries(xml, keep_rule):
    records, _ = parse.parse_pubmed_xml(xml)
    for record in records:
        kept, reason = keep_rule(record)
        yield record, kept, reason


def make_keep_rule(rule):
    """A discovered record is kept when its title or abstract mentions a term from every group.

    `rule` comes from sources.yml: {"all_of": [[naltrexone terms], [fibromyalgia terms]]};
    without one, every hit of the saved queries is kept.
    """
    groups = [re.compile("|".join(re.escape(t) for t in terms), re.I) for terms in (rule or {}).get("all_of", [])]

    def keep(record):
        text = f"{record.get('title') or ''} {record.get('abstract') or ''}"
        missing = [g.pattern for g in groups if not g.search(text)]
        if missing:
            return False, "title/abstract lacks: " + "; ".join(missing)
        return True, "title/abstract mentions every required term group"

    return keep


def tag_papers(db):
    """Tag papers whose text or the tagger version changed since they were last tagged."""
    for key in [row[0] for row in db.execute("select pmid from papers")]:
        text = store.paper_text_for_tagging(db, key)
        if not text["sections"]:
            text["sections"] = curate.summary_sections(db, key)
        digest = store.sha256(json.dumps(text, sort_keys=True))
        state = db.execute(
            "select text_sha256, tagger_version from tag_state where pmid = ?", [key]
        ).fetchone()
        if state == (digest, tag.TAGGER_VERSION):
            continue
        store.save_tags(db, key, tag.tag_paper(text), "auto", tag.TAGGER_VERSION)
        db["tag_state"].upsert(
            {"pmid": key, "text_sha256": digest, "tagger_version": tag.TAGGER_VERSION,
             "tagged_at": store.now()}, pk="pmid")


def build(db, curated_entries):
    """Rebuild every derived table offline: raw PubMed XML, curated entries, stored registry
    and Crossref JSON, tags, the search index, then the evidence synthesis (effects, risk of
    bias, meta-analyses, pooled estimates, summary of findings, sensitivity analyses) and the
    evidence pages rendered from it."""
    summary = Summary()
    for pmid, xml in db.execute("select pmid, xml from raw_records").fetchall():
        records, skipped = parse.parse_pubmed_xml(xml)
        summary.skipped.extend(skipped)
        for record in records:
            _, changed = store.save_paper(db, record)
            summary.updated_papers += int(changed)
    curate.save_curated(db, curated_entries)
    curate.save_registry_facts(db, curated_entries)
    integrity.rebuild(db)
    tag_papers(db)
    search.refresh(db)
    evidence.build(db, curated_entries, curate.paper_key)
    summary_of_findings.build(db)
    sensitivity.build(db)
    evidence_pages.build(db)
    return summary


def record_run(db, mode, client, summary, started_at, others=()):
    """Log a finished harvest; `errors` lists the problems that were retried on the way
    (by the E-utilities client, then by `others`, the registry and Crossref clients)."""
    retried = ", ".join(
        f"{problem} retried x{n}" if c is client else f"{c.service} {problem} retried x{n}"
        for c in (client, *others) for problem, n in sorted(c.retried.items()))
    db["harvest_runs"].insert(
        {
            "started_at": started_at, "ended_at": store.now(), "mode": mode,
            "eutils_url": client.scrub(client.base_url), "dois_asked": summary.dois_asked,
            "found": summary.found, "unresolved": len(summary.unresolved),
            "new_papers": summary.new_papers, "updated_papers": summary.updated_papers,
            "requests": summary.requests, "errors": retried or None, "status": "ok",
            "ctgov_requests": summary.service_requests.get("ClinicalTrials.gov"),
            "crossref_requests": summary.service_requests.get("Crossref"),
        },
        pk="id",
    )
    store.set_state(db, "last_harvest_date", datetime.now(timezone.utc).strftime("%Y/%m/%d"))
    store.set_state(db, "last_harvest_at", started_at)


def _save_unresolved(db, doi, original, line, reason, stamp):
    """Record an unresolved DOI; an unchanged one is left as it is (re-runs rewrite nothing)."""
    current = db.execute(
        "select input, line, reason from unresolved_dois where doi = ?", [doi]
    ).fetchone()
    if current == (original, line, reason):
        return
    db["unresolved_dois"].upsert(
        {"doi": doi, "input": original, "line": line, "reason": reason, "first_seen": stamp},
        pk="doi",
    )


def _save_lookup(db, doi, original, pmid, repaired_from, stamp):
    db["doi_lookups"].upsert(
        {"doi": doi, "input": original, "pmid": pmid, "repaired_from": repaired_from,
         "resolved_at": stamp},
        pk="doi",
    )


def _tick(iterable, progress):
    for item in iterable:
        yield item
        if progress is not None:  # a tqdm bar has no truth value
            progress.update(len(item[0]))
