"""`kb harvest` in stages, through the CLI: PubMed records, registry records and Crossref notices
each land in kb.db on their own; a secondary service that cannot be reached costs only its own
stage (exit status 3), and the next harvest asks it about exactly what it missed."""

import pytest
import sqlite_utils
from click.testing import CliRunner

from fake_eutils import FakeEutils, FakeRecord
from fake_registries import study, work
from harvest.cli import cli

DEAD = "http://127.0.0.1:9/"  # discard port: connection refused
TRIAL_ID = "NCT09100001"
PILOT = FakeRecord(pmid="39100001", doi="10.5555/stages.pilot", edat="2024/02/01",
                   title="Low-dose naltrexone and sleep in fibromyalgia: an open-label pilot study",
                   abstract=[(None, f"Twenty adults with fibromyalgia took naltrexone 4.5 mg nightly for 8 weeks "
                                    f"({TRIAL_ID}). Sleep quality improved.")])
SERIES = FakeRecord(pmid="39100002", doi="10.5555/stages.series", edat="2024/03/01",
                    title="Low-dose naltrexone in fibromyalgia: a case series of five women",
                    abstract=[(None, "Five women with fibromyalgia took naltrexone 3 mg daily; four reported less pain.")])
SERIES_FIX = "10.5555/stages.series.fix"


@pytest.fixture
def services(registries, tmp_path, monkeypatch):
    """PubMed knows two papers, ClinicalTrials.gov the pilot's trial, Crossref both works and a
    correction of the case series. Retries are cut short (KB_MAX_RETRY_TIME), so a service that
    is down is given up on at once."""
    ctgov_server, crossref_server = registries
    monkeypatch.setenv("KB_MAX_RETRY_TIME", "0.5")
    with FakeEutils(records=[PILOT, SERIES]) as eutils:
        monkeypatch.setenv("KB_EUTILS_URL", eutils.base_url)
        ctgov_server.add(study(TRIAL_ID, status="RECRUITING", last_update="2024-01-10"))
        crossref_server.add(work(PILOT.doi))
        crossref_server.add(work(SERIES.doi, updated_by=[(SERIES_FIX, "correction")]))
        crossref_server.add(work(SERIES_FIX, title="Correction to a case series of low-dose naltrexone in fibromyalgia",
                                 update_to=[(SERIES.doi, "correction")]))
        (tmp_path / "dois.txt").write_text(f"{PILOT.doi}\n{SERIES.doi}\n")
        yield eutils, ctgov_server, crossref_server


def harvest(tmp_path, dois="dois.txt"):
    return CliRunner().invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--dois", str(tmp_path / dois),
                                    "--quiet"])


def rows(db_path, sql):
    return sqlite_utils.Database(db_path).execute(sql).fetchall()


def asked_ctgov(server):
    return [ids for path, params in server.log for ids in [params.get("filter.ids")] if ids]


def asked_crossref(server):
    """Every DOI named in a Crossref filter (doi: or updates:)."""
    return {item.split(":", 1)[1] for _, params in server.log for item in params.get("filter", "").split(",")
            if ":" in item}


def harvest_without(tmp_path, monkeypatch, variable, words):
    """A harvest with one service down: exit status 3, the service in words on stderr and in the summary."""
    monkeypatch.setenv(variable, DEAD)
    result = harvest(tmp_path)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(words + " (cannot reach http://127.0.0.1:9/")
    assert f"{words} (the next harvest asks again)" in result.stdout
    return result


def test_crossref_down_keeps_the_pubmed_stage_exits_3_and_the_next_run_catches_up(services, tmp_path, monkeypatch):
    _, _, crossref_server = services
    words = "Crossref could not be reached; notices not refreshed for 2 papers"
    result = harvest_without(tmp_path, monkeypatch, "KB_CROSSREF_URL", words)
    assert "cannot reach http://127.0.0.1:9/works?" in result.stderr
    assert "landed: PubMed records, registry records; not landed: notices" in result.stdout
    db_path = tmp_path / "kb.db"
    assert rows(db_path, "select paper_id from papers order by 1") == [("39100001",), ("39100002",)]
    assert rows(db_path, "select overall_status from ctgov_studies") == [("recruiting",)]
    assert rows(db_path, "select count(*) from crossref_works") == [(0,)]
    assert rows(db_path, "select status, stages_landed, stages_failed from harvest_runs") == [
        ("partial", "pubmed, registries", "notices")]
    (errors,) = rows(db_path, "select stage_errors from harvest_runs")[0]
    assert errors.startswith(f"notices: {words} (cannot reach http://127.0.0.1:9/works?")
    assert rows(db_path, "select stage, item, service from missed_lookups order by item") == [
        ("notices", PILOT.doi, "Crossref"), ("notices", SERIES.doi, "Crossref")]

    # Week 2: Crossref answers; it is asked about the two papers it missed, and the correction lands.
    monkeypatch.setenv("KB_CROSSREF_URL", crossref_server.base_url)
    result = harvest(tmp_path)
    assert result.exit_code == 0, result.output
    assert "Crossref: asked again about 2 papers an earlier harvest missed" in result.stdout
    assert {PILOT.doi, SERIES.doi} <= asked_crossref(crossref_server)
    assert rows(db_path, "select status, corrected from integrity_status where paper_id = '39100002'") == [("corrected", 1)]
    assert rows(db_path, "select count(*) from missed_lookups") == [(0,)]
    assert rows(db_path, "select status, stages_landed, stages_failed from harvest_runs where id = 2") == [
        ("ok", "pubmed, registries, notices", None)]


def test_ctgov_down_keeps_the_pubmed_stage_exits_3_and_the_next_run_catches_up(services, tmp_path, monkeypatch):
    _, ctgov_server, _ = services
    words = "ClinicalTrials.gov could not be reached; registry records not refreshed for 1 trial"
    result = harvest_without(tmp_path, monkeypatch, "KB_CTGOV_URL", words)
    assert "cannot reach http://127.0.0.1:9/studies?" in result.stderr
    assert "landed: PubMed records, notices; not landed: registry records" in result.stdout
    db_path = tmp_path / "kb.db"
    assert rows(db_path, "select count(*) from papers where paper_id glob '391*'") == [(2,)]
    assert rows(db_path, "select count(*) from ctgov_records") == [(0,)]
    assert rows(db_path, "select status, corrected from integrity_status where paper_id = '39100002'") == [("corrected", 1)]
    assert rows(db_path, "select stage, item from missed_lookups") == [("registries", TRIAL_ID)]
    assert rows(db_path, "select stages_failed from harvest_runs") == [("registries",)]

    monkeypatch.setenv("KB_CTGOV_URL", ctgov_server.base_url)
    result = harvest(tmp_path)
    assert result.exit_code == 0, result.output
    assert "ClinicalTrials.gov: asked again about 1 trial an earlier harvest missed" in result.stdout
    assert asked_ctgov(ctgov_server) == [TRIAL_ID]
    assert rows(db_path, "select overall_status from ctgov_studies") == [("recruiting",)]
    assert rows(db_path, "select count(*) from missed_lookups") == [(0,)]


def test_a_missed_registry_update_is_fetched_from_the_last_landed_fetch(services, tmp_path, monkeypatch):
    _, ctgov_server, _ = services
    assert harvest(tmp_path).exit_code == 0
    db_path = tmp_path / "kb.db"
    (landed_fetch,) = rows(db_path, "select value from harvest_state where name = 'ctgov_last_fetch'")[0]
    # The registry record changes while ClinicalTrials.gov is down for us.
    ctgov_server.add(study(TRIAL_ID, status="COMPLETED", last_update=landed_fetch))
    monkeypatch.setenv("KB_CTGOV_URL", DEAD)
    assert harvest(tmp_path).exit_code == 3
    assert rows(db_path, "select overall_status from ctgov_studies") == [("recruiting",)]
    monkeypatch.setenv("KB_CTGOV_URL", ctgov_server.base_url)
    ctgov_server.log.clear()
    assert harvest(tmp_path).exit_code == 0
    (asked,) = [params for _, params in ctgov_server.log]
    assert asked["filter.ids"] == TRIAL_ID
    assert asked["filter.advanced"] == f"AREA[LastUpdatePostDate]RANGE[{landed_fetch},MAX]"
    assert rows(db_path, "select overall_status from ctgov_studies") == [("completed",)]


def test_a_service_that_answers_with_an_error_is_named_and_its_stage_kept_out(services, tmp_path):
    _, _, crossref_server = services
    crossref_server.inject("404", times=5)
    result = harvest(tmp_path)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("Crossref answered with an error; notices not refreshed for 2 papers (HTTP 404")
    assert rows(tmp_path / "kb.db", "select count(*) from papers") == [(2,)]


def test_pubmed_down_fails_the_harvest_and_changes_nothing(services, tmp_path, monkeypatch):
    eutils, ctgov_server, crossref_server = services
    (tmp_path / "first.txt").write_text(f"{PILOT.doi}\n")
    assert harvest(tmp_path, "first.txt").exit_code == 0
    db_path = tmp_path / "kb.db"
    before = db_path.read_bytes()
    ctgov_server.log.clear()
    crossref_server.log.clear()
    monkeypatch.setenv("KB_EUTILS_URL", DEAD.rstrip("/") + "/entrez/eutils/")
    result = harvest(tmp_path)  # the case series is new: PubMed must be asked
    assert result.exit_code == 1, result.output
    assert "cannot reach http://127.0.0.1:9/entrez/eutils/esearch.fcgi" in result.stderr
    assert result.stderr.rstrip().endswith(f"({db_path} left unchanged)")
    assert db_path.read_bytes() == before
    assert ctgov_server.log == [] and crossref_server.log == []


# Per stage: what to interrupt, on which call (after the stage has written something), what has
# landed, and the row counts kb.db must then hold (the first harvest left 1 paper, 1 registry
# record, 1 Crossref work; the interrupted one brings 1 paper, 2 registry records, 2 works).
INTERRUPTIONS = {
    "pubmed": ("harvest.store.save_paper", 1, [],
               {"papers": 1, "raw_records": 1, "ctgov_records": 1, "crossref_works": 1}),
    "registries": ("harvest.integrity.save_study", 2, ["PubMed records"],
                   {"papers": 2, "raw_records": 2, "ctgov_records": 1, "crossref_works": 1}),
    "notices": ("harvest.integrity.save_work", 3, ["PubMed records", "registry records"],
                {"papers": 2, "raw_records": 2, "ctgov_records": 3, "crossref_works": 1}),
}


@pytest.mark.parametrize("stage", INTERRUPTIONS)
def test_ctrl_c_in_a_stage_leaves_the_last_landed_stage_and_no_half_stage(services, tmp_path, monkeypatch, stage):
    eutils, ctgov_server, _ = services
    target, on_call, landed, expected = INTERRUPTIONS[stage]
    (tmp_path / "first.txt").write_text(f"{PILOT.doi}\n")
    assert harvest(tmp_path, "first.txt").exit_code == 0
    # The case series names two more trials, so the registry stage has two records to save.
    eutils.add(FakeRecord(**{**SERIES.__dict__, "abstract": [(None, "Two trials (NCT09100002, NCT09100003) "
                                                                     "gave naltrexone 3 mg daily in fibromyalgia.")]}))
    for registry_id in ("NCT09100002", "NCT09100003"):
        ctgov_server.add(study(registry_id))
    db_path = tmp_path / "kb.db"
    module, name = target.rsplit(".", 1)
    original = getattr(__import__(module, fromlist=[name]), name)
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == on_call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, interrupting)
    result = harvest(tmp_path)
    assert result.exit_code == 1, result.output
    said = " and ".join(landed) + f" landed in {db_path}; the stage under way did not" if landed \
        else f"{db_path} left unchanged"
    assert result.stderr.strip() == f"Error: interrupted; {said}"
    assert {t: rows(db_path, f"select count(*) from {t}")[0][0] for t in expected} == expected
    assert rows(db_path, "select count(*) from harvest_runs") == [(1,)]  # an interrupted run is not recorded
    assert not list(tmp_path.glob(".kb.db.*"))
    # The next run finishes what was interrupted.
    monkeypatch.setattr(target, original)
    assert harvest(tmp_path).exit_code == 0
    assert [rows(db_path, f"select count(*) from {t}")[0][0] for t in ("ctgov_records", "crossref_works")] == [3, 3]
