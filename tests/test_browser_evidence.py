"""The home page's "What the evidence says" in a real browser (headless Debian Chromium).

Served from a kb.db built from the invented curated files in tests/fixtures/evidence.
Run as a script to refresh the screenshots in docs/:
    .venv/bin/python tests/test_browser_evidence.py kb.db docs
"""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

from test_browser import CHROMIUM, browser_page, serving  # noqa: E402

from harvest.cli import cli  # noqa: E402

EVIDENCE = Path(__file__).parent / "fixtures" / "evidence"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("evidence-site")
    db_path = workdir / "kb.db"
    result = CliRunner().invoke(cli, ["build", "--db", str(db_path), "--curated", str(EVIDENCE)])
    assert result.exit_code == 0, result.output
    with serving(db_path, workdir) as base:
        yield base


WIDTH_JS = "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"


def test_home_page_shows_bottom_line_summary_of_findings_and_plots_at_1280(site):
    with browser_page(width=1280) as page:
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(site + "/")
        section = page.locator("#what-the-evidence-says")
        text = section.inner_text()
        assert "5 randomised trials of LDN (at most 6 mg a day) in fibromyalgia with results" in text
        assert "4 of them, with 236 patients" in text
        assert "Pooled standardised mean difference \u22120.27" in text
        assert "Certainty of this evidence: very low" in text
        assert "No prediction interval is given" in text
        sof = section.locator("table.kb-sof-compact")
        assert sof.locator("tbody tr").count() == 10 and sof.is_visible()
        forest, cumulative = section.locator("svg.kb-forest").all()
        assert forest.locator(".kb-forest-row").count() == 4
        assert forest.locator("polygon.kb-forest-diamond").count() == 1
        assert forest.locator("line.kb-forest-pi").count() == 0  # k < 5: no prediction interval drawn
        assert "favours LDN" in forest.text_content() and "favours placebo" in forest.text_content()
        assert cumulative.locator(".kb-forest-row").count() == 4
        assert "+ Delta 2024 (k=4)" in cumulative.text_content()
        assert forest.bounding_box()["height"] > 100  # drawn, not collapsed
        assert page.evaluate(WIDTH_JS) <= 1280
        assert all(url.startswith(site) for url in requested), requested  # no network beyond the site
        # every number links to its row: the summary of findings' numbers open its rows
        sof.locator("a", has_text="RR 1.07 (0.87 to 1.32)").click()
        page.wait_for_url("**/kb/summary_of_findings/adverse_events")
        page.goto(site + "/")
        # a trial's row opens its effects row
        page.locator("svg.kb-forest").first.locator("a", has_text="Alpha 2009").click()
        page.wait_for_url("**/kb/effects/alpha-2009-crossover~231")
        row = page.locator("body").inner_text()
        assert "Cochrane Handbook 23.2.7" in row and "https://example.org/alpha" in row


def test_summary_of_findings_and_robustness_pages_fit_1280(site):
    with browser_page(width=1280) as page:
        for path, rows in (("/summary-of-findings", 10), ("/robustness", None)):
            page.goto(site + path)
            assert page.locator("table.kb-sof").first.is_visible()
            if rows:
                assert page.locator("table.kb-sof tbody tr").count() == rows
                assert page.locator("ol.kb-footnotes > li").count() == rows
            assert page.evaluate(WIDTH_JS) <= 1280, path


def screenshots(db_path, out_dir):
    """The evidence section of the home page as served from `db_path`."""
    path = Path(db_path).resolve()
    with serving(path, path.parent) as base, browser_page(width=1280) as page:
        page.goto(base + "/")
        page.locator("#what-the-evidence-says").screenshot(path=str(Path(out_dir) / "evidence-summary.png"))


if __name__ == "__main__":
    screenshots(sys.argv[1], sys.argv[2])
