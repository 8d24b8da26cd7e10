"""The weekly refresh, end to end: the scheduled workflow's harvest step, run as the workflow runs it
(its `run` command, read from .github/workflows/harvest.yml), against the fake PubMed,
ClinicalTrials.gov and Crossref, week after week:

- week 0: every service answers;
- week 1: Crossref is down: the PubMed stage is kept, exit status 3, the site still builds;
- week 2: Crossref is back and is asked about what it missed; ClinicalTrials.gov is down;
- week 3: everything answers, the missed registry update is fetched, and a new randomised trial
  of LDN in fibromyalgia appears in PubMed and is harvested (and, with the `flags` work merged,
  listed on the home page as not yet in the analysis);
- week 4: PubMed is down: the harvest fails, kb.db is unchanged and nothing is rebuilt.

The workflow's other harvest-job step, `make test`, is the test suite this test belongs to.
"""

import asyncio
import os
import shutil
import subprocess
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlite_utils
import yaml

import publish_db
from fake_eutils import FakeEutils, FakeRecord
from fake_registries import FakeCrossref, FakeCtgov, study, work

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "harvest.yml"
DEAD = "http://127.0.0.1:9/"  # discard port: connection refused
TODAY = datetime.now(timezone.utc).strftime("%Y/%m/%d")  # PubMed's entry date of this week's papers
TRIAL_ID = "NCT09200001"

PILOT = FakeRecord(pmid="39200001", doi="10.5555/refresh.pilot", edat="2024/02/01",
                   title="Low-dose naltrexone and sleep in fibromyalgia: an open-label pilot study",
                   abstract=[(None, f"Twenty adults with fibromyalgia took naltrexone 4.5 mg nightly for 8 weeks "
                                    f"({TRIAL_ID}). Sleep quality improved.")])
SERIES = FakeRecord(pmid="39200002", doi="10.5555/refresh.series", edat=TODAY,
                    title="Low-dose naltrexone in fibromyalgia: a case series of five women",
                    abstract=[(None, "Five women with fibromyalgia took naltrexone 3 mg daily; four reported less pain.")])
SERIES_FIX = "10.5555/refresh.series.fix"
NEW_RCT = FakeRecord(
    pmid="39200003", doi="10.5555/refresh.rct", edat=TODAY,
    title="Low-dose naltrexone versus placebo for fibromyalgia pain: a randomized, double-blind trial",
    publication_types=[("D016449", "Randomized Controlled Trial")],
    abstract=[("Methods", "Ninety adults with fibromyalgia were randomized to naltrexone 4.5 mg daily or placebo "
                          "for 12 weeks."),
              ("Results", "Pain intensity fell more with low-dose naltrexone than with placebo (p = 0.01).")])

SOURCES = """\
dois:
  - doi: "10.5555/refresh.pilot"
queries:
  - naltrexone AND fibromyalgia
keep:
  all_of:
    - [naltrexone]
    - [fibromyalgia]
"""
CURATED = f"""\
- key: refresh-pilot
  type: publication
  pmid: "{PILOT.pmid}"
  doi: {PILOT.doi}
  title: "{PILOT.title}"
  design: [open_label, pilot]
  registry_ids: [{TRIAL_ID}]
  related: [{{relation: reports_trial, key: refresh-trial}}]
  sources: [{{url: "https://example.org/refresh/pilot", checked: 2026-11-30}}]
- key: refresh-trial
  type: trial
  registry_id: {TRIAL_ID}
  title: An open-label pilot trial of low-dose naltrexone for sleep in fibromyalgia
  sources: [{{url: "https://example.org/refresh/trial", checked: 2026-11-30}}]
"""


def workflow_command():
    """The `run` of the workflow step `refresh`: what the scheduled job runs to harvest and build."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["harvest"]["steps"]
    (step,) = [step for step in steps if step.get("id") == "refresh"]
    return step["run"]


@pytest.fixture(scope="module")
def weeks(tmp_path_factory):
    """Runs the five weeks; yields {week: (completed process, copy of kb.db after it)}."""
    if not (ROOT / ".venv" / "bin" / "kb").exists() or subprocess.run(
            ["make", "-q", ".venv/.installed"], cwd=ROOT).returncode != 0:
        pytest.skip("the project's .venv is missing or older than pyproject.toml: run `make install` first")
    home = tmp_path_factory.mktemp("refresh")
    (home / "sources.yml").write_text(SOURCES)
    (home / "curated").mkdir()
    (home / "curated" / "refresh.yml").write_text(CURATED)
    db_path = home / "kb.db"
    command = workflow_command()
    results = {}
    with FakeEutils(records=[PILOT]) as eutils, FakeCtgov() as ctgov, FakeCrossref() as crossref:
        ctgov.add(study(TRIAL_ID, status="RECRUITING", last_update="2024-01-10"))
        crossref.add(work(PILOT.doi))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NCBI_", "KB_", "MAKE"))}
        env.update(DB=str(db_path), SOURCES=str(home / "sources.yml"), CURATED=str(home / "curated"),
                   KB_MAX_RETRY_TIME="0.5")
        up = {"KB_EUTILS_URL": eutils.base_url, "KB_CTGOV_URL": ctgov.base_url, "KB_CROSSREF_URL": crossref.base_url}

        def week(number, **down):
            for server in (ctgov, crossref):
                server.log.clear()
            urls = {**up, **{name: DEAD + ("entrez/eutils/" if name == "KB_EUTILS_URL" else "")
                             for name in down}}
            run = subprocess.run(["bash", "-e", "-c", command], cwd=ROOT, env={**env, **urls},
                                 capture_output=True, text=True, timeout=600)
            snapshot = home / f"week{number}" / "kb.db"  # served as the `kb` database
            snapshot.parent.mkdir()
            shutil.copyfile(db_path, snapshot)
            results[number] = run, snapshot, {"ctgov": list(ctgov.log), "crossref": list(crossref.log)}

        week(0)
        # Week 1: PubMed has a new case series, which Crossref knows a correction of; Crossref is down.
        eutils.add(SERIES)
        crossref.add(work(SERIES.doi, updated_by=[(SERIES_FIX, "correction")]))
        crossref.add(work(SERIES_FIX, title="Correction to a case series of low-dose naltrexone in fibromyalgia",
                          update_to=[(SERIES.doi, "correction")]))
        week(1, KB_CROSSREF_URL=True)
        # Week 2: the trial's registry record changes; ClinicalTrials.gov is down.
        ctgov.add(study(TRIAL_ID, status="COMPLETED", last_update=datetime.now(timezone.utc).strftime("%Y-%m-%d")))
        week(2, KB_CTGOV_URL=True)
        # Week 3: a new randomised trial of LDN in fibromyalgia is entered in PubMed.
        eutils.add(NEW_RCT)
        week(3)
        week(4, KB_EUTILS_URL=True)
    yield results


def rows(path, sql):
    return sqlite_utils.Database(path).execute(sql).fetchall()


def succeeded(run):
    assert run.returncode == 0, run.stdout + run.stderr
    assert "soundness checks passed" in run.stdout  # `make build` ran to the end
    return run


PARTIAL = "kb harvest: exit status 3 (harvested; something left unresolved, listed above); building"


def test_the_workflow_step_is_the_makefile_harvest():
    assert workflow_command().strip() == "make harvest"


def test_week_0_every_stage_lands(weeks):
    run, db, _ = weeks[0]
    succeeded(run)
    assert PARTIAL not in run.stderr
    assert "landed: PubMed records, registry records, notices" in run.stdout
    assert rows(db, "select status, stages_landed from harvest_runs") == [("ok", "pubmed, registries, notices")]


def test_week_1_crossref_down_keeps_the_pubmed_stage_exits_3_and_builds(weeks):
    run, db, _ = weeks[1]
    succeeded(run)
    assert "Crossref could not be reached; notices not refreshed for 2 papers (cannot reach" in run.stderr
    assert "Crossref could not be reached; notices not refreshed for 2 papers (the next harvest asks again)" \
        in run.stdout
    assert PARTIAL in run.stderr
    assert rows(db, f"select title from papers where pmid = '{SERIES.pmid}'") == [(SERIES.title,)]
    assert rows(db, f"select count(*) from search_texts where paper_id = '{SERIES.pmid}'") == [(1,)]  # rebuilt
    assert rows(db, "select count(*) from notices") == [(0,)]
    assert rows(db, "select item from missed_lookups where stage = 'notices' order by 1") == [
        (PILOT.doi,), (SERIES.doi,)]
    assert rows(db, "select status, stages_landed, stages_failed from harvest_runs where id = 2") == [
        ("partial", "pubmed, registries", "notices")]


def test_week_2_the_missed_notices_are_fetched_and_ctgov_down_is_kept_out(weeks):
    run, db, log = weeks[2]
    succeeded(run)
    assert "Crossref: asked again about 2 papers an earlier harvest missed" in run.stdout
    asked = {item.split(":", 1)[1] for _, params in log["crossref"] for item in params["filter"].split(",")}
    assert {PILOT.doi, SERIES.doi} <= asked
    assert rows(db, f"select status, corrected from integrity_status where paper_id = '{SERIES.pmid}'") == [
        ("corrected", 1)]
    assert "ClinicalTrials.gov could not be reached; registry records not refreshed for 1 trial" in run.stderr
    assert PARTIAL in run.stderr
    assert rows(db, "select overall_status from ctgov_studies") == [("recruiting",)]
    assert rows(db, "select stage, item from missed_lookups") == [("registries", TRIAL_ID)]


def test_week_3_the_missed_registry_update_and_a_new_trial_are_harvested(weeks):
    run, db, log = weeks[3]
    succeeded(run)
    assert PARTIAL not in run.stderr
    assert "ClinicalTrials.gov: asked again about 1 trial an earlier harvest missed" in run.stdout
    assert [params["filter.ids"] for _, params in log["ctgov"]] == [TRIAL_ID]
    assert rows(db, "select overall_status from ctgov_studies") == [("completed",)]
    assert rows(db, f"select title from papers where pmid = '{NEW_RCT.pmid}'") == [(NEW_RCT.title,)]
    assert rows(db, f"select kept from discoveries where pmid = '{NEW_RCT.pmid}'") == [(1,)]
    assert rows(db, "select count(*) from missed_lookups") == [(0,)]
    assert rows(db, "select status from harvest_runs order by id") == [("ok",), ("partial",), ("partial",), ("ok",)]


def test_week_4_pubmed_down_fails_and_leaves_kb_db_unchanged(weeks):
    run, db, log = weeks[4]
    assert run.returncode != 0
    assert "cannot reach http://127.0.0.1:9/entrez/eutils/" in run.stderr and "left unchanged" in run.stderr
    assert "soundness checks passed" not in run.stdout  # nothing is rebuilt
    assert db.read_bytes() == weeks[3][1].read_bytes()
    assert log == {"ctgov": [], "crossref": []}


class _Container(HTMLParser):
    """The text inside the element with a given id."""

    def __init__(self, element_id):
        super().__init__()
        self.element_id, self.depth, self.text = element_id, 0, None

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id:
            self.depth, self.text = 1, ""

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text += data


def test_week_3_the_new_trial_is_flagged_on_the_home_page(weeks):
    """Needs the `flags` work (issue 19 item 2): the home page's `not-yet-in-analysis` list."""
    _, db, _ = weeks[3]
    site = publish_db.make_datasette(db)
    response = asyncio.run(site.client.get("/"))
    assert response.status_code == 200
    container = _Container("not-yet-in-analysis")
    container.feed(response.text)
    assert container.text is not None, "the home page has no element with id not-yet-in-analysis"
    assert NEW_RCT.title in " ".join(container.text.split())
