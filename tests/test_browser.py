"""The published site in a real browser: headless Debian Chromium against `datasette serve`.

Run as a script to refresh the README screenshots:
    .venv/bin/python tests/test_browser.py kb.db docs
"""

import contextlib
import re
import shutil
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from datasette.utils import tilde_encode

# publish_db and harvest, also when run as a script
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

import publish_db as kb  # noqa: E402
from harvest.site import free_port, running  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@contextlib.contextmanager
def serving(db_path, workdir):
    """`datasette serve` as the Makefile runs it, with an inspect file; yields its base URL."""
    inspect_file = Path(workdir) / "inspect-data.json"
    kb.write_inspect_file(db_path, inspect_file)
    port = free_port()
    with running(kb.serve_command(db_path, inspect_file, port), port) as base:
        yield base


@contextlib.contextmanager
def browser_page(width=1280):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": 900})
        finally:
            browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("browser")
    db_path = workdir / "kb.db"
    kb.build(db_path).close()
    with serving(db_path, workdir) as base:
        yield base


@pytest.fixture()
def page():
    with browser_page() as page:
        yield page


def test_search_facet_paper_and_evidence_table(site, page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(site + "/")
    assert "LDN evidence base" in page.locator("h1").inner_text()
    assert "last harvested from PubMed on 2026-11-20" in page.locator(".kb-stats").inner_text()

    page.fill("#kb-search-input", "crossover")
    page.click("button:has-text('Search papers')")
    page.wait_for_url("**/kb/search_papers?q=crossover")
    assert page.locator("table.rows-and-columns mark").first.inner_text() == "crossover"

    page.goto(site + "/kb/paper_facets?_search=naltrexone")
    assert "5 rows where search matches" in page.locator("h3").first.inner_text()

    page.locator("#facet-design a", has_text="randomised controlled trial").first.click()
    page.wait_for_url("**design__arraycontains=rct**")
    table = page.locator("table.rows-and-columns").inner_text()
    assert "Low-dose naltrexone for fibromyalgia: a randomized crossover trial" in table
    assert "Naltrexone at low doses for chronic pain" not in table

    page.click("table.rows-and-columns >> text=99000001")
    page.wait_for_url("**/kb/papers/99000001")
    assert page.locator("h1.kb-title").inner_text() == "Low-dose naltrexone for fibromyalgia: a randomized crossover trial"
    assert page.locator("h1.kb-title i").inner_text() == "fibromyalgia"
    record = page.locator("article.kb-record").inner_text()
    for text in ("PubMed 99000001", "Full text in PMC", "Registry NCT00568555", "Methods. Thirty-one women",
                 "Corrected by", "Included in review", "“Pain was reduced by 28.8% on LDN”"):
        assert text in record

    page.goto(site + "/kb/clinical_evidence")
    evidence = page.locator("table.rows-and-columns").inner_text()
    assert "randomised controlled trial, crossover, double-blind, placebo-controlled" in evidence
    assert "4.5 mg/day" in evidence and "12 weeks" in evidence and "placebo" in evidence
    assert page.locator("h1").inner_text().startswith("Evidence table: clinical studies")

    page.goto(site + f"/kb/papers/{kb.HOSTILE}")
    assert page.locator("h1.kb-title sup").inner_text() == "markup"
    assert dialogs == []  # the <script> in the stored title never ran


@pytest.fixture(scope="module")
def shipped_site(tmp_path_factory):
    """The committed kb.db rebuilt from the committed curated files, served."""
    from click.testing import CliRunner

    from harvest.cli import cli

    workdir = tmp_path_factory.mktemp("shipped")
    db_path = workdir / "kb.db"
    shutil.copy(kb.ROOT / "kb.db", db_path)
    result = CliRunner().invoke(cli, ["build", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    with serving(db_path, workdir) as base:
        yield base, db_path


def raw_values():
    """Vocabulary values a reader should never see: those written with an underscore."""
    from harvest.labels import LABELS

    return {value for values in LABELS.values() for value in values if "_" in value}


def curation_log_fragments():
    from test_served_kb import log_fragments

    return log_fragments()


def test_pages_at_1280_fit_read_in_words_and_run_clean(shipped_site, page):
    base, db_path = shipped_site
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    (paper,) = sqlite3.connect(db_path).execute(
        "select pmid from evidence_table where evidence_from = 'curated' order by year desc limit 1").fetchone()
    pages = {
        "home": ("/", True),
        "evidence view": ("/kb/clinical_evidence", True),
        "paper page": (f"/kb/papers/{tilde_encode(paper)}", False),
        "corrections view": ("/kb/corrections_retractions_comments", False),
        "search log and PRISMA flow": ("/prisma", True),
        "search": ("/kb/search_papers?q=" + urllib.parse.quote("pain threshold"), False),
    }
    raw = raw_values()
    logs = curation_log_fragments()
    for name, (path, must_fit) in pages.items():
        page.goto(base + path)
        text = page.locator("body").inner_text()
        words = set(re.findall(r"[a-z]+(?:_[a-z]+)+", text))
        if must_fit:
            # the page, and any box that scrolls sideways inside it (Datasette's table wrapper)
            width = page.evaluate("""() => Math.max(document.documentElement.scrollWidth,
                ...[...document.querySelectorAll('.table-wrapper, table')].map(e => e.scrollWidth > e.clientWidth + 1 ? 9999 : e.getBoundingClientRect().right))""")
            assert width <= 1280, f"{name}: {width} px wide at 1280"
            assert not (words & raw), f"{name} shows raw values {sorted(words & raw)}"
        flat = " ".join(text.split())
        assert not [f for f in logs if f in flat], f"{name} shows curation-log text"
    assert page.locator("table.rows-and-columns mark").count() > 0  # the search highlights
    assert errors == []


def test_charts_render(site, page):
    messages = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.goto(site + "/-/dashboards/charts")
    for chart in ("publications-per-year", "doses-studied"):
        page.locator(f"#chart-{chart} canvas, #chart-{chart} svg").first.wait_for(timeout=15000)
    page.wait_for_timeout(500)
    assert [m for m in messages if m.startswith(("error", "warning"))] == []


def test_served_site_refuses_writes_and_stops_runaway_queries(site):
    """The serve command itself (not just the in-process app): POST refused, time limit on."""
    request = urllib.request.Request(f"{site}/kb/clinical_evidence", data=b"q=x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    started = time.monotonic()
    runaway = urllib.parse.urlencode({"sql": kb.RUNAWAY_SQL})
    with pytest.raises(urllib.error.HTTPError) as stopped:
        urllib.request.urlopen(f"{site}/kb.json?{runaway}", timeout=30)
    assert stopped.value.code == 400
    assert time.monotonic() - started < 10


def screenshots(db_path, out_dir):
    """The evidence table and a curated paper's page, as PNGs for the README."""
    out_dir = Path(out_dir)
    connection = sqlite3.connect(db_path)
    # the newest curated clinical study with an abstract shows every part of the page
    (key,) = connection.execute(
        """select e.pmid from evidence_table e join papers p on p.pmid = e.pmid
           order by e.evidence_from = 'curated' desc, p.abstract is not null desc, e.year desc limit 1"""
    ).fetchone()
    workdir = Path(db_path).resolve().parent / "build"
    workdir.mkdir(exist_ok=True)
    # at 1280 px, the width the evidence view is made to fit
    with serving(Path(db_path).resolve(), workdir) as base, browser_page(width=1280) as page:
        page.goto(base + "/kb/clinical_evidence")
        page.screenshot(path=str(out_dir / "evidence-table.png"))
        page.goto(base + f"/kb/papers/{tilde_encode(key)}")
        page.screenshot(path=str(out_dir / "paper-page.png"), full_page=True)


if __name__ == "__main__":
    screenshots(sys.argv[1], sys.argv[2])
