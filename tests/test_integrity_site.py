"""Integrity on the published site: the badge on paper pages and evidence rows, a paper's
registration-vs-publication checks, and the Atom feed of notices (tests/publish_db.py's kb.db)."""

import asyncio
import xml.etree.ElementTree as ET

import pytest
import sqlite_utils

import publish_db as kb

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("integrity") / "kb.db"
    kb.build(path).close()
    db = sqlite_utils.Database(path)
    # The RCT reports NCT00568555: registered on fatigue, published on pain.
    db["registry_facts"].insert({"registry_id": "NCT00568555", "completion_date": "2010-01",
                                 "primary_outcome_values": '["fatigue"]', "results_posted": 0})
    db["published_outcomes"].insert({"paper_id": kb.RCT, "key": "rct", "primary_outcome_values": '["pain_intensity"]'})
    db.close()
    return kb.make_datasette(path)


def fetch(site, path):
    response = asyncio.run(site.client.get(path))
    assert response.status_code == 200, response.text
    return response


def test_a_corrected_paper_shows_its_badge_and_notice(site):
    page = fetch(site, f"/kb/papers/{kb.RCT}").text
    assert '<span class="kb-badge kb-badge-corrected">corrected</span>' in page
    assert "(found in PubMed and a curator&#39;s check of the public pages)" in page
    reanalysed = fetch(site, f"/kb/papers/{kb.REVIEW}").text
    assert '<span class="kb-badge kb-badge-re-analysed">re-analysed</span>' in reanalysed
    clean = fetch(site, f"/kb/papers/{kb.OLD}").text
    assert "kb-badge" not in clean


def test_evidence_rows_carry_the_badge(site):
    page = fetch(site, "/kb/clinical_evidence").text
    assert page.count('<span class="kb-badge kb-badge-corrected">corrected</span>') == 1


def test_a_paper_page_shows_its_trial_registration_checks(site):
    page = fetch(site, f"/kb/papers/{kb.RCT}").text
    assert "Published as registered?" in page
    assert "the registered primary outcome is not the published primary outcome" in page
    assert "Results posted on the registry</dt><dd>no" in page


def test_notices_feed_as_atom(site):
    feed = ET.fromstring(fetch(site, "/kb/new_notices_feed.atom").content)
    titles = [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")]
    assert sorted(title.split(":")[0] for title in titles) == ["corrected", "re-analysed"]
