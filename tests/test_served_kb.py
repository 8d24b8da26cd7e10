"""The shipped data as served: kb.db rebuilt from the committed files (kb build), then every page.

- No page shows curation-log text (the `curation_log` of curated entries).
- Every page a reader reaches from the home page, and every row page of the evidence tables,
  reads as words: no snake_case identifier, JSON literal, number with 5 or more decimals or SQL.
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
from page_text import raw_data, visible_text

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
    papers = get(site, "/kb/papers.json?_shape=arrays&_col=title&_size=max").json()["rows"]  # key first
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


# The evidence's row pages, each crawled whole (a table another issue adds is crawled once it exists).
ROW_TABLES = ["pooled_estimates", "effects", "summary_of_findings", "risk_of_bias", "certainty", "meta_analyses",
              "papers"]
EXPORTS = (".json", ".csv", ".atom", ".ris", ".bib", ".db")


def row_pages(site):
    tables = {t["name"] for t in get(site, "/kb.json").json()["tables"]}
    paths = []
    for table in ROW_TABLES:
        if table in tables:
            data = get(site, f"/kb/{table}.json?_size=max&_shape=objects").json()
            paths += [f"/kb/{table}/" + ",".join(tilde_encode(str(row[pk])) for pk in data["primary_keys"])
                      for row in data["rows"]]
    return paths


def followed(link, on_home_page):
    """The site's own pages a reader can click to: not exports, Datasette's internals or static
    files; links with a query (sorting, facets, filters, SQL) only from the home page itself and
    searches (`?q=`)."""
    path, _, query = link.partition("#")[0].partition("?")
    if not path.startswith("/") or path.startswith(("//", "/static/")) or path.rsplit("/", 1)[-1].endswith(EXPORTS):
        return None
    if path.startswith("/-/") and not path.startswith("/-/dashboards"):
        return None
    if query and not on_home_page and set(urllib.parse.parse_qs(query)) - {"q"}:
        return None
    return path + ("?" + query if query else "")


def crawl(site, start):
    """{path: raw data seen on it} for every page reachable from `start` (a list of paths)."""
    queue, seen = list(start), {}
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        response = get(site, path)
        text, links = visible_text(response.text)
        seen[path] = raw_data(text)
        queue += [f for f in (followed(link, path == "/") for link in links) if f and f not in seen]
    return seen


def test_visible_text_is_what_a_reader_sees():
    text, links = visible_text(
        '<head><title>t_t</title><style>a_b {}</style></head><p>Shown <a href="/x">link</a></p>'
        '<details><summary>Open me</summary><pre>select a from b</pre></details>'
        '<select><option>col_a</option><option selected>chosen</option></select>'
        '<p hidden>hidden_one</p><a href="https://e.org/a_b">https://e.org/a_b</a><script>x_y()</script>')
    assert text == "Shown link Open me chosen"
    assert links == ["/x", "https://e.org/a_b"]


def test_raw_data_is_recognised_and_words_are_not():
    assert set(raw_data(
        'design placebo_controlled; ["rct"]; [{"effect_id": 1}]; -0.15358760194884488; '
        "select pmid, year from papers; CREATE VIEW x; seen on https://example.org/page")) == {
        "snake_case identifier", "JSON literal", "number with 5 or more decimals", "SQL", "web address written out"}
    assert raw_data("SMD -0.15 (95% CI -0.56 to 0.25), p 0.04; I² 70%; DOI 10.1111/j.1526-4637.2009.00613.x; "
                    "selection of the reported result; a [sic] quote; doi:10.3344/kjp.25275") == {}


def test_every_page_a_reader_reaches_reads_in_words(site):
    rows = row_pages(site)
    assert {path.split("/")[2] for path in rows} >= {"pooled_estimates", "effects", "risk_of_bias", "certainty",
                                                      "meta_analyses", "papers"}
    pages = crawl(site, ["/"] + rows)
    # the crawl reached the canned queries, the table pages and their rows, not only the start
    for reached in ("/kb", "/kb/clinical_evidence", "/kb/registration_checks", "/kb/integrity", "/kb/effects",
                    "/kb/corrections_retractions_comments", "/kb/trials/NCT04270877"):
        assert reached in pages, reached
    assert len(pages) > len(rows) + 100
    assert {path: found for path, found in pages.items() if found} == {}


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
        page = get(site, f"/kb/papers/{tilde_encode(paper['paper_id'])}").text
        [citation] = re.findall(r'<p class="kb-citation[^"]*">(.*?)</p>', page, re.S)
        assert "None" not in citation, paper["paper_id"]
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
