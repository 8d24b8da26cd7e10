"""`kb check-refs` library: parsing, journal equivalence, resolving, comparing, reporting, saving.

The corpus (tests/refs/corpus.yml) runs twice: against a kb.db built here from
tests/refs/pubmed_ldn.xml (offline), and against the fake E-utilities serving the
same records with an empty kb.db.
"""

import json
from pathlib import Path

import pytest
import sqlite_utils
import yaml

from harvest import refs, store
from harvest.parse import parse_pubmed_xml

HERE = Path(__file__).parent / "refs"
CORPUS = yaml.safe_load((HERE / "corpus.yml").read_text(encoding="utf-8"))
RECORDS_XML = (HERE / "pubmed_ldn.xml").read_bytes()
ONLINE_ONLY = {"38258677"}  # Bruun 2024: served by the fake PubMed, absent from the test kb.db
COMMITTED_DB = Path(__file__).parents[1] / "kb.db"

NEWS_REF_1 = (
    "1. Younger J, Mackey S. Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot "
    "study. Arthritis & Rheumatology. 2009;10(4):663-72. doi:10.1111/j.1526-4637.2009.00613."
)
NEWS_REF_2 = (
    "2. Younger J, McCue R, Noor N, Mackey S. Low-dose naltrexone for the treatment of "
    "fibromyalgia: findings of a small, randomized, double-blind, placebo-controlled, "
    "counterbalanced, crossover trial assessing daily pain levels. 2013;65(2):529-38. "
    "doi:10.1002/art.37734."
)
CLEAN_2009 = (
    "Younger J, Mackey S. Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot study. "
    "Pain Med. 2009;10(4):663-72. doi:10.1111/j.1526-4637.2009.00613.x"
)
CLEAN_2013 = (
    "Younger J, Noor N, McCue R, Mackey S. Low-dose naltrexone for the treatment of fibromyalgia: "
    "findings of a small, randomized, double-blind, placebo-controlled, counterbalanced, crossover "
    "trial assessing daily pain levels. Arthritis Rheum. 2013;65(2):529-38. doi:10.1002/art.37734"
)


def build_kb(path, skip=()):
    db = store.open_db(path)
    records, _ = parse_pubmed_xml(RECORDS_XML)
    for record in records:
        if record["pmid"] not in skip:
            store.save_paper(db, record)
    return db


@pytest.fixture
def kb(tmp_path):
    return build_kb(tmp_path / "kb.db", skip=ONLINE_ONLY)


@pytest.fixture
def pubmed(make_fake_eutils, make_client):
    """(server, client): the fake E-utilities holding every corpus paper, no rate limit."""
    server = make_fake_eutils(rate_limit=False)
    server.add_xml(RECORDS_XML)
    return server, make_client(server, per_second=200, max_retries=1)


def expectation(entry, offline):
    return {**entry["expect"], **(entry.get("offline") or {})} if offline else entry["expect"]


def assert_outcome(result, expect):
    assert result["status"] == expect["status"], (result["input"], result["reason"], result["discrepancies"])
    if expect["status"] == "unresolved":
        assert result["pmid"] is None and result["reason"]
        return
    assert result["pmid"] == expect["pmid"]
    assert sorted(d["kind"] for d in result["discrepancies"]) == sorted(expect["kinds"])
    if "method" in expect:
        assert result["method"] == expect["method"]
    assert 0 < result["confidence"] <= 1
    assert f"PMID: {expect['pmid']}." in result["corrected_vancouver"]


# ------------------------------------------------------------------------ corpus


def test_corpus_is_large_and_covers_every_kind():
    kinds = {k for entry in CORPUS for k in entry["expect"].get("kinds", [])}
    statuses = {entry["expect"]["status"] for entry in CORPUS}
    assert len(CORPUS) >= 30
    assert set(refs.KINDS) <= kinds
    assert statuses == {"ok", "discrepancies", "unresolved"}
    assert len({entry["id"] for entry in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_corpus_against_kb_offline(entry, kb):
    [result] = refs.check_references(entry["input"], db=kb, offline=True)
    assert_outcome(result, expectation(entry, offline=True))


@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_corpus_against_fake_pubmed(entry, tmp_path, pubmed):
    server, client = pubmed
    empty_kb = store.open_db(tmp_path / "empty.db")
    [result] = refs.check_references(entry["input"], db=empty_kb, client=client)
    assert_outcome(result, expectation(entry, offline=False))
    # Recognisable references are looked up in PubMed (the kb.db is empty); malformed ones never.
    assert (server.count() > 0) is not entry["id"].startswith("malformed")


def test_whole_corpus_as_one_list_keeps_order(kb):
    text = "\n\n".join(entry["input"].strip() for entry in CORPUS)
    results = refs.check_references(text, db=kb, offline=True)
    assert [r["position"] for r in results] == list(range(1, len(CORPUS) + 1))
    for result, entry in zip(results, CORPUS):
        assert_outcome(result, expectation(entry, offline=True))


# ---------------------------------------------------------- the acceptance


def test_news_article_references_offline(kb):
    first, second = refs.check_references(f"{NEWS_REF_1}\n{NEWS_REF_2}\n", db=kb, offline=True)
    assert first["pmid"] == "19453963"
    assert first["discrepancies"] == [
        {"kind": "doi_truncated", "cited": "10.1111/j.1526-4637.2009.00613.",
         "correct": "10.1111/j.1526-4637.2009.00613.x"},
        {"kind": "journal_wrong", "cited": "Arthritis & Rheumatology", "correct": "Pain Med"},
    ]
    assert second["pmid"] == "23359310"
    assert second["discrepancies"] == [
        {"kind": "journal_missing", "cited": None, "correct": "Arthritis Rheum"},
        {"kind": "author_order", "cited": "Younger J, McCue R, Noor N, Mackey S",
         "correct": "Younger J, Noor N, McCue R, Mackey S"},
    ]
    assert second["corrected_ama"] == (
        "Younger J, Noor N, McCue R, Mackey S. Low-dose naltrexone for the treatment of fibromyalgia: "
        "findings of a small, randomized, double-blind, placebo-controlled, counterbalanced, crossover "
        "trial assessing daily pain levels. Arthritis Rheum. 2013;65(2):529-538. doi:10.1002/art.37734"
    )
    assert first["corrected_vancouver"] == CLEAN_2009 + ". PMID: 19453963."
    assert refs.exit_code([first, second]) == 1


def test_correct_citations_report_nothing(kb):
    results = refs.check_references(f"{CLEAN_2009}\n\n{CLEAN_2013}", db=kb, offline=True)
    assert [(r["status"], r["pmid"], r["discrepancies"]) for r in results] == [
        ("ok", "19453963", []), ("ok", "23359310", []),
    ]
    assert refs.exit_code(results) == 0


def assert_stored_citations_check_clean(db):
    """Every paper's own citation line, with and without its DOI, resolves to it and is ok."""
    rows = db.execute("select pmid, citation, doi from papers where citation is not null").fetchall()
    for with_doi in (True, False):
        text = "\n\n".join(c + (f" doi:{d}" if d and with_doi else "") for _, c, d in rows)
        results = refs.check_references(text, db=db, offline=True)
        assert [(r["status"], r["pmid"]) for r in results] == [("ok", pmid) for pmid, _, _ in rows]


def test_stored_citations_check_clean(kb):
    assert_stored_citations_check_clean(kb)


@pytest.mark.skipif(not COMMITTED_DB.exists(), reason="no committed kb.db in this checkout")
def test_news_article_references_against_committed_kb():
    db = sqlite_utils.Database(COMMITTED_DB)
    assert_stored_citations_check_clean(db)
    first, second, third, fourth = refs.check_references(
        "\n".join([NEWS_REF_1, NEWS_REF_2, "3. " + CLEAN_2009, "4. " + CLEAN_2013]), db=db, offline=True
    )
    assert (first["pmid"], {d["kind"] for d in first["discrepancies"]}) == (
        "19453963", {"doi_truncated", "journal_wrong"})
    assert (second["pmid"], {d["kind"] for d in second["discrepancies"]}) == (
        "23359310", {"author_order", "journal_missing"})
    assert [(r["status"], r["pmid"]) for r in (third, fourth)] == [("ok", "19453963"), ("ok", "23359310")]


# ------------------------------------------------------------------ network use


def test_offline_never_touches_the_network(tmp_path, pubmed):
    server, client = pubmed
    empty_kb = store.open_db(tmp_path / "empty.db")
    [result] = refs.check_references(CLEAN_2009, db=empty_kb, client=client, offline=True)
    assert result["status"] == "unresolved"
    assert "kb.db" in result["reason"]
    assert server.count() == 0


def test_db_may_be_a_path_and_a_missing_one_is_not_created(tmp_path):
    build_kb(tmp_path / "kb.db")
    [found] = refs.check_references(CLEAN_2009, db=str(tmp_path / "kb.db"), offline=True)
    [missing] = refs.check_references(CLEAN_2009, db=tmp_path / "none.db", offline=True)
    assert (found["status"], found["pmid"]) == ("ok", "19453963")
    assert missing["status"] == "unresolved" and "nothing to search" in missing["reason"]
    assert not (tmp_path / "none.db").exists()


def test_kb_answers_first_so_pubmed_is_not_asked(kb, pubmed):
    server, client = pubmed
    results = refs.check_references(f"{CLEAN_2009}\n{CLEAN_2013}", db=kb, client=client)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert server.count() == 0


def test_default_client_uses_kb_eutils_url(fake_eutils):
    [result] = refs.check_references(NEWS_REF_2, db=None)
    assert (result["pmid"], result["method"]) == ("23359310", "doi")
    assert fake_eutils.count("efetch.fcgi") == 1


def test_truncated_doi_repaired_in_pubmed_with_one_wildcard_search(tmp_path, pubmed):
    server, client = pubmed
    [result] = refs.check_references(NEWS_REF_1, db=store.open_db(tmp_path / "e.db"), client=client)
    assert (result["method"], result["pmid"]) == ("doi_repaired", "19453963")
    terms = [r.params["term"] for r in server.requests_to("esearch.fcgi")]
    assert "10.1111/j.1526-4637.2009.00613*[aid]" in terms


def test_citation_match_sends_the_pipe_format(tmp_path, pubmed):
    server, client = pubmed
    text = "Younger J, Mackey S. Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot study. Pain Medicine. 2009;10(4):663-72."
    [result] = refs.check_references(text, db=store.open_db(tmp_path / "e.db"), client=client)
    assert (result["method"], result["status"]) == ("ecitmatch", "ok")
    [request] = server.requests_to("ecitmatch.cgi")
    assert request.params["bdata"] == "Pain Med|2009|10|663|Younger J|ref|"


def test_unreachable_pubmed_falls_back_to_kb_and_says_so_once(kb, make_client):
    dead = make_client(None, max_retries=0)
    text = f"{CLEAN_2009}\n\nDoe J, Roe R. Knee bracing in amateur cyclists: a cohort study. Knee. 2011;19(3):400-5.\n\n" \
           "Roe R, Doe J. Another unrelated paper about running shoes. Gait Posture. 2012;20(1):10-5."
    results = refs.check_references(text, db=kb, client=dead)
    assert [r["status"] for r in results] == ["ok", "unresolved", "unresolved"]
    assert results[0]["note"] is None
    assert "PubMed not reachable" in results[1]["note"]
    report = refs.format_report(results)
    assert report.count("PubMed not reachable") == 1


# --------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text, fields",
    [
        (
            "Younger J, Mackey S. Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot study. "
            "Pain Med. 2009 May-Jun;10(4):663-72. doi: 10.1111/j.1526-4637.2009.00613.x. Epub 2009 May 11. "
            "PMID: 19453963; PMCID: PMC2891387.",
            {"journal": "Pain Med", "year": 2009, "volume": "10", "issue": "4", "pages": "663-72",
             "doi": "10.1111/j.1526-4637.2009.00613.x", "pmid": "19453963"},
        ),
        (
            "Younger, J., Noor, N., McCue, R., & Mackey, S. (2013). Low-dose naltrexone: is it a trial? "
            "Arthritis & Rheumatism, 65(2), 529‒538. https://doi.org/10.1002/art.37734",
            {"title": "Low-dose naltrexone: is it a trial?", "journal": "Arthritis & Rheumatism",
             "year": 2013, "pages": "529‒538", "doi": "10.1002/art.37734"},
        ),
        (
            "Bruun KD, Christensen R, Amris K, et al. Naltrexone 6 mg once daily. Lancet Rheumatol. "
            "2024;6(1):e31-e39.",
            {"authors": ["Bruun KD", "Christensen R", "Amris K", "et al"], "pages": "e31-e39"},
        ),
        (
            "Parkitny L, Younger J. Reduced cytokines after low-dose naltrexone. J. Clin. Med. 2017;5:16.",
            {"title": "Reduced cytokines after low-dose naltrexone", "journal": "J. Clin. Med",
             "volume": "5", "issue": None, "pages": "16"},
        ),
        (
            "Hegde NC, V D, Azi LMTDA, et al. A meta-analysis. J Am Dent Assoc. 2020;151(12):891-902.e1.",
            {"authors": ["Hegde NC", "V D", "Azi LMTDA", "et al"], "pages": "891-902.e1"},
        ),
        (
            "Rodríguez-Freire C, Del Pino-Gaya B. A title with a subtitle: part two. Some New Journal. 2026;3(1):1-9.",
            {"authors": ["Rodríguez-Freire C", "Del Pino-Gaya B"], "journal": "Some New Journal"},
        ),
    ],
)
def test_parse_reference_fields(text, fields):
    cited = refs.cited_fields(refs.parse_reference(text))
    assert {k: cited[k] for k in fields} == fields


def test_split_references_rejoins_wrapped_unnumbered_lines():
    text = (
        "Younger J, Mackey S. Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot\n"
        "study. Pain Med. 2009;10(4):663-72.\n"
        "Younger J, Noor N, McCue R, Mackey S. Low-dose naltrexone for the treatment of\n"
        "fibromyalgia. Arthritis Rheum. 2013;65(2):529-\n"
        "38. doi:10.1002/art.\n"
        "37734\n"
        "PMID: 23359310\n"
        "Parkitny L, Younger J. Reduced pro-inflammatory cytokines. Biomedicines. 2017;5(2):16.\n"
    )
    parts = refs.split_references(text)
    assert len(parts) == 3
    assert parts[0].endswith("a pilot study. Pain Med. 2009;10(4):663-72.")
    assert "2013;65(2):529-38. doi:10.1002/art.37734 PMID: 23359310" in parts[1]


def test_split_references_skips_a_heading_and_keeps_numbering():
    text = "References\n\n1. Younger J, Mackey S. A title\n   continued. Pain Med. 2009;10(4):663-\n72.\n2) Smith A. Another. 2010.\n"
    assert refs.split_references(text) == [
        "1. Younger J, Mackey S. A title continued. Pain Med. 2009;10(4):663-72.",
        "2) Smith A. Another. 2010.",
    ]


def test_malformed_lines_are_unresolved_not_errors(kb):
    text = "1. ???\n2. \u00a0—\n3. Younger J.\n4. " + CLEAN_2009
    results = refs.check_references(text, db=kb, offline=True)
    assert [r["status"] for r in results] == ["unresolved", "unresolved", "unresolved", "ok"]
    assert all("no recognisable reference" in r["reason"] for r in results[:3])
    assert refs.exit_code(results) == 2


# --------------------------------------------------------------------- journals


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("Arthritis Rheum", "Arthritis & Rheumatism", True),
        ("Arthritis Rheum.", "Arthritis and rheumatism", True),
        ("Arthritis Rheumatol", "Arthritis & Rheumatology", True),
        ("Arthritis Rheumatol", "Arthritis Rheum", False),
        ("Arthritis & Rheumatology", "Arthritis and Rheumatism", False),
        ("Arthritis & Rheumatology", "Pain Med", False),
        ("Pain Med.", "Pain Medicine", True),
        ("Pain", "Pain Med", False),
        ("PAIN Reports", "Pain Rep", True),
        ("Rheumatology (Oxford)", "Rheumatology", True),
        ("The Lancet Rheumatology", "Lancet Rheumatol", True),
        ("Frontiers in Pain Research", "Front Pain Res (Lausanne)", True),
        ("Cochrane Database of Systematic Reviews", "Cochrane Database Syst Rev", True),
        ("Rev Some Unlisted", "Review of Some Unlisted", True),
        ("Some Unlisted Journal", "Another Unlisted Journal", False),
    ],
)
def test_journals_compare_as_journals(a, b, same):
    journals = refs.Journals(refs.journal_entries())
    assert journals.same(a, b) is same
    assert journals.same(b, a) is same


def test_kb_pairs_extend_journals_but_never_merge_known_ones():
    journals = refs.Journals(
        refs.journal_entries(),
        pairs=[("Journal of invented studies", "J Invent Stud"), ("Arthritis & Rheumatology", "Arthritis Rheum")],
    )
    assert journals.same("J Invent Stud", "Journal of Invented Studies")
    assert not journals.same("Arthritis & Rheumatology", "Arthritis Rheum")


def test_every_journal_entry_has_an_iso_abbreviation_and_a_title():
    entries = refs.journal_entries()
    assert all(e.get("iso") and e.get("title") for e in entries)
    assert len({e["iso"] for e in entries}) == len(entries)


# -------------------------------------------------------------- comparing pieces


@pytest.mark.parametrize(
    "pages, expected",
    [("663-72", ("663", "672")), ("663–672", ("663", "672")), ("e31-e39", ("e31", "e39")),
     ("e31-9", ("e31", "e39")), ("S12-8", ("S12", "S18")), ("16", ("16", "16")), ("1099-101", ("1099", "1101"))],
)
def test_page_ranges_are_compared_as_ranges(pages, expected):
    assert refs.page_range(pages) == expected


@pytest.mark.parametrize(
    "cited, et_al, kinds",
    [
        (["Younger J", "Noor N", "McCue R", "Mackey S"], False, []),
        (["Younger JW", "Noor N", "McCue R", "Mackey S"], False, []),
        (["Younger J", "Noor N"], True, []),
        (["Younger J", "McCue R"], True, ["author_missing"]),
        (["Noor N", "Younger J", "McCue R", "Mackey S"], False, ["author_order"]),
        (["Younger J", "Noor N", "McCue R"], False, ["author_missing"]),
        (["Younger J", "Nour N", "McCue R", "Mackey S"], False, ["author_wrong"]),
        (["Younger J", "Noor N", "McCue R", "Mackey S", "Smith A"], False, ["author_wrong"]),
    ],
)
def test_compare_authors(cited, et_al, kinds):
    correct = ["Younger J", "Noor N", "McCue R", "Mackey S"]
    assert [k for k, _, _ in refs.compare_authors(cited, et_al, correct)] == kinds


def test_author_wrong_names_the_replacement():
    cited = ["Younger J", "Mackay S"]
    assert refs.compare_authors(cited, False, ["Younger J", "Mackey S"]) == [("author_wrong", "Mackay S", "Mackey S")]


def test_corrected_ama_shortens_long_author_lists(tmp_path):
    db = build_kb(tmp_path / "all.db")
    record = refs.record_from_kb(db, "38258677")
    assert refs.corrected_ama(record).startswith("Bruun KD, Christensen R, Amris K, et al. Naltrexone 6 mg")
    assert "2024;6(1):e31-e39. doi:10.1016/s2665-9913(23)00278-3" in refs.corrected_ama(record)
    assert refs.corrected_vancouver(record).startswith(
        "Bruun KD, Christensen R, Amris K, Vaegter HB, Blichfeldt-Eckhardt MR, Bye-Møller L, et al. ")


# ------------------------------------------------------------ reporting, saving


def test_exit_codes():
    def result(status):
        return {"status": status}
    assert refs.exit_code([result("ok"), result("ok")]) == 0
    assert refs.exit_code([result("ok"), result("discrepancies")]) == 1
    assert refs.exit_code([result("discrepancies"), result("unresolved")]) == 2
    assert refs.exit_code([]) == 2


def test_format_report_names_each_discrepancy_and_the_correction(kb):
    results = refs.check_references(f"{NEWS_REF_1}\n{NEWS_REF_2}\n3. Not a reference at all", db=kb, offline=True)
    report = refs.format_report(results)
    assert "- doi_truncated: cited 10.1111/j.1526-4637.2009.00613.; correct 10.1111/j.1526-4637.2009.00613.x" in report
    assert "- journal_missing: cited (none); correct Arthritis Rheum" in report
    assert "corrected (AMA):       Younger J, Noor N, McCue R, Mackey S." in report
    assert "UNRESOLVED: no recognisable reference" in report
    assert report.rstrip().endswith("3 reference(s): 0 ok, 2 with discrepancies, 1 unresolved")


def test_results_are_json_serialisable_with_the_promised_keys(kb):
    results = refs.check_references(f"{NEWS_REF_1}\n{NEWS_REF_2}", db=kb, offline=True)
    decoded = json.loads(json.dumps(results))
    for item in decoded:
        assert {"input", "pmid", "doi", "status", "discrepancies", "corrected_citation"} <= set(item)
        assert all(set(d) == {"kind", "cited", "correct"} for d in item["discrepancies"])
    assert decoded[1]["corrected_citation"].startswith("Younger J, Noor N, McCue R, Mackey S.")


def test_save_checks_stores_one_row_per_reference(kb):
    results = refs.check_references(f"{NEWS_REF_1}\n{NEWS_REF_2}\n3. nonsense", db=kb, offline=True)
    ids = refs.save_checks(kb, results)
    rows = list(kb["reference_checks"].rows_where(order_by="position"))
    assert [r["id"] for r in rows] == ids
    assert [(r["position"], r["pmid"], r["status"]) for r in rows] == [
        (1, "19453963", "discrepancies"), (2, "23359310", "discrepancies"), (3, None, "unresolved"),
    ]
    assert [d["kind"] for d in json.loads(rows[0]["discrepancies"])] == ["doi_truncated", "journal_wrong"]
    assert rows[0]["corrected_ama"].startswith("Younger J, Mackey S. Fibromyalgia")
    assert rows[0]["checked_at"] and rows[0]["confidence"] > 0.8


def test_reference_checks_table_is_part_of_the_declared_shape(tmp_path):
    db = store.open_db(tmp_path / "fresh.db")
    assert {"input", "pmid", "doi", "status", "confidence", "discrepancies", "corrected_ama",
            "corrected_vancouver", "checked_at"} <= set(db["reference_checks"].columns_dict)
