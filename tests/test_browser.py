"""The published site in a real browser: headless Debian Chromium against `datasette serve`.

Run as a script to refresh the README screenshots:
    .venv/bin/python tests/test_browser.py kb.db docs
"""

import contextlib
import json
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
from page_text import raw_data, visible_text  # noqa: E402

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
def browser_page(width=1280, height=900):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
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
    assert "LDN evidence base" in page.locator("h1").first.inner_text()
    assert "last harvested from PubMed on 2026-11-20" in page.locator(".kb-stats").inner_text()

    page.fill("#kb-search-input", "crossover")
    page.click("button:has-text('Search papers')")
    page.wait_for_url("**/kb/search_papers?q=crossover")
    assert page.locator("table.rows-and-columns mark").first.inner_text() == "crossover"

    page.goto(site + "/kb/paper_facets?_search=naltrexone")
    assert "5 rows matching “naltrexone”" in page.locator("h3").first.inner_text()

    page.locator("#facet-design a", has_text="randomised controlled trial").first.click()
    page.wait_for_url("**design__arraycontains=rct**")
    table = page.locator("table.rows-and-columns").inner_text()
    assert "Low-dose naltrexone for fibromyalgia: a randomized crossover trial" in table
    assert "Naltrexone at low doses for chronic pain" not in table

    page.click("table.rows-and-columns >> text=Younger 2013")
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


def curation_log_fragments():
    from test_served_kb import log_fragments

    return log_fragments()


def main_pages(db_path):
    """The pages a reader lands on: home, the canned queries, a paper, a pooled estimate and the
    rows it pooled, a risk-of-bias judgement, the search."""
    connection = sqlite3.connect(db_path)
    (paper,) = connection.execute(
        "select paper_id from evidence_table where evidence_from = 'curated' order by year desc limit 1").fetchone()
    outcome, method, pooled = connection.execute(
        "select outcome, method, effect_ids from pooled_estimates order by k desc limit 1").fetchone()
    (key, domain) = connection.execute("select key, domain from risk_of_bias limit 1").fetchone()
    pages = {
        "home": "/",
        "evidence view": "/kb/clinical_evidence",
        "paper page": f"/kb/papers/{tilde_encode(paper)}",
        "corrections": "/kb/corrections_retractions_comments",
        "integrity": "/kb/integrity",
        "search log and PRISMA flow": "/prisma",
        "registration checks": "/kb/registration_checks",
        "search": "/kb/search_papers?q=" + urllib.parse.quote("pain threshold"),
        "pooled estimate": f"/kb/pooled_estimates/{tilde_encode(outcome)},{tilde_encode(method)}",
        "risk of bias": f"/kb/risk_of_bias/{tilde_encode(key)},{tilde_encode(domain)}",
        "all tables": "/kb",
    }
    pages.update({f"effects row {effect}": f"/kb/effects/{tilde_encode(effect)}" for effect in json.loads(pooled)})
    return pages


def width_at_1280(page):
    """The page's width, or 9999 when a box inside it scrolls sideways (Datasette's table wrapper)."""
    return page.evaluate("""() => Math.max(document.documentElement.scrollWidth,
        ...[...document.querySelectorAll('.table-wrapper, table')].map(e => e.scrollWidth > e.clientWidth + 1 ? 9999 : e.getBoundingClientRect().right))""")


def test_main_pages_at_1280_fit_read_in_words_and_run_clean(shipped_site, page):
    base, db_path = shipped_site
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    logs = curation_log_fragments()
    for name, path in main_pages(db_path).items():
        page.goto(base + path)
        assert width_at_1280(page) <= 1280, f"{name}: {width_at_1280(page)} px wide at 1280"
        text, _ = visible_text(page.content())
        assert raw_data(text) == {}, f"{name}: {raw_data(text)}"
        flat = " ".join(page.locator("body").inner_text().split())
        assert not [f for f in logs if f in flat], f"{name} shows curation-log text"
        if name == "search":
            assert page.locator("table.rows-and-columns mark").count() > 0  # the search highlights
    assert errors == []


def test_home_page_search_box_and_harvest_date_are_in_the_first_screen(shipped_site):
    base, _ = shipped_site
    with browser_page(width=1280, height=800) as page:
        page.goto(base + "/")
        box = page.locator("#kb-search-input").bounding_box()
        assert box["y"] + box["height"] <= 800, box
        stats = page.locator(".kb-stats")
        assert stats.bounding_box()["y"] + stats.bounding_box()["height"] <= 800
        assert re.search(r"last harvested from PubMed on \d{4}-\d{2}-\d{2}|not harvested from PubMed yet", stats.inner_text())
        # each line once: the licence is said in the footer only
        body = page.locator("body").inner_text()
        assert body.count("Data license:") == 1


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
    """The README's pictures of the site at 1280 px: the evidence table, a curated paper's page, our
    pooled estimate of pain and the first trial result it pooled."""
    out_dir = Path(out_dir)
    connection = sqlite3.connect(db_path)
    # the newest curated trial with results and an abstract shows every part of the page
    (key,) = connection.execute(
        """select e.paper_id from evidence_table e join papers p on p.paper_id = e.paper_id
           order by e.evidence_from = 'curated' desc, exists (select 1 from effects r where r.paper_id = e.paper_id) desc,
                    p.abstract is not null desc, e.year desc limit 1"""
    ).fetchone()
    outcome, method, pooled = connection.execute(
        "select outcome, method, effect_ids from pooled_estimates order by outcome = 'pain_intensity' desc, "
        "method = 'REML' desc limit 1").fetchone()
    workdir = Path(db_path).resolve().parent / "build"
    workdir.mkdir(exist_ok=True)
    with serving(Path(db_path).resolve(), workdir) as base, browser_page(width=1280) as page:
        page.goto(base + "/kb/clinical_evidence")
        page.screenshot(path=str(out_dir / "evidence-table.png"))
        for name, path in (
            ("paper-page", f"/kb/papers/{tilde_encode(key)}"),
            ("pooled-estimate", f"/kb/pooled_estimates/{tilde_encode(outcome)},{tilde_encode(method)}"),
            ("effects-row", f"/kb/effects/{tilde_encode(json.loads(pooled)[-1])}"),
        ):
            page.goto(base + path)
            page.screenshot(path=str(out_dir / f"{name}.png"), full_page=True)


if __name__ == "__main__":
    screenshots(sys.argv[1], sys.argv[2])
