"""The PubMed XML parser (harvest.parse) on the project's hand-written fixtures, and
conformance on real NCBI responses recorded in ../shared/fixtures/eutils (beside the project root)."""

from pathlib import Path

import pytest
from Bio import Entrez

from conftest import FIXTURE_FILES, fixture_bytes
from fake_eutils import PUBMED_DOCTYPE, FakeEutils, synthetic_records
from harvest.fetch import EutilsError, parse_esearch
from harvest.parse import ParseError, parse_pubmed_xml, plain_text, safe_html, split_records

SHARED = Path(__file__).parents[2] / "shared" / "fixtures" / "eutils"
DTD_DIR = Path(Entrez.__file__).parent / "DTDs"


def shared(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"recorded NCBI response {path} is not present on this machine")
    return path.read_bytes()


def parse_one(name):
    records, skipped = parse_pubmed_xml(fixture_bytes(name))
    assert len(records) == 1 and skipped == []
    return records[0]


@pytest.fixture(scope="module")
def edge():
    records, skipped = parse_pubmed_xml(fixture_bytes("pubmed_edge_cases.xml"))
    return {r["pmid"]: r for r in records}, skipped


# ------------------------------------------------------------ project fixtures


def test_pilot_citation_facts():
    r = parse_one("pubmed_19453963.xml")
    assert r["pmid"] == "19453963"
    assert r["doi"] == "10.1111/j.1526-4637.2009.00613.x"
    assert r["title"] == "Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot study."
    assert (r["journal_iso"], r["year"], r["volume"], r["issue"], r["pages"]) == ("Pain Med", 2009, "10", "4", "663-72")
    assert [(a["last_name"], a["initials"]) for a in r["authors"]] == [("Younger", "J"), ("Mackey", "S")]
    assert [s["label"] for s in r["abstract_sections"]] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert r["abstract"].startswith("BACKGROUND: ") and "\nCONCLUSIONS: " in r["abstract"]
    fibro = next(m for m in r["mesh"] if m["descriptor"] == "Fibromyalgia")
    assert fibro["major"] is False and fibro["qualifiers"] == [{"name": "drug therapy", "ui": "Q000188", "major": True}]
    assert r["pmcid"] is None and r["date_revised"] == "2022-03-31"


def test_crossover_citation_facts_and_cites_dropped():
    r = parse_one("pubmed_23359310.xml")
    assert (r["pmid"], r["doi"]) == ("23359310", "10.1002/art.37734")
    assert r["title"].startswith("Low-dose naltrexone for the treatment of fibromyalgia: findings of a small,")
    assert (r["journal_iso"], r["year"], r["volume"], r["issue"], r["pages"], r["pub_date"]) == (
        "Arthritis Rheum", 2013, "65", "2", "529-38", "2013-02")
    assert [a["last_name"] for a in r["authors"]] == ["Younger", "Noor", "McCue", "Mackey"]
    assert "Randomized Controlled Trial" in [t["name"] for t in r["publication_types"]]
    assert r["comments_corrections"] == []  # its only link is a "Cites"
    assert [s["nlm_category"] for s in r["abstract_sections"]] == ["OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"]


def test_medline_date_gives_year(edge):
    r = edge[0]["99000001"]
    assert r["year"] == 2019 and r["pub_date"] == "2019"


def test_season_maps_to_month(edge):
    assert edge[0]["99000002"]["pub_date"] == "2018-12"  # Winter


def test_inline_markup_kept_and_script_text_escaped(edge):
    r = edge[0]["99000001"]
    assert "<i>TLR4</i>" in r["title_html"] and "IL-1<sup>β</sup>" in r["title_html"]
    assert "<script" not in r["title_html"]
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in r["title_html"]
    assert r["title"] == 'Low-dose naltrexone and TLR4 signalling: IL-1β in fibromyalgia <script>alert("x")</script> revisited.'
    section = r["abstract_sections"][0]
    assert section["label"] is None and "<i>TLR4</i>" in section["html"] and "5 &lt; 10" in section["html"]
    assert "5 < 10 pg/mL" in section["text"] and r["abstract"] == section["text"]


def test_collective_author_and_orcid(edge):
    authors = edge[0]["99000001"]["authors"]
    assert [a["position"] for a in authors] == [1, 2, 3]
    assert authors[0]["orcid"] == "0000-0002-1825-0097"  # URL form reduced to the id
    assert len(authors[0]["affiliations"]) == 2
    assert (authors[1]["last_name"], authors[1]["fore_name"]) == ("Østergaard", "Åse")
    assert authors[1]["orcid"] == "0000-0002-1825-0097"  # PubMed's undashed form, dashed
    assert authors[2]["collective_name"] == "LDN Fibro Study Group" and authors[2]["last_name"] is None


def test_databank_grants_keywords(edge):
    r = edge[0]["99000001"]
    assert r["registry_ids"] == [{"registry": "ClinicalTrials.gov", "accession": "NCT09999901"}]
    assert r["grants"] == [{"grant_id": "R99 XX000001", "agency": "Invented Foundation", "country": "United States"}]
    assert r["keywords"] == [{"keyword": "low-dose naltrexone", "major": False}, {"keyword": "TLR4", "major": True}]
    assert r["pmcid"] == "PMC9990001"


def test_comments_corrections_keep_links_drop_cites(edge):
    links = edge[0]["99000001"]["comments_corrections"]
    assert [(c["ref_type"], c["ref_pmid"]) for c in links] == [("ErratumIn", "99000009"), ("CommentOn", "23359310")]
    assert links[1]["ref_source"] == "Arthritis Rheum. 2013 Feb;65(2):529-38"


def test_doi_only_in_elocation_and_lower_cased(edge):
    r = edge[0]["99000002"]
    assert r["doi"] == "10.5555/irr.2018.0042" and r["dois"] == ["10.5555/irr.2018.0042"]
    assert r["pages"] is None and r["issue"] is None
    assert edge[0]["99000001"]["doi"] == "10.5555/jipr.2019.0101"  # upper case in the XML


def test_book_article_skipped_with_reason(edge):
    records, skipped = edge
    assert sorted(records) == ["99000001", "99000002"]
    assert skipped == [("99000003", "PubmedBookArticle: book chapter, not a journal article")]


def test_split_records_round_trip(edge):
    source = fixture_bytes("pubmed_edge_cases.xml")
    pieces = split_records(source)
    assert sorted(pieces) == ["99000001", "99000002"]  # the book chapter is not stored
    for pmid, piece in pieces.items():
        assert PUBMED_DOCTYPE.encode() in piece
        (record,), _ = parse_pubmed_xml(piece)
        assert record == edge[0][pmid]


def test_unknown_element_is_a_parse_error():
    source = fixture_bytes("pubmed_19453963.xml").replace(b"<Language>eng</Language>", b"<Language>eng</Language><Flavour>x</Flavour>")
    with pytest.raises(ParseError, match="unreadable PubMed XML"):
        parse_pubmed_xml(source)


def test_truncated_document_is_a_parse_error():
    source = fixture_bytes("pubmed_23359310.xml")
    with pytest.raises(ParseError):
        parse_pubmed_xml(source[: len(source) // 2])


def test_esearch_document_is_not_a_pubmed_set():
    with pytest.raises(ParseError):
        parse_pubmed_xml(shared("esearch1.xml"))


def test_stream_input_accepted():
    import io

    records, _ = parse_pubmed_xml(io.BytesIO(fixture_bytes("pubmed_19453963.xml")))
    assert records[0]["pmid"] == "19453963"


def test_safe_html_drops_attributes_and_unknown_tags():
    assert safe_html('<i class="x">a</i><b onclick="y()">b</b><span>c</span>') == "<i>a</i><b>b</b>c"
    assert plain_text("p<sub>trend</sub> &lt; 0.05") == "ptrend < 0.05"


# ------------------------------------------------------------- DTD conformance


def _dtd():
    etree = pytest.importorskip("lxml.etree")
    return etree, etree.DTD(str(DTD_DIR / "pubmed_250101.dtd"))


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixtures_valid_against_pubmed_2025_dtd(name):
    etree, dtd = _dtd()
    source = fixture_bytes(name)
    assert source.splitlines()[1].decode() == PUBMED_DOCTYPE
    assert dtd.validate(etree.fromstring(source)), dtd.error_log.filter_from_errors()


def test_fake_server_records_valid_against_dtd_and_parser():
    etree, dtd = _dtd()
    server = FakeEutils(records=synthetic_records(40))
    ids = sorted(server.entries)
    status, _, body = server.efetch({"db": "pubmed", "id": ",".join(ids), "retmode": "xml"})
    assert status == 200
    assert dtd.validate(etree.fromstring(body)), dtd.error_log.filter_from_errors()
    records, _ = parse_pubmed_xml(body)
    assert [r["pmid"] for r in records] == ids
    assert all(r["doi"] and r["title"] and r["abstract_sections"] and r["year"] for r in records)


# --------------------------------------------------- recorded NCBI responses


def test_pubmed4_conformance():
    (r,), skipped = parse_pubmed_xml(shared("pubmed4.xml"))
    assert skipped == []
    assert r["pmid"] == "27797938"
    assert r["doi"] == "10.1136/gutjnl-2016-312510" and r["pmcid"] == "PMC5442267"
    assert [s["label"] for s in r["abstract_sections"]] == ["OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert "genetic variants at the <i>TERT</i> gene region" in r["title_html"]
    assert "<i>" not in r["title"] and "at the TERT gene" in r["title"]
    results = r["abstract_sections"][2]
    assert "p<sub>trend</sub>=0.048" in results["html"] and "r<sup>2</sup>&lt;0.25" in results["html"]
    assert "r2<0.25" in results["text"]
    mesh = {m["descriptor"]: m for m in r["mesh"]}
    assert mesh["Telomere Shortening"]["major"] is True
    assert mesh["Adenocarcinoma"]["major"] is False
    assert [q["major"] for q in mesh["Adenocarcinoma"]["qualifiers"]] == [True, True]
    assert {"ui": "D064888", "name": "Observational Study"} in r["publication_types"]
    assert r["comments_corrections"] == [
        {"ref_type": "CommentIn", "ref_pmid": "27920200", "ref_source": "Gut. 2017 Jun;66(6):1"}
    ]  # the 48 "Cites" entries are dropped
    assert (r["year"], r["pub_date"], r["pages"], r["journal_iso"]) == (2017, "2017-06", "1116-1122", "Gut")
    assert r["keywords"] == [{"keyword": "PANCREATIC CANCER", "major": True}]
    assert {"grant_id": "R01 CA034944", "agency": "NCI NIH HHS", "country": "United States"} in r["grants"]


def test_pubmed1_conformance():
    records, _ = parse_pubmed_xml(shared("pubmed1.xml"))
    assert [r["pmid"] for r in records] == ["12091962", "9997"]
    old, heme = records
    assert old["doi"] is None and old["dois"] == []
    assert old["pub_date"] == "1990-03" and old["year"] == 1990  # Season "Spring"
    assert old["abstract"] is None and old["abstract_sections"] == []
    assert heme["doi"] == "10.1016/0005-2795(76)90109-4"  # only in PubmedData/ArticleIdList
    assert heme["pub_date"] == "1976-09-28" and heme["pages"] == "179-91"


def test_recorded_pubmed1_split_and_reparse():
    source = shared("pubmed1.xml")
    pieces = split_records(source)
    assert sorted(pieces) == ["12091962", "9997"]
    for pmid, piece in pieces.items():
        (record,), _ = parse_pubmed_xml(piece)
        assert record["pmid"] == pmid


def test_esearch1_conformance():
    pmids, count = parse_esearch(shared("esearch1.xml"))
    assert count == 63 and len(pmids) == 20
    assert pmids[0] == "41282813" and pmids[-1] == "37810457"


def test_esearch8_phrase_not_found_is_empty_not_error():
    assert parse_esearch(shared("esearch8.xml")) == ([], 0)


def test_esearch_garbage_is_an_eutils_error():
    with pytest.raises(EutilsError, match="malformed XML"):
        parse_esearch(shared("esearch1.xml")[:300])


def test_fake_esearch_matches_recorded_shape():
    recorded = shared("esearch8.xml").decode()
    server = FakeEutils()
    body = server.esearch({"db": "pubmed", "term": "abcXYZ"})[2].decode()
    for fragment in ("<Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart><IdList/><TranslationSet/>",
                     "<ErrorList><PhraseNotFound>abcXYZ</PhraseNotFound></ErrorList>",
                     "<WarningList><OutputMessage>No items found.</OutputMessage></WarningList></eSearchResult>"):
        assert fragment in recorded and fragment in body
    assert recorded.splitlines()[1] == body.splitlines()[1]  # same DOCTYPE line


def test_a_newer_pubmed_dtd_than_biopython_ships_still_parses_offline():
    newer = fixture_bytes("pubmed_23359310.xml").replace(b"pubmed_250101.dtd", b"pubmed_990101.dtd")
    records, _ = parse_pubmed_xml(newer)
    assert records[0]["pmid"] == "23359310"
