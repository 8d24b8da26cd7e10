"""The shipped data as served: kb.db rebuilt from the committed files (kb build), then every page.

- No page shows curation-log text (the `curation_log` of curated entries).
- Every search example on the home page finds papers.
"""

import asyncio
import html
import re
import shutil
import urllib.parse

import pytest
from click.testing import CliRunner
from datasette.utils import tilde_encode

import publish_db as kb
from harvest import curate
from harvest.cli import cli

LOG_FIELDS = ("curation_log",)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "kb.db"
    shutil.copy(kb.ROOT / "kb.db", path)  # its stored PubMed XML, if any, is rebuilt too
    result = CliRunner().invoke(cli, ["build", "--db", str(path)])
    assert result.exit_code == 0, result.output
    return kb.make_datasette(path)


def get(site, path):
    response = asyncio.run(site.client.get(path))
    assert response.status_code == 200, (path, response.status_code)
    return response


def log_fragments():
    """Each sentence (30 characters or more) of every curation log in the curated files."""
    fragments = set()
    for entry in curate.load_curated():
        for field in LOG_FIELDS:
            for sentence in re.split(r"(?<=[.;:])\s+|\n", str(entry.get(field) or "")):
                if len(sentence.strip()) >= 30:
                    fragments.add(" ".join(sentence.split()))
    return fragments


def every_page(site):
    database = get(site, "/kb.json").json()
    paths = ["/", "/kb", "/-/dashboards/charts"]
    for table in database["tables"] + database["views"]:
        name = table["name"] if isinstance(table, dict) else table
        paths += [f"/kb/{name}?_size=max", f"/kb/{name}.json?_size=max&_shape=objects"]
    for query in kb.metadata()["databases"]["kb"]["queries"]:
        paths += [f"/kb/{query}?q=naltrexone", f"/kb/{query}.json?q=naltrexone&_shape=objects"]
    papers = get(site, "/kb/papers.json?_shape=arrays&_col=pmid&_size=max").json()["rows"]
    paths += [f"/kb/papers/{tilde_encode(row[0])}" for row in papers]
    trials = get(site, "/kb/trials.json?_shape=arrays&_col=registry_id&_size=max").json()["rows"]
    paths += [f"/kb/trials/{tilde_encode(row[0])}" for row in trials]
    return paths


def test_no_page_shows_curation_log_text(site):
    fragments = log_fragments()
    assert fragments, "the curated files should hold curation logs to check against"
    leaks = []
    for path in every_page(site):
        page = get(site, path).text
        if ".json" not in path:  # page titles are words, never SQL
            # the page's own title comes first (inline SVG plots have titles of their own)
            title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
            assert not re.search(r"\bselect\b.*\bfrom\b", title, re.I | re.S), (path, title)
        text = " ".join(html.unescape(page).split())
        leaks += [(path, fragment[:60]) for fragment in fragments if fragment in text]
    assert leaks == []


def test_every_home_page_search_example_finds_papers(site):
    home = get(site, "/").text
    examples = re.findall(r'href="/kb/search_papers\?q=([^"]+)"', home)
    assert len(examples) >= 3
    for example in examples:
        query = urllib.parse.unquote_plus(html.unescape(example))
        found = get(site, "/kb/search_papers.json?_shape=objects&q=" + urllib.parse.quote(query)).json()["rows"]
        assert found, f"home page example {query!r} finds nothing"


def test_paper_pages_cite_only_what_is_known(site):
    papers = get(site, "/kb/papers.json?_shape=objects&_col=journal_iso&_col=journal&_col=year&_size=max").json()["rows"]
    assert papers
    for paper in papers:
        page = get(site, f"/kb/papers/{tilde_encode(paper['pmid'])}").text
        [citation] = re.findall(r'<p class="kb-citation[^"]*">(.*?)</p>', page, re.S)
        assert "None" not in citation, paper["pmid"]
        if not (paper["journal"] or paper["journal_iso"] or paper["year"]):
            assert "Journal and year not yet verified" in citation


def test_registration_checks_have_a_row_per_registered_trial_in_words(site):
    registered = {e["registry_id"] for e in curate.load_curated() if e.get("type") == "trial"}
    rows = get(site, "/kb/registration_checks.json?_shape=objects").json()["rows"]
    assert {row["registry_id"] for row in rows} == registered
    flagged = get(site, "/kb/registration_vs_publication.json?_shape=objects").json()["rows"]
    raised = {row["registry_id"] for row in flagged if row["flag_enrollment_differs"]}
    assert {row["registry_id"] for row in rows if "enrolment differs" in (row["checks_raised"] or "")} == raised
    assert all(row["results_paper"] in ("yes", "no") for row in rows)
