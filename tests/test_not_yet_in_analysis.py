"""New evidence flagged (issue 19, item 2), through the CLI: a randomised trial of LDN in
fibromyalgia that a harvest finds, and that no effects row covers, is "not yet in the analysis"
on the served home page (with the date it was found), in its Atom feed and on the curators'
"new evidence to review" page with its machine-read numbers; a curated effects row removes it."""

import asyncio
import re
import xml.etree.ElementTree as ET

import pytest
import sqlite_utils
from click.testing import CliRunner
from datasette.utils import tilde_encode

import publish_db as kb
from conftest import fixture_bytes
from fake_eutils import FakeEutils
from harvest.cli import cli

ATOM = "{http://www.w3.org/2005/Atom}"
NEW_TRIAL, PROTOCOL, POST_HOC, OTHER_PROTOCOL = "99100002", "99100001", "99100003", "99100004"
DOIS = ["10.5555/ldn-fm.2018.001", "10.5555/ldn-fm.2021.002", "10.5555/ldn-fm.2022.003", "10.5555/ldn-fm.2015.004"]
TITLE = "Low-dose naltrexone versus placebo for fibromyalgia: a randomised, double-blind trial"

COVERED = f"""
- key: lindqvist-2021
  type: publication
  pmid: "{NEW_TRIAL}"
  title: "{TITLE}"
  design: [rct, parallel, placebo_controlled, double_blind]
  sources: [{{url: "https://example.org/lindqvist-2021", checked: 2026-12-01}}]
  effects:
    - outcome: fiq
      timepoint_weeks: 12
      contrast: LDN 4.5 mg/day vs placebo
      instrument: FIQR 0-100, lower is better
      measure: md
      estimate: -2.9
      ci_low: -9.5
      ci_high: 3.7
      p_value: 0.38
      n_ldn: 40
      n_comparator: 40
      primary: true
      reported: between-group difference at week 12 with its 95% CI and p
      source: https://example.org/lindqvist-2021
      checked: 2026-12-01
"""


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def get(site, path):
    response = asyncio.run(site.client.get(path))
    assert response.status_code == 200, (path, response.status_code)
    return response


def section(page):
    """The home page's "not yet in the analysis" section."""
    found = re.search(r'<section class="kb-not-yet" id="not-yet-in-analysis">(.*?)</section>', page, re.S)
    assert found, "no not-yet-in-analysis section on the home page"
    return found.group(1)


@pytest.fixture
def harvested(tmp_path, monkeypatch):
    """`kb harvest` of four PubMed records (one RCT with results, two protocols, a post hoc
    analysis), then `kb build` from a curated folder that says nothing about them."""
    with FakeEutils() as eutils:
        eutils.add_xml(fixture_bytes("pubmed_harvested_trials.xml"))
        monkeypatch.setenv("KB_EUTILS_URL", eutils.base_url)
        (tmp_path / "dois.txt").write_text("\n".join(DOIS) + "\n")
        curated = tmp_path / "curated"
        curated.mkdir()
        db_path = tmp_path / "kb.db"
        run("harvest", "--db", db_path, "--dois", tmp_path / "dois.txt", "--quiet")
        run("build", "--db", db_path, "--curated", curated)
        yield db_path, curated


def test_a_new_trial_is_flagged_on_the_home_page_and_in_the_feed_until_curated(harvested):
    db_path, curated = harvested
    found = sqlite_utils.Database(db_path).execute(
        "select substr(first_seen, 1, 10) from papers where pmid = ?", [NEW_TRIAL]).fetchone()[0]
    site = kb.make_datasette(db_path)

    listed = section(get(site, "/").text)
    assert f'href="/kb/papers/{NEW_TRIAL}"' in listed
    assert f"found {found}" in listed
    assert "1 randomised trial of\n    low-dose naltrexone in fibromyalgia with results is" in listed
    for other in (PROTOCOL, POST_HOC, OTHER_PROTOCOL):  # protocols and a post hoc analysis are not trials' results
        assert f"/kb/papers/{other}" not in listed

    feed = ET.fromstring(get(site, "/kb/not_yet_in_analysis_feed.atom").content)
    entries = list(feed.iter(f"{ATOM}entry"))
    assert [e.findtext(f"{ATOM}title") for e in entries] == [f"Not yet in the analysis: {TITLE}"]
    assert entries[0].findtext(f"{ATOM}updated").startswith(found)

    review = get(site, "/kb/new_evidence_to_review.json?_shape=objects").json()["rows"]
    assert {r["study"] for r in review} == {NEW_TRIAL}
    # The fixture's results: FIQR 48.1 (SD 14.2) vs 51.0 (SD 15.3), MD -2.9 (-9.5 to 3.7), p = 0.38.
    assert [(r["outcome"], r["measure"], r["machine_read_numbers"]) for r in review if r["measure"] == "md"] == [
        ("fiq", "md", "-2.9 (95% CI -9.5 to 3.7), p = 0.38; LDN: mean 48.1 (SD 14.2); "
                      "comparator: mean 51.0 (SD 15.3)")]
    assert [r["machine_read_numbers"] for r in review if r["measure"] is None] == ["LDN: n 40; comparator: n 40"]
    review_page = get(site, "/kb/new_evidence_to_review").text
    assert 'href="/add-evidence"' in review_page
    assert "effects:" in get(site, "/add-evidence").text

    (curated / "covered.yml").write_text(COVERED)
    run("build", "--db", db_path, "--curated", curated)
    site = kb.make_datasette(db_path)  # kb.db is served immutable: a new server for the new file
    listed = section(get(site, "/").text)
    assert f"/kb/papers/{NEW_TRIAL}" not in listed
    assert "has its results in the analysis above" in listed
    feed = ET.fromstring(get(site, "/kb/not_yet_in_analysis_feed.atom").content)
    assert [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")] == [
        "No randomised trial of LDN is waiting to be added to the analysis"]
    assert get(site, "/kb/new_evidence_to_review.json?_shape=objects").json()["rows"] == []


def test_a_paper_of_a_trial_already_in_the_analysis_is_covered(harvested):
    db_path, curated = harvested
    # A curated effects row for the trial (via another paper) covers every results paper naming it.
    (curated / "trial.yml").write_text(COVERED.replace(f'pmid: "{NEW_TRIAL}"', 'doi: "10.5555/other.paper"')
                                       + "  registry_ids: [NCT09990011]\n")
    run("build", "--db", db_path, "--curated", curated)
    db = sqlite_utils.Database(db_path)
    assert db.execute("select count(*) from not_yet_in_analysis").fetchone()[0] == 0


def test_curated_trials_without_usable_numbers_are_said_apart_from_unchecked_ones():
    """In the committed kb.db, a trial a curator checked without entering effects (no usable numbers
    on public pages) is listed as checked, never as awaiting a curator."""
    db = sqlite_utils.Database(kb.ROOT / "kb.db")
    checked = [row[0] for row in db.execute("select paper_id from not_yet_in_analysis where curated")]
    assert checked  # e.g. a trial reported only as a conference abstract
    listed = section(get(kb.make_datasette(kb.ROOT / "kb.db"), "/").text)
    awaiting, _, after = listed.partition("checked by a curator")
    assert after
    for paper_id in checked:
        href = f"/kb/papers/{tilde_encode(paper_id)}"
        assert href in after and href not in awaiting, paper_id
