"""The pipeline: fetch -> parse -> tag -> store, for DOIs, PMIDs, refreshes and offline rebuilds.

Commands call these functions inside `atomic_database`, so a step that fails or is
interrupted leaves the previous kb.db byte-identical. `kb harvest` runs in stages
(`StagedHarvest`): PubMed records, registry records, Crossref notices, each landing in
kb.db on its own, so a service that cannot be reached costs only its own stage.
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

from . import (candidates, crossref, curate, evidence, evidence_pages, fetch, integrity, parse, primary_outcome,
               search, sensitivity, store, summary_of_findings, tag)
from .dois import DOIInput, looks_truncated, read_doi_lines
from .http import HttpError


@dataclass(frozen=True)
class Stage:
    """A part of a harvest that lands in kb.db on its own, or not at all."""

    name: str  # as `harvest_runs` and `missed_lookups` name it
    service: str  # who is asked, in words
    what: str  # what it lands, in words
    units: tuple = ()  # what it asks about, one and many ("notices not refreshed for 5 papers")

    def count(self, n):
        return f"{n} {self.units[n != 1]}"


PUBMED = Stage("pubmed", "PubMed", "PubMed records")
REGISTRIES = Stage("registries", "ClinicalTrials.gov", "registry records", ("trial", "trials"))
NOTICES = Stage("notices", "Crossref", "notices", ("paper", "papers"))
STAGES = {stage.name: stage for stage in (PUBMED, REGISTRIES, NOTICES)}
SERVICE_WORDS = {"eutils": "PubMed"}  # a client's service name as readers know it


@dataclass(frozen=True)
class StageFailure:
    """A stage that did not land: which service failed it, how, and what it was to ask about."""

    stage: Stage
    service: str
    unreachable: bool
    error: str  # the client's one line (URL, what went wrong)
    items: tuple  # NCT ids or DOIs left unrefreshed

    def words(self):
        """'Crossref could not be reached; notices not refreshed for 5 papers'."""
        how = "could not be reached" if self.unreachable else "answered with an error"
        return f"{self.service} {how}; {self.stage.what} not refreshed for {self.stage.count(len(self.items))}"


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
    landed: list = field(default_factory=list)  # Stages that landed, in order
    failed: dict = field(default_factory=dict)  # stage name -> StageFailure
    caught_up: dict = field(default_factory=dict)  # stage name -> items an earlier run missed, asked again

    def lines(self):
        out = [
            f"DOIs asked: {self.dois_asked}, found: {self.found}, unresolved: {len(self.unresolved)}",
            f"papers new: {self.new_papers}, updated: {self.updated_papers}",
            f"requests: {self.requests} ({self.retries} retries), time: {self.seconds:.1f} s",
        ]
        if self.landed:
            out.append("landed: " + ", ".join(stage.what for stage in self.landed) + "".join(
                f"; not landed: {failure.stage.what}" for failure in self.failed.values()))
        names = {stage.name for stage in self.landed}
        if REGISTRIES.name in names:
            out.append(f"ClinicalTrials.gov: {self.registry_ids} registry ids, "
                       f"{self.registry_records} records new or changed")
        if NOTICES.name in names:
            out.append(f"Crossref: {self.crossref_dois} DOIs, {self.crossref_works} works new or changed, "
                       f"{self.notices} notices about our papers")
        out += [f"{failure.words()} (the next harvest asks again)" for failure in self.failed.values()]
        out += [f"{STAGES[name].service}: asked again about {STAGES[name].count(n)} an earlier harvest missed"
                for name, n in self.caught_up.items()]
        if self.service_requests:
            out.append("requests by service: " + ", ".join(f"{k} {v}" for k, v in self.service_requests.items()))
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
def atomic_database(path, shaped=False):
    """Yield a Database on a copy of `path`; move it into place only if the block succeeds.

    On any exception, Ctrl-C included, the copy is deleted and `path` is untouched.
    `shaped`: the file was given kb.db's shape already (by an earlier stage of this run).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.db")
    if path.exists():
        shutil.copyfile(path, temporary)
    db = sqlite_utils.Database(temporary)
    try:
        if not shaped:
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
        existed = db["papers"].count_where("paper_id = ?", [record["pmid"]]) > 0
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
    candidate_pmids = fetch.fetch_truncated_candidates(client, dois)
    fetched = []  # (record, its raw XML)
    for _, xml in fetch.fetch_records(client, candidate_pmids):
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
        "select c.doi from curated_entries c join papers p on p.paper_id = c.paper_id "
        "where c.doi is not null and p.pmid is null")]
    inputs = [
        DOIInput(original=item.original, line=number, doi=item.doi, error=item.error)
        for number, text in enumerate(texts, 1)
        for item in read_doi_lines([str(text)])
    ]
    curated_pmids = [row[0] for row in db.execute(
        "select p.pmid from curated_entries c join papers p on p.paper_id = c.paper_id where p.pmid is not null")]
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


def harvest_registries(db, client, ids, summary, progress=None):
    """The registry stage: ClinicalTrials.gov records for these NCT ids."""
    summary.registry_ids = len(ids)
    summary.registry_records = integrity.harvest_ctgov(db, client, ids, progress)


def harvest_notices(db, eutils, crossref_client, dois, summary, progress=None):
    """The notices stage: Crossref notices about these DOIs; notices PubMed indexes are fetched
    from PubMed, the others kept as Crossref's metadata, and each is linked to the paper it is about."""
    summary.crossref_dois = len(dois)
    summary.crossref_works = integrity.harvest_crossref(db, crossref_client, dois, crossref.contact_email(), progress)
    notice_dois = set(integrity.missing_notice_dois(db))
    if notice_dois:
        for _, xml in fetch.fetch_records(eutils, fetch.fetch_pmids_for_dois(eutils, sorted(notice_dois))):
            save_fetched(db, xml, summary, accept=lambda r: notice_dois & set(r["dois"]))
    integrity.link_notices(db)
    tag_papers(db)
    summary.notices = db.execute(
        "select count(*) from integrity_notices where sources like 'Crossref%'").fetchone()[0]


class StagedHarvest:
    """One `kb harvest`, in stages that land in kb.db on their own: PubMed records, then
    registry records (ClinicalTrials.gov), then notices (Crossref).

    Each stage works on its own copy of kb.db, moved into place only when the stage
    succeeds (`atomic_database`), so Ctrl-C or a failure leaves the last landed stage and
    no half stage. The PubMed stage's failure is the harvest's. A later stage whose service
    fails (HttpError) does not land: its NCT ids or DOIs go to `missed_lookups`, and the next
    harvest asks about them again with what it asks anyway. `landed` says what landed so far.
    """

    def __init__(self, path, eutils, ctgov_client, crossref_client, progress=None, tell=None):
        self.path = Path(path)
        self.eutils, self.ctgov, self.crossref = eutils, ctgov_client, crossref_client
        self.progress = progress
        self.tell = tell or (lambda line: None)  # says a failed stage as it happens
        self.landed = []
        self.created = True

    def run(self, pubmed, mode):
        """`pubmed(db)` runs the PubMed stage (`harvest_dois` or `harvest_sources`) and returns its
        Summary; then the later stages run and the run is recorded in `harvest_runs`. Returns the
        Summary. A kb.db that did not exist is not created when PubMed found no paper (`created`)."""
        started_at, clock = store.now(), time.monotonic()
        existed = self.path.exists()
        try:
            with atomic_database(self.path) as db:
                summary = pubmed(db)
                if not existed and not summary.new_papers:
                    raise _NothingToAdd(summary)
                note_pubmed_harvest(db, started_at)
        except _NothingToAdd as nothing:
            self.created = False
            return nothing.summary
        summary.landed = self.landed
        self.landed.append(PUBMED)
        self._stage(summary, REGISTRIES, integrity.nct_ids, lambda db, ids: harvest_registries(
            db, self.ctgov, ids, summary, self.progress))
        self._stage(summary, NOTICES, integrity.paper_dois, lambda db, dois: harvest_notices(
            db, self.eutils, self.crossref, dois, summary, self.progress))
        clients = (self.eutils, self.ctgov, self.crossref)
        summary.requests = self.eutils.requests_made  # every E-utilities request of the run
        summary.retries = sum(self.eutils.retried.values())
        summary.service_requests = {c.service: c.requests_made for c in clients}
        summary.seconds = time.monotonic() - clock
        with atomic_database(self.path, shaped=True) as db:
            remember_missed(db, summary.failed.values())
            record_run(db, mode, self.eutils, summary, started_at, others=(self.ctgov, self.crossref))
        return summary

    def _stage(self, summary, stage, wanted, harvest):
        """Run a later stage on its own copy of kb.db: it lands, or its failure is recorded."""
        items = ()
        try:
            with atomic_database(self.path, shaped=True) as db:
                missed = missed_items(db, stage)
                # What an earlier run missed is asked again, even if kb.db no longer names it.
                items = tuple(sorted(set(wanted(db)) | set(missed)))
                harvest(db, list(items))
                db.execute("delete from missed_lookups where stage = ?", [stage.name])
        except HttpError as error:
            failure = StageFailure(stage, SERVICE_WORDS.get(error.service, error.service or stage.service),
                                   error.unreachable, str(error), items)
            summary.failed[stage.name] = failure
            self.tell(f"{failure.words()} ({failure.error})")
            return
        self.landed.append(stage)
        if missed:
            summary.caught_up[stage.name] = len(missed)


class _NothingToAdd(Exception):
    """Raised inside atomic_database to drop a new database that would hold nothing harvested."""

    def __init__(self, summary):
        super().__init__("nothing harvested")
        self.summary = summary


def note_pubmed_harvest(db, started_at):
    """The PubMed stage landed: the next refresh asks PubMed only for what changed since today."""
    store.set_state(db, "last_harvest_date", datetime.now(timezone.utc).strftime("%Y/%m/%d"))
    store.set_state(db, "last_harvest_at", started_at)


def missed_items(db, stage):
    """The NCT ids or DOIs an earlier harvest could not ask about in this stage."""
    return [row[0] for row in db.execute("select item from missed_lookups where stage = ? order by item",
                                         [stage.name])]


def remember_missed(db, failures):
    """Record what each failed stage could not ask about; an item missed before keeps its first date."""
    stamp = store.now()
    for failure in failures:
        first = dict(db.execute("select item, first_missed from missed_lookups where stage = ?",
                                [failure.stage.name]).fetchall())
        db.execute("delete from missed_lookups where stage = ?", [failure.stage.name])
        db["missed_lookups"].insert_all(
            [{"stage": failure.stage.name, "item": item, "service": failure.service,
              "first_missed": first.get(item, stamp), "reason": failure.error} for item in failure.items],
            pk=("stage", "item"))


def missing_linked_notices(db):
    """PMIDs of corrections, retractions, comments and updates that PubMed links to our papers
    but that are not in kb.db yet: a refresh fetches them, so a notice appears beside its paper."""
    marks = ", ".join("?" for _ in FOLLOWED_LINKS)
    return [row[0] for row in db.execute(
        f"select distinct ref_pmid from comments_corrections where ref_type in ({marks}) "
        "and ref_pmid is not null and ref_pmid not in (select pmid from papers where pmid is not null)",
        FOLLOWED_LINKS)]


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
    for key in [row[0] for row in db.execute("select paper_id from papers")]:
        text = store.paper_text_for_tagging(db, key)
        if not text["sections"]:
            text["sections"] = curate.summary_sections(db, key)
        digest = store.sha256(json.dumps(text, sort_keys=True))
        state = db.execute(
            "select text_sha256, tagger_version from tag_state where paper_id = ?", [key]
        ).fetchone()
        if state == (digest, tag.TAGGER_VERSION):
            continue
        store.save_tags(db, key, tag.tag_paper(text), "auto", tag.TAGGER_VERSION)
        db["tag_state"].upsert(
            {"paper_id": key, "text_sha256": digest, "tagger_version": tag.TAGGER_VERSION,
             "tagged_at": store.now()}, pk="paper_id")
    # What is read from abstracts beside the tags: primary outcomes and between-group numbers.
    primary_outcome.refresh(db)
    candidates.refresh(db)


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
    """Log a finished harvest: which stages landed, which failed and why; `errors` lists the
    problems that were retried on the way (by the E-utilities client, then by `others`, the
    registry and Crossref clients)."""
    retried = ", ".join(
        f"{problem} retried x{n}" if c is client else f"{c.service} {problem} retried x{n}"
        for c in (client, *others) for problem, n in sorted(c.retried.items()))
    db["harvest_runs"].insert(
        {
            "started_at": started_at, "ended_at": store.now(), "mode": mode,
            "eutils_url": client.scrub(client.base_url), "dois_asked": summary.dois_asked,
            "found": summary.found, "unresolved": len(summary.unresolved),
            "new_papers": summary.new_papers, "updated_papers": summary.updated_papers,
            "requests": summary.requests, "errors": retried or None,
            "status": "partial" if summary.failed else "ok",
            "ctgov_requests": summary.service_requests.get("ClinicalTrials.gov"),
            "crossref_requests": summary.service_requests.get("Crossref"),
            "stages_landed": ", ".join(stage.name for stage in summary.landed) or None,
            "stages_failed": ", ".join(summary.failed) or None,
            "stage_errors": "\n".join(f"{name}: {failure.words()} ({failure.error})"
                                      for name, failure in summary.failed.items()) or None,
        },
        pk="id",
    )


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
