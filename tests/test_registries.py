"""ClinicalTrials.gov and Crossref: parsing, the clients against fake servers, and the
integrity views (`integrity_status`, `registration_vs_publication`) they feed."""

import json

import pytest
import sqlite_utils

from fake_registries import FakeCrossref, FakeCtgov, study, work
from harvest import crossref, ctgov, integrity, pipeline, store
from harvest.http import HttpError

PAIN = "Average pain intensity on a 0-10 numeric rating scale"
FIQ = "Fibromyalgia Impact Questionnaire revised total score"


def fast(module, server, **options):
    """A client for a fake server, paced fast, with a small backoff."""
    options = {"per_second": 200, "backoff": 0.01, "timeout": 2.0, "max_retries": 4, **options}
    return module.make_client(server.base_url, **options)


# ------------------------------------------------------------------ parsing


def test_a_study_record_parses_into_registry_facts():
    record = study("NCT01000001", status="TERMINATED", why_stopped="Slow recruitment",
                   primary_completion=("2019-06-30", "ACTUAL"), completion=("2019-09", "ESTIMATED"),
                   enrollment=(12, "ACTUAL"), primary_outcomes=(PAIN,), secondary_outcomes=(FIQ,),
                   has_results=True, posted_primary=PAIN)
    parsed = ctgov.parse_study(record)
    row = parsed["study"]
    assert row["overall_status"] == "terminated"
    assert row["why_stopped"] == "Slow recruitment"
    assert (row["primary_completion_date"], row["primary_completion_date_type"]) == ("2019-06-30", "actual")
    assert (row["completion_date"], row["completion_date_type"]) == ("2019-09", "anticipated")
    assert (row["enrollment"], row["enrollment_type"], row["has_results"]) == (12, "actual", 1)
    by_kind = {(o["kind"], o["position"]): o for o in parsed["outcomes"]}
    assert by_kind[("primary", 1)]["outcome_values"] == ["pain_intensity"]
    assert by_kind[("primary", 1)]["time_frame"] == "12 weeks"
    assert by_kind[("secondary", 1)]["outcome_values"] == ["fiq"]
    assert "Active: 2.5 (1.1)" in by_kind[("posted_primary", 1)]["posted_result"]
    assert "p=0.2" in by_kind[("posted_primary", 1)]["posted_result"]
    (drug,) = parsed["interventions"]
    assert (drug["dose_min_mg_per_day"], drug["dose_max_mg_per_day"]) == (4.5, 4.5)


def test_crossref_notices_in_both_directions_and_relations():
    paper = work("10.5555/paper", updated_by=[("10.5555/fix", "correction"),
                                              ("10.5555/gone", "retraction", "retraction-watch"),
                                              ("10.5555/v2", "new_version")],
                 relation={"has-comment": [{"id-type": "doi", "id": "10.5555/letter", "asserted-by": "object"}],
                           "references": [{"id-type": "doi", "id": "10.5555/other"}]})
    notice = work("10.5555/concern", update_to=[("10.5555/Paper", "expression_of_concern")])
    found = {(n["notice_doi"], n["target_doi"], n["relation"], n["source"])
             for n in crossref.notices(paper) + crossref.notices(notice)}
    assert found == {
        ("10.5555/fix", "10.5555/paper", "correction_of", "Crossref (publisher)"),
        ("10.5555/gone", "10.5555/paper", "retraction_of", "Crossref (Retraction Watch)"),
        ("10.5555/letter", "10.5555/paper", "comment_on", "Crossref (relation)"),
        ("10.5555/concern", "10.5555/paper", "expression_of_concern_for", "Crossref (publisher)"),
    }


# ------------------------------------------------------------------ clients


def test_studies_are_fetched_in_batches_following_every_page():
    ids = [f"NCT{n:08d}" for n in range(1, 251)]
    with FakeCtgov([study(i) for i in ids], max_page_size=60) as server:
        client = fast(ctgov, server)
        got = [ctgov.nct_id(s) for s in ctgov.fetch_studies(client, ids + ["NCT09999999"])]
        assert sorted(got) == ids
        # 3 batches (100, 100, 51 ids) of pages of 60: 2 + 2 + 1 requests
        assert server.count("studies") == 5
        assert all(len(p["filter.ids"].split(",")) <= ctgov.STUDIES_BATCH for _, p in server.log)


def test_a_refresh_asks_only_for_records_updated_since():
    with FakeCtgov([study("NCT00000001", last_update="2020-01-01"),
                    study("NCT00000002", last_update="2025-03-01")]) as server:
        client = fast(ctgov, server)
        got = [ctgov.nct_id(s) for s in ctgov.fetch_studies(client, ["NCT00000001", "NCT00000002"], "2024-01-01")]
        assert got == ["NCT00000002"]
        assert server.log[-1][1]["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2024-01-01,MAX]"


@pytest.mark.parametrize("fault", ["429", "429-bare", "500", "503", "truncated", "reset", "slow"])
def test_transient_faults_are_retried_and_nothing_is_lost(fault):
    ids = [f"NCT{n:08d}" for n in range(1, 6)]
    with FakeCtgov([study(i) for i in ids], slow_seconds=1.5) as server:
        client = fast(ctgov, server, timeout=0.5)
        server.inject(fault, times=2)
        assert sorted(ctgov.nct_id(s) for s in ctgov.fetch_studies(client, ids)) == ids
        assert server.count("studies") == 3


def test_the_service_rate_limit_is_met_with_waits_not_failures():
    dois = [f"10.5555/w{n}" for n in range(120)]
    with FakeCrossref([work(d) for d in dois], max_per_second=4, retry_after=False) as server:
        client = fast(crossref, server, max_retries=8)
        got = {w["DOI"] for _, m in crossref.fetch_works(client, dois) for w in crossref.items(m)}
        assert got == set(dois)
        assert sum(client.retried.values()) >= 1  # 429s without Retry-After happened and were waited out


@pytest.mark.parametrize("fault, words", [("404", "HTTP 404"), ("html", "not JSON")])
def test_permanent_errors_are_one_line_naming_the_url(fault, words, monkeypatch):
    monkeypatch.setenv("KB_CONTACT_EMAIL", "someone@example.org")
    with FakeCrossref([work("10.5555/a")]) as server:
        client = fast(crossref, server)
        server.inject(fault)
        with pytest.raises(HttpError) as error:
            list(crossref.fetch_works(client, ["10.5555/a"], crossref.contact_email()))
        message = str(error.value)
        assert words in message and server.base_url in message and "\n" not in message
        assert "someone@example.org" not in message and "mailto=***" in message
        assert server.log[0][1]["mailto"] == "someone@example.org"  # sent, never shown


def test_more_notices_than_rows_are_followed_page_by_page():
    notices = [work(f"10.5555/fix{n}", update_to=[("10.5555/a", "correction")]) for n in range(25)]
    with FakeCrossref([work("10.5555/a"), *notices]) as server:
        got = {w["DOI"] for _, m in crossref.fetch_works(fast(crossref, server), ["10.5555/a"]) for w in crossref.items(m)}
        assert got == {"10.5555/a"} | {w["DOI"] for w in notices}
        assert server.count("works") == 3  # the work, then two pages of 20 updates


def test_crossref_pacing_follows_the_announced_rate_limit():
    with FakeCrossref([work("10.5555/a")], rate_limit=("5", "2s")) as server:
        client = fast(crossref, server)
        list(crossref.fetch_works(client, ["10.5555/a"]))
        assert client.limiter.interval == pytest.approx(2 / (5 * 0.8))


def test_two_requests_cover_fifty_dois():
    dois = [f"10.5555/w{n}" for n in range(crossref.WORKS_BATCH + 1)]
    with FakeCrossref([work(d) for d in dois]) as server:
        list(crossref.fetch_works(fast(crossref, server), dois))
        assert server.count("works") == 4  # works + updates, for two batches


# ------------------------------------------------------------------ store and views


def make_db(path):
    db = sqlite_utils.Database(path)
    store.ensure_db_shape(db)
    return db


def add_paper(db, key, doi=None, title="A paper", source="pubmed"):
    store.save_paper(db, {"pmid": key, "doi": doi, "title": title, "year": 2020, "authors": []}, source=source)


def test_a_crossref_correction_becomes_a_linked_paper_and_sets_the_status(tmp_path):
    db = make_db(tmp_path / "kb.db")
    add_paper(db, "111", doi="10.5555/trial")
    assert db.execute("select status from integrity_status where paper_id = '111'").fetchone()[0] == "none"
    integrity.save_work(db, work("10.5555/trial", updated_by=[("10.5555/fix", "correction")]))
    integrity.save_work(db, work("10.5555/fix", title="Correction to: A paper", kind="journal-article",
                                 update_to=[("10.5555/trial", "correction")]))
    integrity.link_notices(db)
    paper = db.execute("select source, title from papers where paper_id = 'doi:10.5555/fix'").fetchone()
    assert paper == ("crossref", "Correction to: A paper")
    row = db.execute("select status, corrected, retracted, notices from integrity_status where paper_id = '111'").fetchone()
    assert row[:3] == ("corrected", 1, 0)
    assert json.loads(row[3])[0]["notice"] == "doi:10.5555/fix"
    assert db.execute("select count(*) from notice_feed where paper_id = '111'").fetchone()[0] == 1
    # The same notice indexed by PubMed later: the PubMed paper replaces the Crossref one.
    add_paper(db, "222", doi="10.5555/fix", title="Correction")
    integrity.link_notices(db)
    assert db["papers"].count_where("paper_id = 'doi:10.5555/fix'") == 0
    assert db.execute("select notice_key from integrity_notices where paper_id = '111'").fetchall() == [("222",)]


def test_retraction_outranks_correction(tmp_path):
    db = make_db(tmp_path / "kb.db")
    add_paper(db, "111", doi="10.5555/trial")
    integrity.save_work(db, work("10.5555/trial", updated_by=[("10.5555/fix", "correction"),
                                                                ("10.5555/gone", "retraction", "retraction-watch")]))
    for doi in ("10.5555/fix", "10.5555/gone"):
        integrity.save_work(db, work(doi))
    integrity.link_notices(db)
    row = db.execute("select status, corrected, retracted, sources from integrity_status where paper_id = '111'").fetchone()
    assert row[:3] == ("retracted", 1, 1)
    assert "Retraction Watch" in row[3]


def trial_entry(registry_id, **facts):
    return {"key": registry_id.lower(), "type": "trial", "registry_id": registry_id, "title": "A trial",
            "sources": [{"url": "https://example.org/t", "checked": "2026-11-30"}], **facts}


def publication_entry(key, pmid, registry_id, **facts):
    return {"key": key, "type": "publication", "pmid": pmid, "title": "Results", "design": ["rct"],
            "related": [{"relation": "reports_trial", "key": registry_id.lower()}],
            "sources": [{"url": "https://example.org/p", "checked": "2026-11-30"}], **facts}


def view_rows(db):
    return {r["registry_id"]: r for r in db.query("select * from registration_vs_publication")}


def test_registration_vs_publication_from_curated_facts(tmp_path):
    db = make_db(tmp_path / "kb.db")
    entries = [
        trial_entry("NCT00000011", completion_date="2015-03", completion_date_type="actual",
                    n_enrolled=40, enrollment_type="actual", primary_outcome_values=["pain_intensity"]),
        trial_entry("NCT00000012", completion_date="2016-01", completion_date_type="actual", n_enrolled=60,
                    results_posted=False),
        trial_entry("NCT00000013", completion_date="2099-01", completion_date_type="anticipated"),
        trial_entry("NCT00000014", completion_date="2015-01", results_posted=True),
        publication_entry("res-2017", "333", "NCT00000011", n_randomized=30, primary_outcome_values=["fiq"]),
    ]
    pipeline.build(db, entries)
    rows = view_rows(db)
    assert set(rows) == {"NCT00000011", "NCT00000012", "NCT00000013", "NCT00000014"}
    published = rows["NCT00000011"]
    assert (published["published"], published["flag_unpublished"]) == (1, 0)
    assert json.loads(published["results_papers"]) == ["333"]
    assert (published["registered_enrollment"], published["published_enrollment"]) == (40, 30)
    assert published["flag_enrollment_differs"] == 1
    assert published["flag_outcome_switch"] == 1
    assert (rows["NCT00000012"]["flag_unpublished"], rows["NCT00000012"]["completion_over_12_months_ago"]) == (1, 1)
    assert rows["NCT00000013"]["flag_unpublished"] == 0  # not due yet
    assert rows["NCT00000014"]["flag_unpublished"] == 0  # results posted on the registry
    assert rows["NCT00000012"]["registry_facts_from"] == "curated"


def test_a_live_record_overrides_curated_facts_and_rebuilds_offline(tmp_path):
    db = make_db(tmp_path / "kb.db")
    entries = [trial_entry("NCT00000021", completion_date="2030-01", primary_outcome_values=["fiq"]),
               publication_entry("res", "444", "NCT00000021", primary_outcome_values=["fiq"])]
    pipeline.build(db, entries)
    assert view_rows(db)["NCT00000021"]["flag_outcome_switch"] == 0
    integrity.save_study(db, study("NCT00000021", completion=("2018-05", "ACTUAL"), primary_completion=None,
                                   primary_outcomes=(PAIN,), last_update="2024-02-02"))
    row = view_rows(db)["NCT00000021"]
    assert row["registry_facts_from"] == "ClinicalTrials.gov record updated 2024-02-02"
    assert json.loads(row["registered_primary_outcome_values"]) == ["pain_intensity"]
    assert row["flag_outcome_switch"] == 1
    before = list(db.query("select * from registration_vs_publication"))
    pipeline.build(db, entries)  # offline: parsed rows again from the stored JSON
    assert list(db.query("select * from registration_vs_publication")) == before


# ------------------------------------------------------------------ kb harvest, end to end

from click.testing import CliRunner  # noqa: E402

from fake_eutils import FakeEutils, FakeRecord  # noqa: E402
from harvest.cli import cli  # noqa: E402

TRIAL_DOI, PUBMED_NOTICE, CROSSREF_NOTICE = "10.5555/ldn.trial", "10.5555/ldn.erratum", "10.5555/ldn.letter"
LONG_AGO, SWITCHED = "NCT00000031", "NCT00000032"

CURATED = f"""
- key: long-ago
  type: trial
  registry_id: {LONG_AGO}
  title: A completed trial with no paper
  sources: [{{url: "https://example.org/t1", checked: 2026-11-30}}]
- key: switched
  type: trial
  registry_id: {SWITCHED}
  title: A trial whose paper reports another primary outcome
  sources: [{{url: "https://example.org/t2", checked: 2026-11-30}}]
- key: switched-results
  type: publication
  pmid: "38000001"
  title: Results of a fibromyalgia trial
  design: [rct]
  primary_outcome_values: [fiq]
  related: [{{relation: reports_trial, key: switched}}]
  sources: [{{url: "https://example.org/p", checked: 2026-11-30}}]
"""


@pytest.fixture
def world(registries, tmp_path, monkeypatch):
    """kb.db built from curated entries; PubMed, ClinicalTrials.gov and Crossref fakes filled."""
    ctgov_server, crossref_server = registries
    with FakeEutils() as eutils:
        eutils.add(FakeRecord(pmid="38000001", title="Results of a fibromyalgia trial", doi=TRIAL_DOI))
        eutils.add(FakeRecord(pmid="38000002", title="Erratum to the fibromyalgia trial", doi=PUBMED_NOTICE))
        monkeypatch.setenv("KB_EUTILS_URL", eutils.base_url)
        ctgov_server.add(study(LONG_AGO, completion=("2016-03", "ACTUAL"), primary_completion=("2016-01", "ACTUAL")))
        ctgov_server.add(study(SWITCHED, primary_outcomes=(PAIN,), completion=("2020-01", "ACTUAL")))
        crossref_server.add(work(TRIAL_DOI, updated_by=[(PUBMED_NOTICE, "correction")],
                                 relation={"has-comment": [{"id-type": "doi", "id": CROSSREF_NOTICE}]}))
        crossref_server.add(work(PUBMED_NOTICE, update_to=[(TRIAL_DOI, "correction")]))
        crossref_server.add(work(CROSSREF_NOTICE, title="A letter about the trial", kind="journal-article"))
        curated = tmp_path / "curated"
        curated.mkdir()
        (curated / "test.yml").write_text(CURATED)
        db_path = tmp_path / "kb.db"
        result = CliRunner().invoke(cli, ["build", "--db", str(db_path), "--curated", str(curated)])
        assert result.exit_code == 0, result.output
        (tmp_path / "dois.txt").write_text(TRIAL_DOI + "\n")
        yield db_path, eutils, ctgov_server, crossref_server


def harvest(db_path):
    return CliRunner().invoke(cli, ["harvest", "--db", str(db_path), "--dois", str(db_path.parent / "dois.txt"),
                                    "--quiet"])


def test_harvest_finds_notices_and_flags_trials(world):
    db_path, _, ctgov_server, crossref_server = world
    result = harvest(db_path)
    assert result.exit_code == 0, result.output
    assert "requests by service: eutils" in result.output
    db = sqlite_utils.Database(db_path)
    # Crossref's correction, indexed by PubMed, lands as the PubMed paper; the letter as Crossref's.
    assert db.execute("select source from papers where pmid = '38000002'").fetchone() == ("pubmed",)
    assert db.execute(f"select source from papers where paper_id = 'doi:{CROSSREF_NOTICE}'").fetchone() == ("crossref",)
    status = db.execute("select status, corrected, commented from integrity_status where paper_id = '38000001'").fetchone()
    assert status == ("corrected", 1, 1)
    assert {r[0] for r in db.execute("select from_key from links where to_key = '38000001' and origin like 'Crossref%'")} \
        == {"38000002", f"doi:{CROSSREF_NOTICE}"}
    rows = view_rows(db)
    assert (rows[LONG_AGO]["flag_unpublished"], rows[LONG_AGO]["published"]) == (1, 0)
    assert rows[SWITCHED]["flag_outcome_switch"] == 1
    assert rows[SWITCHED]["flag_unpublished"] == 0
    run = db.execute("select ctgov_requests, crossref_requests from harvest_runs").fetchone()
    # one ClinicalTrials.gov batch; Crossref: works, updates, then the letter named only in a relation
    assert run == (ctgov_server.count("studies"), crossref_server.count("works")) == (1, 3)


def test_a_second_harvest_asks_only_for_updates_and_rewrites_nothing(world):
    db_path, _, ctgov_server, _ = world
    assert harvest(db_path).exit_code == 0
    tables = ("papers", "links", "notices", "ctgov_studies", "registry_outcomes", "crossref_works", "ctgov_records")
    before = {t: list(sqlite_utils.Database(db_path).query(f"select * from {t} order by 1, 2")) for t in tables}
    assert harvest(db_path).exit_code == 0
    after = {t: list(sqlite_utils.Database(db_path).query(f"select * from {t} order by 1, 2")) for t in tables}
    assert after == before
    assert "filter.advanced" in ctgov_server.log[-1][1]


def test_a_crossref_work_that_changed_since_the_last_run_is_saved_again(world):
    db_path, _, _, crossref_server = world
    assert harvest(db_path).exit_code == 0
    db = sqlite_utils.Database(db_path)
    relations = "select notice_doi, relation from notices where target_doi = ? order by 1"
    assert db.execute(relations, [TRIAL_DOI]).fetchall() == [(PUBMED_NOTICE, "correction_of"),
                                                              (CROSSREF_NOTICE, "comment_on")]
    # Since then the publisher dropped the comment relation and Retraction Watch recorded a retraction.
    retraction = "10.5555/ldn.retraction"
    changed = work(TRIAL_DOI, updated_by=[(PUBMED_NOTICE, "correction"), (retraction, "retraction", "retraction-watch")])
    crossref_server.add(changed)
    crossref_server.add(work(retraction, title="Retraction of a fibromyalgia trial", update_to=[(TRIAL_DOI, "retraction")]))
    result = harvest(db_path)
    assert result.exit_code == 0, result.output
    assert ", 2 works new or changed," in result.output  # the trial's work and the retraction
    db = sqlite_utils.Database(db_path)
    stored = db.execute("select json from crossref_works where doi = ?", [TRIAL_DOI]).fetchone()[0]
    assert json.loads(stored) == changed
    assert db.execute(relations, [TRIAL_DOI]).fetchall() == [(PUBMED_NOTICE, "correction_of"),
                                                              (retraction, "retraction_of")]
    row = db.execute("select status, retracted, corrected, commented from integrity_status where paper_id = '38000001'")
    assert row.fetchone() == ("retracted", 1, 1, 0)
    assert db.execute("select count(*) from links where from_key = ? and origin like 'Crossref%'",
                      [f"doi:{CROSSREF_NOTICE}"]).fetchone()[0] == 0


def test_a_withdrawal_notice_is_not_a_correction(world):
    db_path, _, _, crossref_server = world
    withdrawal = "10.5555/ldn.withdrawal"
    crossref_server.add(work(TRIAL_DOI, updated_by=[(withdrawal, "withdrawal")]))
    crossref_server.add(work(PUBMED_NOTICE))  # no longer a correction of the trial
    crossref_server.add(work(withdrawal, title="Withdrawal of a fibromyalgia trial report",
                             update_to=[(TRIAL_DOI, "withdrawal")]))
    assert harvest(db_path).exit_code == 0
    db = sqlite_utils.Database(db_path)
    assert db.execute("select notice_doi, relation, notice_type from notices where target_doi = ? "
                      "and relation != 'comment_on'", [TRIAL_DOI]).fetchall() == [
        (withdrawal, "retraction_of", "withdrawal")]
    row = db.execute("select status, retracted, corrected from integrity_status where paper_id = '38000001'")
    assert row.fetchone() == ("retracted", 1, 0)


def test_posted_secondary_measures_are_not_counted_as_primary(world):
    db_path, _, ctgov_server, _ = world
    ctgov_server.add(study(SWITCHED, primary_outcomes=(PAIN,), secondary_outcomes=(FIQ,), has_results=True,
                           posted_primary=PAIN, posted_secondary=FIQ, completion=("2020-01", "ACTUAL")))
    ctgov_server.add(study(LONG_AGO, secondary_outcomes=(FIQ,), has_results=True, posted_secondary=FIQ,
                           completion=("2016-03", "ACTUAL")))
    assert harvest(db_path).exit_code == 0
    db = sqlite_utils.Database(db_path)
    assert db.execute("select registry_id, measure from registry_outcomes where kind = 'posted_primary'").fetchall() \
        == [(SWITCHED, PAIN)]
    rows = view_rows(db)
    assert rows[SWITCHED]["posted_primary_results"].startswith(PAIN + ": ")
    assert FIQ not in rows[SWITCHED]["posted_primary_results"]
    assert json.loads(rows[SWITCHED]["registered_primary_outcome_values"]) == ["pain_intensity"]
    assert rows[LONG_AGO]["posted_primary_results"] is None


def test_kb_build_rebuilds_registry_and_notice_rows_from_stored_json(world):
    db_path, *_ = world
    assert harvest(db_path).exit_code == 0
    query = "select * from registration_vs_publication order by 1"
    status = "select * from integrity_status order by 1"
    db = sqlite_utils.Database(db_path)
    before = (list(db.query(query)), list(db.query(status)))
    db.execute("delete from notices")
    db.execute("delete from ctgov_studies")
    db.conn.commit()
    curated = db_path.parent / "curated"
    assert CliRunner().invoke(cli, ["build", "--db", str(db_path), "--curated", str(curated)]).exit_code == 0
    db = sqlite_utils.Database(db_path)
    assert (list(db.query(query)), list(db.query(status))) == before


def test_outcome_switch_needs_every_results_paper_to_differ_and_withdrawn_trials_are_not_unpublished(tmp_path):
    db = make_db(tmp_path / "kb.db")
    entries = [
        trial_entry("NCT00000041", completion_date="2015-03", primary_outcome_values=["pain_intensity"]),
        publication_entry("main", "501", "NCT00000041", primary_outcome_values=["pain_intensity"]),
        publication_entry("exploratory", "502", "NCT00000041", primary_outcome_values=["pain_threshold"]),
        trial_entry("NCT00000042", status="withdrawn", completion_date="2012-01"),
        trial_entry("NCT00000043", status="terminated", completion_date="2012-01"),
    ]
    pipeline.build(db, entries)
    rows = view_rows(db)
    assert rows["NCT00000041"]["flag_outcome_switch"] == 0
    assert json.loads(rows["NCT00000041"]["published_primary_outcome_values"]) == ["pain_intensity", "pain_threshold"]
    assert (rows["NCT00000042"]["flag_unpublished"], rows["NCT00000043"]["flag_unpublished"]) == (0, 1)


def test_the_contact_email_is_sent_to_crossref_but_never_stored_or_printed(world, monkeypatch):
    db_path, _, _, crossref_server = world
    monkeypatch.setenv("NCBI_EMAIL", "curator@example.org")  # the fallback for KB_CONTACT_EMAIL
    result = harvest(db_path)
    assert result.exit_code == 0, result.output
    assert {p.get("mailto") for _, p in crossref_server.log} == {"curator@example.org"}
    assert b"curator@example.org" not in db_path.read_bytes()
    assert "curator@example.org" not in result.output


def test_the_committed_kb_db_rebuilt_offline_has_one_row_per_registered_trial(tmp_path):
    import shutil
    from pathlib import Path

    from harvest import curate

    committed = Path(__file__).parents[1] / "kb.db"
    shutil.copyfile(committed, tmp_path / "kb.db")
    with pipeline.atomic_database(tmp_path / "kb.db") as db:
        pipeline.build(db, curate.load_curated())
    db = sqlite_utils.Database(tmp_path / "kb.db")
    trials = [r[0] for r in db.execute("select registry_id from trials")]
    rows = list(db.query("select * from registration_vs_publication"))
    assert trials and sorted(r["registry_id"] for r in rows) == sorted(trials)
    flags = [c for c in rows[0] if c.startswith("flag_") or c in ("published", "completion_over_12_months_ago")]
    assert len(flags) == 6
    assert all(r[c] in (0, 1) for r in rows for c in flags)
    assert db.execute("select count(*) from integrity_status").fetchone()[0] == db["papers"].count


def test_malformed_registry_facts_are_named_by_file_and_key():
    from harvest import curate, tag

    entries = [{**trial_entry("NCT00000051", completion_date="March 2019", completion_date_type="estimated",
                              results_posted="yes", primary_outcome_values=["pain"]), "_file": "t.yml"}]
    problems = curate.validate(entries, tag.VOCABULARY_VALUES)
    assert problems == [
        "t.yml: nct00000051: completion_date must be YYYY-MM or YYYY-MM-DD, not 'March 2019'",
        "t.yml: nct00000051: completion_date_type must be actual or anticipated, not 'estimated'",
        "t.yml: nct00000051: results_posted must be true or false",
        "t.yml: nct00000051: unknown primary_outcome_values value 'pain'",
    ]
    assert curate.validate([{**trial_entry("NCT00000052", completion_date="2019-03"), "_file": "t.yml"}],
                           tag.VOCABULARY_VALUES) == []
