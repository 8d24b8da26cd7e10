"""The search log (searches, screening) and the PRISMA 2020 flow: `kb build` from a small curated
folder whose counts are worked out by hand below, the refusals, the harvest's own routes, the
shipped data, and the /prisma page."""

import asyncio
import sqlite3
import textwrap

import pytest
import sqlite_utils
from click.testing import CliRunner

import publish_db as kb
from harvest import curate, screening
from harvest.cli import cli

ENTRIES = """\
- key: alpha-2020-trial
  type: publication
  pmid: "11111"
  title: A randomised trial of low-dose naltrexone
  design: [rct]
  sources: [{url: "https://example.org/alpha", checked: 2026-12-01}]
- key: beta-2021-review
  type: publication
  doi: 10.1234/beta
  title: A review of low-dose naltrexone
  design: [narrative_review]
  sources: [{url: "https://example.org/beta", checked: 2026-12-02}]
- key: gamma-2013-abstract
  type: publication
  title: A conference abstract with no DOI or PMID
  journal: Ann Rheum Dis
  year: 2013
  volume: "72"
  pages: A1.2
  design: [rct]
  sources: [{url: "https://example.org/gamma", checked: 2026-12-03}]
- key: nct00000001
  type: trial
  registry_id: NCT00000001
  title: A registered trial
  sources: [{url: "https://example.org/nct", checked: 2026-11-30}]
"""

# Search one finds the trial paper and a news page; search two finds the same paper again (by
# its PMID), the review, the news page again and another page. The abstract and the registration
# are listed by no search, so they come from hand curation.
SEARCHES = """\
- key: one
  source: stored web pages
  route: sweep
  query: naltrexone fibromyalgia
  run_on: 2026-12-07
  records:
  - {record: alpha-2020-trial, url: "https://example.org/alpha-copy"}
  - {record: "https://example.org/news"}
- key: two
  source: reference lists
  route: citation_chasing
  query: references of the review
  run_on: 2026-12-08
  records:
  - {record: "11111"}
  - {record: beta-2021-review}
  - {record: "https://example.org/news"}
  - {record: "https://example.org/other"}
"""

SCREENING = """\
- record: https://example.org/news
  title: A news story
  decision: excluded
  reason: news story
  decided_on: 2026-12-07
- record: https://example.org/other
  title: A page on another drug
  decision: excluded
  reason: not about naltrexone
  decided_on: 2026-12-08
"""


def curated_folder(tmp_path, screening_text=SCREENING, searches_text=SEARCHES):
    folder = tmp_path / "curated"
    folder.mkdir(exist_ok=True)
    (folder / "entries.yml").write_text(ENTRIES)
    (folder / "searches.yml").write_text(searches_text)
    (folder / "screening.yml").write_text(screening_text)
    return folder


def build(db_path, folder, *extra):
    return CliRunner().invoke(cli, ["build", "--db", str(db_path), "--curated", str(folder), *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("screening")
    db_path = tmp_path / "kb.db"
    result = build(db_path, curated_folder(tmp_path))
    assert result.exit_code == 0, result.output
    return db_path


def flow(db):
    return {(row[0], row[1]): row[2] for row in db.execute("select stage, detail, count from prisma_flow")}


def test_the_flow_counts_equal_a_hand_count(built):
    db = sqlite3.connect(built)
    # rows: one finds 2, two finds 4, hand curation adds the abstract and the registration: 8
    # records: 11111, doi:10.1234/beta, curated:gamma-2013-abstract, NCT00000001, news, other: 6
    counts = flow(db)
    assert counts[("identified", None)] == 8
    assert counts[("identified", "systematic sweep of stored public copies")] == 2
    assert counts[("identified", "citation chasing")] == 4
    assert counts[("identified", "hand curation (searches not logged)")] == 2
    assert counts[("duplicates removed", None)] == 2  # the paper and the news page, found twice each
    assert counts[("screened", None)] == 6
    assert counts[("excluded", None)] == 2
    assert counts[("excluded", "news story")] == 1  # found by both searches, counted once
    assert counts[("excluded", "not about naltrexone")] == 1
    assert counts[("included", None)] == 4
    assert counts[("included", "publications")] == 3
    assert counts[("included", "trial registrations")] == 1
    # and they are the screening table's own counts
    total, distinct, excluded = db.execute(
        "select count(*), count(distinct record), count(distinct case when decision = 'excluded' then record end) "
        "from screening").fetchone()
    assert (total, distinct, excluded) == (8, 6, 2)


def test_every_paper_and_registration_has_a_decision(built):
    db = sqlite3.connect(built)
    undecided = db.execute(
        "select paper_id from papers where paper_id not in (select record from screening where decision = 'included') "
        "union all select registry_id from trials "
        "where registry_id not in (select record from screening where decision = 'included')").fetchall()
    assert undecided == []
    assert db.execute("select count(*) from screening where decision = 'excluded' and coalesce(reason, '') = ''"
                      ).fetchone()[0] == 0


def test_searches_carry_their_hits_dates_and_routes(built):
    db = sqlite_utils.Database(built)
    searches = {row["search_id"]: row for row in db["searches"].rows}
    assert (searches["one"]["hits"], searches["one"]["run_on"], searches["one"]["route"]) == (2, "2026-12-07", "sweep")
    assert (searches["two"]["hits"], searches["two"]["route"]) == (4, "citation_chasing")
    assert searches["curation"]["hits"] == 2 and searches["curation"]["run_on"] is None
    # the PMID and the curated key found the same paper: one record, decided on each search's date
    rows = {(r["record"], r["search_id"]): r for r in db["screening"].rows}
    assert rows[("11111", "one")]["url"] == "https://example.org/alpha-copy"
    assert rows[("11111", "two")]["decided_on"] == "2026-12-08"
    assert rows[("curated:gamma-2013-abstract", "curation")]["decided_on"] == "2026-12-03"  # its latest check
    assert rows[("https://example.org/other", "two")]["reason"] == "not about naltrexone"


def test_an_exclusion_without_a_reason_is_refused_and_the_database_kept(tmp_path, built):
    db_path = tmp_path / "kb.db"
    db_path.write_bytes(built.read_bytes())
    before = db_path.read_bytes()
    no_reason = SCREENING.replace("  reason: news story\n", "")
    result = build(db_path, curated_folder(tmp_path, no_reason))
    assert result.exit_code == 1
    assert "screening.yml: https://example.org/news: an exclusion needs a reason" in result.output
    assert db_path.read_bytes() == before


def test_a_record_without_any_decision_is_refused(tmp_path):
    undecided = SEARCHES + "  - {record: \"https://example.org/unscreened\"}\n"
    result = build(tmp_path / "kb.db", curated_folder(tmp_path, SCREENING, undecided))
    assert result.exit_code == 1
    assert "searches.yml: two: record https://example.org/unscreened has no decision" in result.output
    assert not (tmp_path / "kb.db").exists()


def test_validation_names_file_and_item():
    log = screening.SearchLog(
        searches=[{"key": "s", "source": "x", "route": "web", "query": "q", "run_on": "7 Dec 2026",
                   "records": [{"url": "https://e.org"}]}],
        exclusions={"alpha-2020-trial": {"record": "alpha-2020-trial", "title": "t", "decision": "excluded",
                                         "reason": "r", "decided_on": "2026-12-07"},
                    "https://e.org/x": {"record": "https://e.org/x", "decision": "included", "decided_on": "2026"}})
    entries = [{"key": "alpha-2020-trial", "type": "publication", "pmid": "11111"}]
    problems = "\n".join(screening.validate(log, entries))
    for expected in ("searches.yml: s: route must be one of", "searches.yml: s: run_on must be YYYY-MM-DD",
                     "searches.yml: s: records[1]: needs `record`",
                     "screening.yml: alpha-2020-trial: is a curated entry, so it is in kb.db and cannot be excluded",
                     "screening.yml: https://e.org/x: decision must be excluded",
                     "screening.yml: https://e.org/x: an exclusion needs a reason",
                     "screening.yml: https://e.org/x: decided_on must be YYYY-MM-DD",
                     "screening.yml: https://e.org/x: no search in searches.yml found it"):
        assert expected in problems


def test_a_publication_without_doi_or_pmid_needs_its_full_citation():
    cited = {"key": "c", "type": "publication", "journal": "Ann Rheum Dis", "year": 2013, "pages": "A1",
             "_file": "t.yml", "sources": [{"url": "https://e.org"}]}
    assert curate.validate([cited], {"design": [], "outcome": []}) == []
    bare = {**cited, "pages": None}
    assert any("needs a DOI, PMID or registry id, or a citation (journal, year, pages)" in p
               for p in curate.validate([bare], {"design": [], "outcome": []}))


def test_the_harvest_routes_feed_the_log(tmp_path, built):
    """Saved queries from sources.yml and what they discovered; a dropped hit carries the keep
    rule's reason, a kept one that is in kb.db is included."""
    db_path = tmp_path / "kb.db"
    db_path.write_bytes(built.read_bytes())
    db = sqlite_utils.Database(db_path)
    db["discoveries"].insert_all([
        {"pmid": "11111", "kept": 1, "reason": "title/abstract mentions every required term group",
         "first_seen": "2026-12-05T10:00:00Z"},
        {"pmid": "22222", "kept": 0, "reason": "title/abstract lacks: fibromyalgia", "first_seen": "2026-12-05T10:00:00Z"},
    ])
    db["harvest_state"].insert({"name": "last_harvest_at", "value": "2026-12-05T09:59:00Z"})
    db.close()
    sources = tmp_path / "sources.yml"
    sources.write_text(textwrap.dedent("""\
        queries:
          - naltrexone AND fibromyalgia
          - naltrexone AND "widespread pain"
        """))
    result = build(db_path, curated_folder(tmp_path), "--sources", str(sources))
    assert result.exit_code == 0, result.output
    db = sqlite_utils.Database(db_path)
    search = db["searches"].get("pubmed-saved-queries")
    assert search["query"] == '(naltrexone AND fibromyalgia) OR (naltrexone AND "widespread pain")'
    assert (search["route"], search["run_on"], search["hits"]) == ("harvest", "2026-12-05", 2)
    rows = {r["record"]: r for r in db["screening"].rows_where("search_id = 'pubmed-saved-queries'")}
    assert rows["11111"]["decision"] == "included"
    assert rows["22222"]["decision"] == "excluded"
    assert rows["22222"]["reason"] == "automatic keep rule: title/abstract lacks: fibromyalgia"
    assert rows["22222"]["url"] == "https://pubmed.ncbi.nlm.nih.gov/22222/"
    assert flow(db.conn)[("screened", None)] == 7  # 22222 is new; 11111 was already counted


def test_the_shipped_data_gives_every_paper_a_decision(tmp_path):
    db_path = tmp_path / "kb.db"
    db_path.write_bytes((kb.ROOT / "kb.db").read_bytes())
    result = CliRunner().invoke(cli, ["build", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(db_path)
    assert db.execute("select count(*) from papers where paper_id not in "
                      "(select record from screening where decision = 'included')").fetchone()[0] == 0
    assert db.execute("select count(*) from trials where registry_id not in "
                      "(select record from screening where decision = 'included')").fetchone()[0] == 0
    counts = flow(db)
    papers, trials = (db.execute(f"select count(*) from {t}").fetchone()[0] for t in ("papers", "trials"))
    assert counts[("included", None)] == papers + trials
    assert counts[("screened", None)] == counts[("included", None)] + counts[("excluded", None)]
    assert counts[("identified", None)] - counts[("duplicates removed", None)] == counts[("screened", None)]
    assert db.execute("select count(*) from searches where route = 'sweep' and run_on = '2026-12-07'").fetchone()[0] >= 20


def test_the_search_page_draws_the_flow(tmp_path, built):
    db_path = tmp_path / "kb.db"  # Datasette names the database after the file: kb
    db_path.write_bytes(built.read_bytes())
    site = kb.make_datasette(db_path)
    response = asyncio.run(site.client.get("/prisma"))
    assert response.status_code == 200
    page = response.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="kb-prisma"' in page
    for words in ("Records identified in all: 8", "Duplicates removed: 2", "Records screened: 6",
                  "Records excluded: 2", "news story: 1", "Records included in this knowledge base: 4",
                  "trial registrations: 1", "citation chasing: 4"):
        assert words in page, words
    assert "/kb/screening?decision=excluded&amp;reason=news+story" in page
    assert "did not query" in page  # the page says what a run date and hits mean here
    home = asyncio.run(site.client.get("/")).text
    assert 'href="/prisma"' in home
