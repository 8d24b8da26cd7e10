"""Integrity flags for trials nobody curated (issue 17, item 4): publication roles from PubMed
publication types, titles and tags, so a protocol or a secondary analysis is never a trial's
results paper; the published primary outcome and randomised n read from the results paper; and
`registration_vs_publication` flags that say where each fact came from."""

import json
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from conftest import fixture_bytes, rebuilt_committed_kb
from fake_eutils import FakeEutils
from fake_registries import study
from harvest import primary_outcome, store
from harvest.cli import cli

RESULTS, PROTOCOL, POST_HOC, PROTOCOL_ONLY = "99100002", "99100001", "99100003", "99100004"
TRIAL, UNPUBLISHED_TRIAL = "NCT09990011", "NCT09990012"
DOIS = ["10.5555/ldn-fm.2018.001", "10.5555/ldn-fm.2021.002", "10.5555/ldn-fm.2022.003", "10.5555/ldn-fm.2015.004"]
PAIN = "Average pain intensity on a 0-10 numeric rating scale"


# ------------------------------------------------------------------ publication roles


def role_db(path):
    db = sqlite_utils.Database(path)
    store.ensure_db_shape(db)
    return db


def add(db, key, title, designs=(), types=()):
    store.save_paper(db, {"pmid": key, "title": title, "year": 2020, "authors": [],
                          "publication_types": [{"name": t} for t in types]})
    store.save_tags(db, key, [{"kind": "design", "value": d} for d in designs], "auto")


def roles(db):
    return dict(db.execute("select paper_id, publication_role from paper_facets").fetchall())


def test_publication_types_and_titles_give_the_role_when_the_tags_miss_it(tmp_path):
    db = role_db(tmp_path / "kb.db")
    add(db, "1", "Naltrexone in fibromyalgia", ["rct"], ["Journal Article", "Retraction of Publication"])
    add(db, "2", "Naltrexone in fibromyalgia", ["rct"], ["Expression of Concern"])
    add(db, "3", "Low-dose naltrexone and fatigue: a secondary analysis of a randomised trial", ["rct"])
    add(db, "4", "Pain outcomes of the LDN trial: post-hoc analyses", ["rct", "parallel"])
    add(db, "5", "Low-dose naltrexone for fibromyalgia: protocol for a crossover trial", ["rct", "crossover"])
    add(db, "6", "Comment on low-dose naltrexone in fibromyalgia", [], ["Journal Article"])
    add(db, "7", "Opioid antagonists for chronic pain: a systematic review and meta-analysis", ["rct"])
    add(db, "8", "Low-dose naltrexone versus placebo in fibromyalgia", ["rct", "double_blind"],
        ["Randomized Controlled Trial"])
    add(db, "9", "Naltrexone in fibromyalgia", [], ["Journal Article"])
    add(db, "10", "Naltrexone in fibromyalgia", ["rct"], ["Clinical Trial Protocol"])
    assert roles(db) == {
        "1": "erratum", "2": "erratum", "3": "secondary_analysis", "4": "secondary_analysis", "5": "protocol",
        "6": "letter", "7": "meta_analysis", "8": "results", "9": "unknown", "10": "protocol",
    }
    facets = dict(db.execute("select paper_id, study_type from paper_facets").fetchall())
    assert (facets["3"], facets["5"], facets["7"], facets["8"]) == (
        "secondary analysis", "protocol", "meta-analysis", "randomised trial")


def test_a_curated_design_decides_the_role_alone(tmp_path):
    db = role_db(tmp_path / "kb.db")
    add(db, "11", "Low-dose naltrexone for fibromyalgia: a post hoc analysis", ["secondary_analysis"],
        ["Clinical Trial Protocol"])
    db["curated_entries"].insert({"key": "k", "paper_id": "11", "type": "publication", "design": '["rct"]'})
    assert roles(db)["11"] == "results"


# ------------------------------------------------------------------ a trial from records alone


@pytest.fixture
def harvested(registries, tmp_path, monkeypatch):
    """kb.db harvested by `kb harvest` from four PubMed records (tests/fixtures) and two
    ClinicalTrials.gov records, with no curated entry about either trial."""
    ctgov_server, _ = registries
    # Trial A: completed 2020, 120 enrolled, registered on pain; its results paper reports 80
    # randomised and FIQR as primary. Trial B: completed 2016, only a protocol published.
    ctgov_server.add(study(TRIAL, enrollment=(120, "ACTUAL"), primary_outcomes=(PAIN,),
                           primary_completion=("2020-06", "ACTUAL"), completion=("2020-08", "ACTUAL")))
    ctgov_server.add(study(UNPUBLISHED_TRIAL, enrollment=(60, "ACTUAL"), primary_outcomes=(PAIN,),
                           primary_completion=("2016-01", "ACTUAL"), completion=("2016-03", "ACTUAL")))
    with FakeEutils() as eutils:
        eutils.add_xml(fixture_bytes("pubmed_harvested_trials.xml"))
        monkeypatch.setenv("KB_EUTILS_URL", eutils.base_url)
        dois = tmp_path / "dois.txt"
        dois.write_text("\n".join(DOIS) + "\n")
        db_path = tmp_path / "kb.db"
        result = CliRunner().invoke(cli, ["harvest", "--db", str(db_path), "--dois", str(dois), "--quiet"])
        assert result.exit_code == 0, result.output
        yield sqlite_utils.Database(db_path)


def test_a_trial_built_from_registry_and_pubmed_records_alone_gets_its_three_flags(harvested):
    db = harvested
    assert db["curated_entries"].count == 0 and db["trials"].count == 0
    rows = {r["registry_id"]: r for r in db.query("select * from registration_vs_publication")}
    trial = rows[TRIAL]
    # The protocol and the post hoc analysis name the trial, but only the results paper reports it.
    assert json.loads(trial["results_papers"]) == [RESULTS]
    assert sorted((p["paper_id"], p["role"]) for p in json.loads(trial["other_papers"])) == [
        (PROTOCOL, "protocol"), (POST_HOC, "secondary_analysis")]
    assert trial["results_papers_from"] == "machine-read"
    assert trial["registry_facts_from"] == "ClinicalTrials.gov record updated 2020-01-15"
    # Randomised n and primary outcome, as the abstract gives them: 80 women; the FIQR.
    assert (trial["published_enrollment"], trial["published_enrollment_from"]) == (80, "machine-read")
    assert json.loads(trial["published_primary_outcome_values"]) == ["fiq"]
    assert trial["published_primary_outcome_from"] == "machine-read"
    assert "primary outcome was the revised Fibromyalgia Impact Questionnaire" in trial["published_primary_outcome"]
    # 80 randomised against 120 enrolled (more than 10% apart); FIQR published, pain registered.
    assert (trial["flag_enrollment_differs"], trial["flag_outcome_switch"], trial["flag_unpublished"]) == (1, 1, 0)
    # Trial B finished in 2016 and has only a protocol: unpublished.
    lone = rows[UNPUBLISHED_TRIAL]
    assert (lone["flag_unpublished"], lone["published"], lone["results_papers"]) == (1, 0, "[]")
    assert json.loads(lone["other_papers"]) == [{"paper_id": PROTOCOL_ONLY, "role": "protocol"}]
    assert lone["results_papers_from"] is None


def test_the_checks_page_says_where_each_raised_flag_came_from(harvested, tmp_path):
    import asyncio

    import publish_db as kb

    site = kb.make_datasette(Path(harvested.conn.execute("pragma database_list").fetchone()[2]))
    rows = asyncio.run(site.client.get("/kb/registration_checks.json?_shape=objects")).json()["rows"]
    raised = {r["registry_id"]: r["checks_raised"] for r in rows}
    assert raised[TRIAL] == (
        "enrolment differs by more than 10% (published number machine-read); "
        "published primary outcome differs from the registered one (published outcome machine-read)")
    assert raised[UNPUBLISHED_TRIAL] == (
        "unpublished over 12 months after completion (registry: ClinicalTrials.gov record updated "
        "2020-01-15; no results paper among the papers naming it)")
    page = asyncio.run(site.client.get(f"/kb/papers/{RESULTS}")).text
    assert "published: 80 (machine-read from the abstract, not yet checked by a curator)" in page


def test_primary_outcome_is_read_from_the_sentence_naming_it_not_from_secondary_ones():
    from harvest import abstracts

    sentences = abstracts.sentences([
        {"label": "METHODS", "text": "Women were randomised to naltrexone or placebo. The primary end point was "
                                     "fatigue on the FACIT scale; secondary end points included pain and sleep."},
        {"label": "RESULTS", "text": "Pain did not differ (p = 0.4)."},
    ])
    values, sentence = primary_outcome.read(sentences)
    assert values == ["fatigue"]
    assert sentence.startswith("The primary end point was fatigue")
    assert primary_outcome.read(abstracts.sentences([{"label": "RESULTS", "text": "Pain fell (p = 0.01)."}])) is None


# ------------------------------------------------------------------ the committed kb.db


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    return rebuilt_committed_kb(tmp_path_factory.mktemp("committed") / "kb.db")


def test_final_s_results_papers_are_its_results_paper_alone(committed):
    final = committed.execute(
        "select results_papers, other_papers, published_primary_outcome_values, results_papers_from "
        "from registration_vs_publication where registry_id = 'NCT04270877'").fetchone()
    # 38258677 is the 2024 results paper; 34781989 the protocol, 40214857 the exploratory analysis.
    assert json.loads(final[0]) == ["38258677"]
    assert sorted(p["paper_id"] for p in json.loads(final[1])) == ["34781989", "40214857"]
    assert json.loads(final[2]) == ["pain_intensity"]
    assert final[3] == "curated"
    papers = {r[0] for r in committed.execute(
        "select paper_id from trial_results_papers where registry_id = 'NCT04270877'")}
    assert papers == {"38258677"}
