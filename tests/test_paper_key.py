"""A column means what it says (issue 18, item 8): a paper is keyed by `paper_id`, and `pmid`
holds a PubMed ID or nothing, in the committed kb.db, in a built one and in one built before the
key was renamed; addresses written with the old name still answer."""

import asyncio
import sqlite3

import pytest
import sqlite_utils
from click.testing import CliRunner
from datasette.utils import tilde_encode

import publish_db as kb
from conftest import TESTS, fixture_bytes, rebuilt_committed_kb
from fake_eutils import FakeEutils
from harvest import store
from harvest.cli import cli

PUBMED_PAPER = "19453963"  # tests/fixtures/pubmed_19453963.xml
NEW_PAPER, NEW_DOI = "23359310", "10.1002/art.37734"  # tests/fixtures/pubmed_23359310.xml
CURATED_DOI = "10.5555/old.curated.1"
CURATED_KEY = "doi:" + CURATED_DOI
FIRST_SEEN = {PUBMED_PAPER: "2025-01-02T03:04:05Z", CURATED_KEY: "2025-02-03T04:05:06Z"}
CURATED = f"""
- key: old-2024-curated
  type: publication
  doi: {CURATED_DOI}
  title: Low-dose naltrexone in fibromyalgia, a curated paper with no PubMed record
  authors: [Older A]
  year: 2024
  journal: J Test
  design: [observational]
  sources: [{{url: "https://example.org/old-2024", checked: 2026-12-01}}]
"""


def papers(db):
    return {row["paper_id"]: row["pmid"] for row in db.query("select paper_id, pmid from papers")}


def assert_keys_and_pmids(db):
    """Every papers.pmid is a PubMed ID (ASCII digits) or empty, and is the key when present;
    every key is unique, and a key that is a PubMed ID is also the paper's pmid."""
    rows = db.execute("select paper_id, pmid from papers").fetchall()
    assert rows, "no papers"
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys))
    for key, pmid in rows:
        assert pmid is None or (pmid.isascii() and pmid.isdigit()), (key, pmid)
        assert pmid == (key if key.isascii() and key.isdigit() else None), (key, pmid)


def test_the_committed_kb_has_pmids_only_in_pmid():
    db = sqlite_utils.Database(sqlite3.connect(f"file:{TESTS.parent / 'kb.db'}?mode=ro", uri=True))
    assert_keys_and_pmids(db)
    found = papers(db)
    # the Rupp 2023 scoping review is known here by its DOI alone, the Younger 2009 pilot by its PMID
    assert found["doi:10.1093/pm/pnad074"] is None
    assert found["19453963"] == "19453963"
    assert "pmid" not in db["tags"].columns_dict and "paper_id" in db["effects"].columns_dict


def test_a_rebuilt_kb_and_the_publishing_fixture_have_pmids_only_in_pmid(tmp_path):
    assert_keys_and_pmids(rebuilt_committed_kb(tmp_path / "rebuilt.db"))
    fixture = kb.build(tmp_path / "fixture.db")
    assert_keys_and_pmids(fixture)
    assert papers(fixture)[kb.CURATED_ONLY] is None and papers(fixture)[kb.NO_IDENTIFIER] is None


def test_a_paper_record_with_a_key_in_pmid_is_refused(tmp_path):
    db = store.open_db(tmp_path / "kb.db")
    with pytest.raises(ValueError, match="not a PubMed ID: 'doi:10.5555/x'"):
        store.save_paper(db, {"pmid": "doi:10.5555/x", "title": "T", "authors": []})
    assert db["papers"].count == 0


# ---- a kb.db built before the rename -------------------------------------------------------------


def old_shape_kb(path):
    """A kb.db as the code before the rename wrote it: the paper key named `pmid` everywhere,
    a harvested PubMed record, a curated paper keyed by its DOI, the harvest's own record."""
    db = sqlite_utils.Database(path)
    db["papers"].create({"pmid": str, "doi": str, "title": str, "abstract": str, "year": int, "authors": str,
                         "citation": str, "source": str, "record_sha256": str, "first_seen": str,
                         "updated_at": str}, pk="pmid")
    db["papers"].insert_all([
        {"pmid": PUBMED_PAPER, "title": "An older parse", "source": "pubmed", "first_seen": FIRST_SEEN[PUBMED_PAPER]},
        {"pmid": CURATED_KEY, "doi": CURATED_DOI, "title": "Curated", "source": "curated",
         "first_seen": FIRST_SEEN[CURATED_KEY]},
    ])
    db["papers"].enable_fts(["title", "abstract"], create_triggers=True, tokenize="porter")
    db["tags"].create({"pmid": str, "kind": str, "value": str, "source": str},
                      foreign_keys=[("pmid", "papers", "pmid")])
    db["tags"].create_index(["pmid"])
    db["tags"].insert({"pmid": CURATED_KEY, "kind": "design", "value": "observational", "source": "curated"})
    db["tag_state"].insert({"pmid": PUBMED_PAPER, "text_sha256": "old", "tagger_version": "old"}, pk="pmid")
    db["effects"].create({"effect_id": str, "key": str, "pmid": str}, pk="effect_id")
    db["raw_records"].insert({"pmid": PUBMED_PAPER, "xml": fixture_bytes("pubmed_19453963.xml"), "sha256": "x",
                              "fetched_at": "2025-01-02T03:04:05Z"}, pk="pmid")
    db["doi_lookups"].insert({"doi": "10.1111/j.1526-4637.2009.00613.x", "input": "doi:10.1111/J.1526-4637.2009.00613.X",
                              "pmid": PUBMED_PAPER, "resolved_at": "2025-01-02T03:04:05Z"}, pk="doi")
    db["harvest_runs"].insert({"id": 1, "started_at": "2025-01-02T03:00:00Z", "mode": "dois", "status": "ok"}, pk="id")
    db["harvest_state"].insert({"name": "last_harvest_date", "value": "2025/01/02"}, pk="name")
    db.execute("create view paper_urls as select pmid, 'https://pubmed.ncbi.nlm.nih.gov/' || pmid || '/' as pubmed_url "
               "from papers")
    db.conn.commit()
    db.close()
    return {table: rows(path, table) for table in ("raw_records", "doi_lookups", "harvest_runs", "harvest_state")}


def rows(path, table):
    return list(sqlite_utils.Database(path).query(f"select * from {table}"))


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def assert_migrated(path, kept):
    db = sqlite_utils.Database(path)
    for table, before in kept.items():  # the harvest's raw records and own record, untouched
        assert [{column: row[column] for column in before[0]} for row in rows(path, table)] == before, table
    found = papers(db)
    assert (found[PUBMED_PAPER], found[CURATED_KEY]) == (PUBMED_PAPER, None)
    for key, first_seen in FIRST_SEEN.items():  # "new since" dates survive
        assert db.execute("select first_seen from papers where paper_id = ?", [key]).fetchone()[0] == first_seen
    assert_keys_and_pmids(db)
    for table in ("tags", "tag_state", "effects"):
        assert "pmid" not in db[table].columns_dict and "paper_id" in db[table].columns_dict, table
    assert list(db["tags"].columns_dict)[:2] == ["paper_id", "kind"] and db["tags"].foreign_keys[0].other_column == "paper_id"
    assert ["paper_id"] in [index.columns for index in db["tags"].indexes]
    assert db.execute("select count(*) from tags where paper_id = ? and source = 'curated'", [CURATED_KEY]).fetchone()[0]
    assert list(db["papers"].columns_dict)[:2] == ["paper_id", "pmid"]  # the shape a new kb.db has
    # the view was replaced, the full-text index rebuilt, the PubMed record parsed again
    assert list(db.query("select paper_id, pmid, pubmed_url from paper_urls where paper_id = ?", [CURATED_KEY])) == [
        {"paper_id": CURATED_KEY, "pmid": None, "pubmed_url": None}]
    [(title,)] = db.execute("select p.title from papers_fts join papers p on p.rowid = papers_fts.rowid "
                            "where papers_fts match 'pilot'").fetchall()
    assert title == "Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot study."
    return db


def test_kb_build_migrates_an_old_kb_keeping_its_records(tmp_path):
    path = tmp_path / "kb.db"
    kept = old_shape_kb(path)
    curated = tmp_path / "curated"
    curated.mkdir()
    (curated / "papers.yml").write_text(CURATED)
    run("build", "--db", path, "--curated", curated)
    assert_migrated(path, kept)
    again = sqlite_utils.Database(path).execute("select paper_id, updated_at from papers order by 1").fetchall()
    run("build", "--db", path, "--curated", curated)  # once migrated, a build changes nothing
    assert sqlite_utils.Database(path).execute("select paper_id, updated_at from papers order by 1").fetchall() == again


def test_kb_harvest_migrates_an_old_kb_and_adds_to_it(tmp_path, monkeypatch):
    path = tmp_path / "kb.db"
    kept = old_shape_kb(path)
    (tmp_path / "dois.txt").write_text(NEW_DOI + "\n")
    with FakeEutils() as eutils:
        eutils.add_xml(fixture_bytes("pubmed_19453963.xml"))
        eutils.add_xml(fixture_bytes("pubmed_23359310.xml"))
        monkeypatch.setenv("KB_EUTILS_URL", eutils.base_url)
        run("harvest", "--db", path, "--dois", tmp_path / "dois.txt", "--quiet")
    db = sqlite_utils.Database(path)
    assert papers(db) == {PUBMED_PAPER: PUBMED_PAPER, CURATED_KEY: None, NEW_PAPER: NEW_PAPER}
    assert [r["pmid"] for r in rows(path, "doi_lookups")] == [PUBMED_PAPER, NEW_PAPER]
    assert [r["id"] for r in rows(path, "harvest_runs")] == [1, 2]
    assert rows(path, "raw_records")[0]["xml"] == kept["raw_records"][0]["xml"]
    assert db.execute("select first_seen from papers where paper_id = ?", [PUBMED_PAPER]).fetchone()[0] == (
        FIRST_SEEN[PUBMED_PAPER])
    assert_keys_and_pmids(db)


def test_a_command_that_only_reads_an_old_kb_says_to_build_it(tmp_path):
    path = tmp_path / "kb.db"
    old_shape_kb(path)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["pool", "--db", str(path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {path} was built before papers.paper_id: `kb build --db {path}` migrates it\n"
    assert path.read_bytes() == before


# ---- old addresses -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("paper-key") / "kb.db"
    kb.build(path).close()
    return kb.make_datasette(path)


def get(site, path):
    return asyncio.run(site.client.get(path))


@pytest.mark.parametrize("old, new", [
    # a table whose key column was renamed: any filter, sort, facet or column choice on it
    (f"/kb/tags?pmid={kb.RCT}&kind=design", f"/kb/tags?paper_id={kb.RCT}&kind=design"),
    (f"/kb/tags.json?pmid__exact={kb.RCT}&_sort=pmid", f"/kb/tags.json?paper_id__exact={kb.RCT}&_sort=paper_id"),
    ("/kb/abstract_sections?_facet=pmid&_col=pmid", "/kb/abstract_sections?_facet=paper_id&_col=paper_id"),
    # a view with both columns: a pmid filter whose value is a key, not a PubMed ID
    ("/kb/papers?pmid=doi%3A10.3390%2Fbiomed99.1087", "/kb/papers?paper_id=doi%3A10.3390%2Fbiomed99.1087"),
    (f"/kb/evidence_table.csv?pmid__in={kb.RCT},{kb.CURATED_ONLY}",
     f"/kb/evidence_table.csv?paper_id__in={kb.RCT}%2C{kb.CURATED_ONLY.replace(':', '%3A').replace('/', '%2F')}"),
])
def test_an_old_filter_on_the_paper_key_redirects_to_paper_id(site, old, new):
    response = get(site, old)
    assert response.status_code == 301
    assert response.headers["location"] == new
    assert get(site, new).status_code == 200


def test_the_redirect_leads_to_the_rows_the_old_address_meant(site):
    location = get(site, f"/kb/tags.json?pmid={kb.RCT}&kind=design&_shape=objects").headers["location"]
    found = get(site, location).json()["rows"]
    assert {row["value"] for row in found} == {"rct", "crossover", "double_blind", "placebo_controlled"}
    [paper] = get(site, get(site, f"/kb/papers.json?_shape=objects&pmid={kb.CURATED_ONLY}").headers["location"]).json()["rows"]
    assert (paper["paper_id"], paper["pmid"]) == (kb.CURATED_ONLY, None)


@pytest.mark.parametrize("path", [
    f"/kb/papers?pmid={kb.RCT}",  # a real PubMed ID on a table that has pmid: answered as asked
    "/kb/raw_records?pmid=1",  # a table whose pmid was always a PubMed ID
    f"/kb/tags?paper_id={kb.RCT}",
    "/kb/tags?kind=design&value=pmid",  # "pmid" as a value, not a column
    f"/kb/papers/{kb.RCT}",  # row addresses: the key's values did not change
    "/kb/papers/" + tilde_encode(kb.CURATED_ONLY),
    f"/kb/abstract_sections/{kb.RCT},1",
])
def test_addresses_that_mean_what_they_say_are_answered(site, path):
    response = get(site, path)
    assert response.status_code == 200, (path, response.status_code)


def test_a_pubmed_id_filter_on_papers_finds_the_paper(site):
    found = get(site, f"/kb/papers.json?_shape=objects&pmid={kb.RCT}").json()["rows"]
    assert [(row["paper_id"], row["pmid"]) for row in found] == [(kb.RCT, kb.RCT)]


# ---- exports ------------------------------------------------------------------------------------


def test_reference_exports_give_a_pmid_only_where_there_is_one():
    exports = kb.plugin("reference_exports")
    columns = ["paper_id", "pmid", "title", "authors", "year"]
    found = list(exports.references(columns, [
        [kb.RCT, kb.RCT, "A trial", "Younger J", 2013],
        [kb.CURATED_ONLY, None, "A chart review", "Driver CN", 2023],
    ]))
    assert [reference["pmid"] for reference in found] == [kb.RCT, None]
    # an old query that still calls its doi: keys pmid gives no PMID either
    [old] = exports.references(["pmid", "title", "authors", "year"], [[kb.CURATED_ONLY, "A chart review", "Driver CN", 2023]])
    assert old["pmid"] is None
    assert "AN  -" not in exports.ris(old) and "pmid = " not in exports.bibtex(old, set())
