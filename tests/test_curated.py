"""The curated evidence (harvest/curated/*.yml): validity, coverage, and how `kb build` loads it."""

import json
import re

import pytest
import sqlite_utils
from click.testing import CliRunner

from harvest import curate, tag
from harvest.cli import cli
from harvest.dois import DOI_PATTERN

ENTRIES = curate.load_curated()
BY_KEY = {entry["key"]: entry for entry in ENTRIES}


def test_curated_files_validate():
    assert curate.validate(ENTRIES, tag.VOCABULARY_VALUES) == []


def test_every_entry_has_an_identifier_and_a_source_url():
    assert len(ENTRIES) >= 40
    for entry in ENTRIES:
        # a conference abstract or journal item without DOI or PMID is identified by its citation
        cited = all(entry.get(name) for name in ("journal", "year", "pages"))
        assert entry.get("pmid") or entry.get("doi") or entry.get("registry_id") or entry.get("registry_ids") or cited, entry["key"]
        assert all(s["url"].startswith(("http://", "https://")) for s in entry["sources"]), entry["key"]
        assert all(re.match(r"^\d{4}-\d{2}-\d{2}$", str(s["checked"])) for s in entry["sources"]), entry["key"]


def test_identifiers_are_well_formed_and_unique():
    pmids = [str(e["pmid"]) for e in ENTRIES if e.get("pmid")]
    dois = [str(e["doi"]).lower() for e in ENTRIES if e.get("doi")]
    assert all(re.fullmatch(r"[1-9]\d{0,8}", p) for p in pmids)
    assert all(DOI_PATTERN.match(d) for d in dois)
    assert len(pmids) == len(set(pmids)) and len(dois) == len(set(dois))
    nct = [e["registry_id"] for e in ENTRIES if str(e.get("registry_id", "")).startswith("NCT")]
    assert nct and all(re.fullmatch(r"NCT\d{8}", n) for n in nct)
    assert len({e["key"] for e in ENTRIES}) == len(ENTRIES)


def test_related_entries_exist():
    for entry in ENTRIES:
        for link in entry.get("related") or []:
            assert link["key"] in BY_KEY, (entry["key"], link)


@pytest.mark.parametrize("key", ["bested-2023-crossover", "bruun-2024-final", "rodriguezfreire-2026-innova", "younger-2013-crossover"])
def test_published_rcts_carry_n_dose_duration_and_numbers(key):
    entry = BY_KEY[key]
    assert "rct" in entry["design"]
    assert entry["n_randomized"] > 0
    assert entry["dose"]["max_mg_per_day"] > 0
    assert entry["duration_weeks"] > 0
    assert re.search(r"\d", entry["result"]) and entry["result_direction"]


def test_validation_names_each_problem():
    broken = [
        {"key": "a", "type": "publication", "doi": "10.1/x", "_file": "t.yml", "sources": [{"url": "https://e.org"}]},
        {"key": "a", "type": "publication", "pmid": "12a", "_file": "t.yml", "sources": []},
        {"key": "b", "type": "trial", "registry_id": "NCT123", "_file": "t.yml", "sources": [{"url": "https://e.org"}],
         "related": [{"relation": "protocol_of", "key": "missing"}], "design": ["randomised"]},
    ]
    problems = curate.validate(broken, tag.VOCABULARY_VALUES)
    text = "\n".join(problems)
    for expected in ("malformed DOI", "duplicate key", "malformed PMID", "sources with a url",
                     "malformed registry id", "related key 'missing'", "unknown design value 'randomised'"):
        assert expected in text


def test_build_loads_curated_papers_trials_links_and_tags(tmp_path):
    db_path = tmp_path / "kb.db"
    result = CliRunner().invoke(cli, ["build", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    db = sqlite_utils.Database(db_path)
    publications = [e for e in ENTRIES if e["type"] == "publication"]
    assert db["papers"].count == len(publications)
    assert db["trials"].count == len([e for e in ENTRIES if e["type"] == "trial"])
    final = db["papers"].get("38258677")
    assert final["source"] == "curated" and final["journal_iso"] == "Lancet Rheumatol"
    assert final["pmid"] == "38258677"  # its curated PMID, which is also its key
    curated = {(r["kind"], r["value"]) for r in db.query("select kind, value from tags where paper_id = '38258677' and source = 'curated'")}
    assert {("design", "rct"), ("comparator", "placebo"), ("sample_size", "99")} <= curated
    dose = json.loads(db.execute(
        "select detail from tags where paper_id = '38258677' and kind = 'dose' and source = 'curated'").fetchone()[0])
    assert dose["max_mg_per_day"] == 6 and dose["band"] == "low"
    assert db.execute("select count(*) from papers where paper_id not in (select paper_id from tags where source = 'auto')").fetchone()[0] == 0
    assert db["links"].count_where("relation = 'reports_trial' and to_key = 'NCT04270877'") >= 1
    # A field the curator left empty stays empty in the evidence table, even where auto tags guess it.
    moser = db.execute("select duration, evidence_from from evidence_table where paper_id = '40491623'").fetchone()
    assert BY_KEY["moser-2025-casereport"].get("duration_weeks") is None
    assert db.execute("select count(*) from tags where paper_id = '40491623' and kind = 'duration' and source = 'auto'").fetchone()[0]
    assert moser == (None, "curated")

    def snapshot():
        again = sqlite_utils.Database(db_path)
        return (
            list(again.query("select paper_id, updated_at from papers order by paper_id")),
            sorted(map(tuple, again.execute("select paper_id, kind, value, detail, source from tags"))),
            list(again.query("select * from tag_state order by paper_id")),
        )

    before = snapshot()
    assert CliRunner().invoke(cli, ["build", "--db", str(db_path)]).exit_code == 0
    assert snapshot() == before  # nothing re-parsed, re-tagged or duplicated
    from harvest import search

    again = sqlite_utils.Database(db_path)
    assert again["search_texts"].count == again["papers"].count
    assert search.refresh(again) == 0  # the search index is already in line: nothing rewritten


def test_build_refuses_invalid_curated_data_and_keeps_the_database(tmp_path):
    folder = tmp_path / "curated"
    folder.mkdir()
    (folder / "bad.yml").write_text("- key: x\n  type: publication\n  doi: not-a-doi\n  sources: []\n")
    db_path = tmp_path / "kb.db"
    db_path.write_bytes(b"")
    result = CliRunner().invoke(cli, ["build", "--db", str(db_path), "--curated", str(folder)])
    assert result.exit_code == 1
    assert "bad.yml: x: malformed DOI 'not-a-doi'" in result.output
    assert db_path.read_bytes() == b""


def test_sources_get_a_kind_and_canonical_pages_come_first():
    from harvest.source_kinds import derived_kind, ordered

    assert derived_kind("https://pubmed.ncbi.nlm.nih.gov/19453963/") == "pubmed"
    assert derived_kind("https://www.ncbi.nlm.nih.gov/pmc/articles/PMC1/") == "pmc"
    assert derived_kind("https://www.clinicaltrials.gov/study/NCT00568555") == "registry"
    assert derived_kind("https://www.mdpi.com/2227-9059/12/5/1087") == "publisher"
    # a proxy of a publisher's page is a copy, not the publisher
    assert derived_kind("https://onlinelibrary-wiley-com-443.webvpn.example.edu.cn/doi/10.1/x") == "secondary"
    assert derived_kind("https://unknown.example.org/page") == "secondary"
    listed = ordered([
        {"url": "https://mirror.example.org/copy"},
        {"url": "https://www.mdpi.com/x", "kind": "publisher"},
        {"url": "https://doi.org/10.3390/x"},
        {"url": "https://clinicaltrials.gov/study/NCT00000001"},
        {"url": "https://press.example.org/story", "kind": "news"},
    ])
    assert [s["url"].split("/")[2] for s in listed] == [
        "clinicaltrials.gov", "doi.org", "www.mdpi.com", "press.example.org", "mirror.example.org"]
    assert [s["kind"] for s in listed] == ["registry", "publisher", "publisher", "news", "secondary"]


def test_validation_rejects_unknown_source_kinds():
    entry = {"key": "a-2020-x", "type": "publication", "doi": "10.1234/x", "_file": "t.yml",
             "sources": [{"url": "https://e.org", "kind": "blog"}]}
    [problem] = curate.validate([entry], tag.VOCABULARY_VALUES)
    assert problem.startswith("t.yml: a-2020-x: unknown source kind 'blog'")


def test_note_is_loaded_and_the_curation_log_is_not(tmp_path):
    entry = {"key": "a-2020-x", "type": "publication", "doi": "10.1/x", "title": "A title", "_file": "t.yml",
             "note": "Corrected in 2021.", "curation_log": "Found through a mirror; page 3 disagreed.",
             "sources": [{"url": "https://mirror.example.org/x", "checked": "2026-11-25"},
                         {"url": "https://doi.org/10.1/x", "checked": "2026-11-25"}]}
    from harvest import store

    db = store.open_db(str(tmp_path / "kb.db"))
    curate.save_curated(db, [entry])
    assert db.execute("select note from curated_entries").fetchone() == ("Corrected in 2021.",)
    dump = "\n".join(db.conn.iterdump())
    assert "Found through a mirror" not in dump
    assert [tuple(r) for r in db.execute("select url, kind, position from sources order by position")] == [
        ("https://doi.org/10.1/x", "publisher", 1), ("https://mirror.example.org/x", "secondary", 2)]


def test_an_old_database_loses_its_notes_columns(tmp_path):
    from harvest import store

    path = tmp_path / "kb.db"
    old = sqlite_utils.Database(path)
    old["curated_entries"].insert_all(
        [{"key": f"k{i}", "notes": f"working log {i}: seen on a mirror page " * 20} for i in range(300)], pk="key")
    old.close()
    store.open_db(str(path)).close()
    assert "notes" not in sqlite_utils.Database(path)["curated_entries"].columns_dict
    assert b"seen on a mirror page" not in path.read_bytes()  # not even in free pages


def test_validation_refuses_the_old_notes_key():
    entry = {"key": "a-2020-x", "type": "publication", "doi": "10.1234/x", "_file": "t.yml",
             "notes": "mixed public and internal text", "sources": [{"url": "https://e.org"}]}
    [problem] = curate.validate([entry], tag.VOCABULARY_VALUES)
    assert problem == "t.yml: a-2020-x: 'notes' is no longer read: split it into note (public) and curation_log (internal)"


def test_search_index_follows_changed_and_removed_papers(tmp_path):
    from harvest import search, store

    db = store.open_db(str(tmp_path / "kb.db"))
    entries = [
        {"key": f"a-2020-{i}", "type": "publication", "doi": f"10.1234/x{i}", "title": f"Paper {i}",
         "result": "Pain fell.", "_file": "t.yml", "sources": [{"url": "https://doi.org/10.1234/x"}]}
        for i in (1, 2)
    ]
    curate.save_curated(db, entries)
    assert search.refresh(db) == 2

    def found(words):
        return [r[0] for r in db.execute(
            "select s.paper_id from search_texts_fts join search_texts s on s.paper_rowid = search_texts_fts.rowid "
            "where search_texts_fts match ?", [words])]

    assert sorted(found("fell")) == ["doi:10.1234/x1", "doi:10.1234/x2"]
    entries[0]["result"] = "Sleep improved."
    curate.save_curated(db, entries[:1])  # the second paper is gone, the first changed
    assert search.refresh(db) == 2
    assert found("fell") == [] and found("sleep") == ["doi:10.1234/x1"]
