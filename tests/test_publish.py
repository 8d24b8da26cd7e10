"""The published site, through Datasette's own test client, against tests/publish_db.py's kb.db."""

import asyncio
import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import bibtexparser
import pytest
import rispy
import sqlite_utils

import publish_db as kb
from harvest import store

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("publish") / "kb.db"
    kb.build(path).close()
    return path


@pytest.fixture(scope="module")
def site(db_path):
    return kb.make_datasette(db_path)


def fetch(site, path, method="get", **kwargs):
    return asyncio.run(getattr(site.client, method)(path, **kwargs))


def rows(site, path):
    """All rows of a page as objects: /kb/x?a=b -> /kb/x.json?a=b&_shape=objects&_size=max."""
    page, _, query = path.partition("?")
    response = fetch(site, f"{page}.json?{query}&_shape=objects&_size=max")
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def by_key(items):
    return {row["paper_id"]: row for row in items}


# ---- metadata -------------------------------------------------------------------------------


def test_every_table_and_column_is_described(db_path):
    tables = kb.metadata()["databases"]["kb"]["tables"]
    connection = sqlite3.connect(db_path)
    names = [
        name for (name,) in connection.execute(
            "select name from sqlite_master where type in ('table', 'view') "
            "and name not like 'sqlite_%' and name not like '%_fts_%'"
        )
    ]
    missing = []
    for name in names:
        described = tables.get(name, {})
        if not described.get("description"):
            missing.append(name)
        if name.endswith("_fts"):  # an FTS index's columns are its table's columns
            continue
        for (column,) in connection.execute(f"select name from pragma_table_info('{name}')"):
            if not described.get("columns", {}).get(column):
                missing.append(f"{name}.{column}")
    assert missing == []


def test_site_metadata_says_what_where_and_under_which_licence(site):
    page = fetch(site, "/").text
    assert "<strong>How it is built.</strong>" in page
    assert "CC BY 4.0" in page and "NLM" in page
    assert "last harvested from PubMed on 2026-11-20" in page
    assert 'action="/kb/search_papers"' in page
    assert '<label for="kb-search-input">Search titles, abstracts, curated summaries, results and outcomes</label>' in page


def test_raw_and_internal_tables_are_hidden(site):
    database = fetch(site, "/kb.json").json()
    hidden = {t["name"] for t in database["tables"] if t["hidden"]}
    assert {"raw_records", "tag_state", "harvest_state", "doi_lookups", "discoveries", "papers_fts"} <= hidden
    assert "papers" not in hidden


def test_serving_is_immutable_and_limited(site):
    # settings.json is the one place the settings live: the served site runs on exactly them,
    # and they must keep a SQL time limit (Datasette's default would be silently used otherwise)
    served = fetch(site, "/-/settings.json").json()
    assert {name: served[name] for name in kb.SETTINGS} == kb.SETTINGS
    assert 0 < kb.SETTINGS["sql_time_limit_ms"] <= 5000
    assert kb.SETTINGS["suggest_facets"] is False  # the main cost under load, for no reader benefit
    [database] = fetch(site, "/-/databases.json").json()
    assert database["is_mutable"] is False
    # the whole database can be downloaded, and is the served file
    download = fetch(site, "/kb.db")
    assert download.status_code == 200 and download.content[:16] == b"SQLite format 3\x00"


def test_makefile_serves_through_kb_serve_and_the_settings_file():
    makefile = (kb.ROOT / "Makefile").read_text()
    assert "--setting" not in makefile and "$(KB) serve" in makefile
    command = kb.serve_command("kb.db", "inspect.json", 8001)
    assert command[1:2] == ["serve"] and not any(part.startswith("--setting") for part in command)


# ---- canned queries ---------------------------------------------------------------------------


def test_there_are_at_least_six_canned_queries_and_each_answers(site):
    queries = kb.metadata()["databases"]["kb"]["queries"]
    assert len(queries) >= 6
    for name in queries:
        response = fetch(site, f"/kb/{name}.json?q=naltrexone")
        assert response.status_code == 200, (name, response.text)
        assert response.json()["ok"] is True


def test_evidence_table_has_one_row_per_clinical_study(site):
    studies = by_key(rows(site, "/kb/evidence_table"))
    # reviews, protocols and errata are not clinical studies
    assert set(studies) == {kb.RCT, kb.OLD, kb.CURATED_ONLY}
    rct = studies[kb.RCT]
    assert json.loads(rct["design"]) == ["rct", "crossover", "double_blind", "placebo_controlled"]
    assert (rct["n"], rct["dose"], rct["duration"], rct["comparator"]) == (31, "4.5 mg/day", "12 weeks", "placebo")
    assert rct["primary_outcome"] == "daily pain intensity (0-100 scale)"
    assert rct["result_direction"] == "favours_ldn"
    assert json.loads(rct["registry_ids"]) == ["NCT00568555"]
    assert (rct["pmid"], rct["pubmed_url"]) == (kb.RCT, "https://pubmed.ncbi.nlm.nih.gov/99000001/")
    assert rct["pmc_url"] == "https://pmc.ncbi.nlm.nih.gov/articles/PMC9900001/"
    assert rct["evidence_from"] == "curated"
    # a paper nobody curated yet is described by its auto tags
    assert studies[kb.OLD]["evidence_from"] == "auto tags"
    assert json.loads(studies[kb.OLD]["design"]) == ["case_report"]
    assert studies[kb.OLD]["duration"] == "6 weeks"
    assert studies[kb.OLD]["duration_weeks"] == 6.0
    assert (studies[kb.CURATED_ONLY]["pmid"], studies[kb.CURATED_ONLY]["pubmed_url"]) == (None, None)
    assert studies[kb.CURATED_ONLY]["doi_url"] == "https://doi.org/10.3390/biomed99.1087"


def test_clinical_evidence_reads_in_words_with_the_study_linked(site):
    response = fetch(site, "/kb/clinical_evidence.json?_shape=objects")
    assert response.json()["columns"] == [
        "study", "design", "n", "dose", "duration", "comparator", "primary_outcome", "result", "direction",
        "integrity"]
    # the JSON keeps the values; the page shows their labels
    rct = next(r for r in response.json()["rows"] if r["study"] == kb.RCT)
    assert rct["direction"] == "favours_ldn"
    page = fetch(site, "/kb/clinical_evidence").text
    assert re.search(r'<a href="/kb/papers/99000001" title="[^"]*">Younger 2013</a>', page)
    assert "randomised controlled trial, crossover, double-blind, placebo-controlled" in page
    assert ">favours LDN<" in page
    for raw in ("placebo_controlled", "double_blind", "favours_ldn"):
        assert raw not in page
    assert "<title>Evidence table: clinical studies · LDN evidence base</title>" in page


def test_labels_view_joins_values_to_words(site):
    found = fetch(site, "/kb.json", params={"_shape": "objects", "sql": (
        "select e.paper_id, l.label from evidence_table e "
        "join labels l on l.vocabulary = 'direction' and l.value = e.result_direction")}).json()["rows"]
    assert {"paper_id": kb.RCT, "label": "favours LDN"} in found
    words = {(r["vocabulary"], r["value"]): r["label"] for r in rows(site, "/kb/labels")}
    assert words[("design", "placebo_controlled")] == "placebo-controlled"
    assert words[("direction", "no_difference")] == "no difference"


def test_tag_values_read_as_words_in_tag_tables(site):
    page = fetch(site, f"/kb/tags?paper_id={kb.RCT}&kind=design").text
    cells = set(re.findall(r'<td class="col-value[^"]*">(.*?)</td>', page))
    assert {"randomised controlled trial", "double-blind"} <= cells
    assert not {"rct", "double_blind"} & cells
    [row] = rows(site, f"/kb/tags?paper_id={kb.RCT}&kind=design&value=placebo_controlled")
    assert row["value"] == "placebo_controlled"  # the data keeps the value


def test_every_vocabulary_value_has_a_label():
    from harvest import labels, tag
    from harvest.curate import DIRECTIONS

    for vocabulary, values in (("design", tag.VOCABULARY_VALUES["design"]), ("outcome", tag.VOCABULARY_VALUES["outcome"]),
                               ("direction", DIRECTIONS)):
        assert set(values) <= set(labels.LABELS[vocabulary]), vocabulary


def test_publication_role_tells_results_from_protocols_and_reviews(site):
    roles = {r["paper_id"]: r["publication_role"] for r in rows(site, "/kb/paper_facets")}
    assert roles[kb.RCT] == "results" and roles[kb.PROTOCOL] == "protocol" and roles[kb.REVIEW] == "review"
    page = fetch(site, "/kb/paper_facets").text
    assert ">study results</a>" in page and ">protocol</a>" in page  # facet values as words


def test_doses_studied(site):
    doses = rows(site, "/kb/doses")
    assert [(d["paper_id"], d["dose"], d["min_mg_per_day"], d["max_mg_per_day"], d["band"], d["source"]) for d in doses] == [
        (kb.RCT, "4.5 mg/day", 4.5, 4.5, "low", "curated"),
        (kb.CURATED_ONLY, "0.5-4.5 mg/day", 0.5, 4.5, "low", "curated"),
    ]


def test_outcomes_by_design(site):
    cells = {(r["outcome"], r["design"]): r for r in rows(site, "/kb/outcomes")}
    assert cells[("pain_intensity", "rct")]["papers"] == 1
    assert cells[("pain_intensity", "rct")]["favours_ldn"] == 1
    assert json.loads(cells[("pain_intensity", "retrospective")]["paper_ids"]) == [kb.CURATED_ONLY]


def test_adverse_events_reported(site):
    events = {r["adverse_event"]: r for r in rows(site, "/kb/adverse_events")}
    assert events["vivid dreams"]["papers"] == 2
    assert sorted(json.loads(events["vivid dreams"]["paper_ids"])) == [kb.RCT, kb.OLD]
    assert events["headache"]["papers"] == 1


def test_trials_and_their_publications(site):
    found = {(r["registry_id"], r["paper_id"]): r for r in rows(site, "/kb/trials_and_publications")}
    assert found[(kb.TRIAL, kb.PROTOCOL)]["role"] == "protocol"
    reported = found[("NCT00568555", kb.RCT)]
    assert reported["role"] == "reports the trial"
    assert reported["registry_url"] == "https://clinicaltrials.gov/study/NCT00568555"


def test_each_correction_and_comment_is_listed_once_beside_the_paper_it_concerns(site):
    found = rows(site, "/kb/corrections_retractions_comments")
    # the erratum is named by both PubMed records and by a curated link: one row
    assert sorted((r["later_paper"], r["relation"], r["concerns"]) for r in found) == sorted([
        (kb.ERRATUM, "correction of", kb.RCT),
        (kb.HOSTILE, "re-analysis of", kb.REVIEW),
    ])
    erratum = next(r for r in found if r["later_paper"] == kb.ERRATUM)
    assert set(erratum["origin"].split(", ")) == {"PubMed", "curated"}
    page = fetch(site, "/kb/corrections_retractions_comments").text
    assert re.search(r'<a href="/kb/papers/99000001" title="[^"]*">Younger 2013</a>', page)
    assert "Erratum 2013" not in page and ">Erratum: Low-dose naltrexone" in page  # no author: its title's first words


def test_a_letter_linked_to_no_paper_yet_is_listed_as_such(db_path, tmp_path):
    copy = tmp_path / "kb.db"
    shutil.copy(db_path, copy)
    letter = "99000009"
    with sqlite3.connect(copy) as connection:
        connection.execute("insert into papers (paper_id, pmid, title, year, citation, source) "
                           "values (?, ?, ?, 2026, ?, 'pubmed')",
                           [letter, letter, "A re-analysis suggests less benefit", "Letter A. A re-analysis. J Test. 2026."])
        connection.execute("insert into tags (paper_id, kind, value, source) values (?, 'design', 'letter', 'auto')",
                           [letter])
    found = rows(kb.make_datasette(copy), "/kb/corrections_retractions_comments")
    assert {"later_paper": letter, "relation": "letter", "concerns": "not yet identified on the pages checked",
            "origin": "pubmed"} in found


def test_related_papers_name_both_directions(site):
    related = {(r["paper_id"], r["relation"], r["other_key"]) for r in rows(site, "/kb/related_papers")}
    assert (kb.RCT, "included in review", kb.REVIEW) in related
    assert (kb.REVIEW, "review including", kb.RCT) in related
    assert (kb.PROTOCOL, "protocol of", kb.TRIAL) in related


def test_new_since_last_harvest(site):
    new = {r["study"] for r in rows(site, "/kb/new_papers")}
    assert kb.OLD not in new
    assert {kb.RCT, kb.CURATED_ONLY} <= new


def test_new_since_last_harvest_is_everything_before_any_run(db_path, tmp_path):
    copy = tmp_path / "kb.db"
    shutil.copy(db_path, copy)
    connection = sqlite3.connect(copy)
    connection.execute("delete from harvest_runs")
    (papers,) = connection.execute("select count(*) from papers").fetchone()
    (new,) = connection.execute("select count(*) from new_since_last_harvest").fetchone()
    assert new == papers == 8


def test_unresolved_dois(site):
    [row] = rows(site, "/kb/unresolved_doi_list")
    assert (row["doi"], row["reason"]) == ("10.9999/not-in-pubmed", "no PubMed record")


def test_search_papers_is_ranked_full_text(site):
    found = rows(site, "/kb/search_papers?q=crossover+naltrexone")
    assert [r["paper_id"] for r in found] == [kb.RCT]
    assert found[0]["pmid"] == kb.RCT  # and the PubMed ID, for export
    assert "<mark>crossover</mark>" in found[0]["matched_text"]
    page = fetch(site, "/kb/search_papers?q=crossover").text
    results = page[page.index('<table class="rows-and-columns">'):page.index("</table>")]
    assert "<mark>crossover</mark>" in results and "&lt;mark&gt;" not in results
    assert '<label for="kb-search-input">' in page and 'value="crossover"' in page
    # curated summaries and outcomes in words are searched too, not only titles and abstracts
    [curated_only] = rows(site, "/kb/search_papers?q=" + "most patients reported")
    assert (curated_only["paper_id"], curated_only["pmid"]) == (kb.CURATED_ONLY, None)
    assert kb.RCT in {r["paper_id"] for r in rows(site, "/kb/search_papers?q=" + "pain intensity")}
    # papers with the word in their title rank before papers with it only elsewhere
    ranked = rows(site, "/kb/search_papers?q=fibromyalgia")
    in_title = ["fibromyalgia" in r["title"].lower() for r in ranked]
    assert True in in_title and False in in_title
    assert in_title == sorted(in_title, reverse=True)
    ranked = [r["paper_id"] for r in rows(site, "/kb/search_papers?q=naltrexone")]
    assert len(ranked) == 5 and set(ranked) >= {kb.RCT, kb.REVIEW, kb.PROTOCOL}
    # FTS syntax characters in the input are searched for, not parsed
    assert fetch(site, '/kb/search_papers.json?q=%22unbalanced').status_code == 200
    # before anything is typed, the form shows no error and no rows
    assert rows(site, "/kb/search_papers?q=") == []


def test_conflicts_list_curated_facts_pubmed_disagrees_with(site):
    assert [(r["paper_id"], r["field"], r["curated_value"], r["pubmed_value"]) for r in rows(site, "/kb/conflicts")] == [
        (kb.RCT, "year", "2012", "2013")
    ]


def test_tag_disagreements(site):
    found = {(r["paper_id"], r["kind"], r["value"], r["in_auto"], r["in_curated"]) for r in rows(site, "/kb/tag_disagreements")}
    assert (kb.RCT, "design", "double_blind", 0, 1) in found
    assert (kb.RCT, "outcome", "mood", 0, 1) in found
    # agreement is not listed, nor kinds the curator left empty
    assert not {f for f in found if f[1:3] in {("design", "rct"), ("dose", "4.5 mg/day"), ("sample_size", "31")}}
    assert not {f for f in found if f[0] == kb.OLD}


# ---- browsing -----------------------------------------------------------------------------


def test_search_and_facets_on_papers(site):
    data = fetch(site, "/kb/paper_facets.json?_search=crossover&_extra=facet_results").json()
    facets = {name: {r["value"]: r["count"] for r in f["results"]} for name, f in data["facet_results"].items()}
    assert set(facets) == {"publication_role", "study_type", "design", "dose_band", "outcome", "year", "journal"}
    assert facets["design"]["double_blind"] == 1
    assert facets["outcome"]["pain_intensity"] == 1
    assert facets["year"] == {2013: 1}
    narrowed = rows(site, "/kb/paper_facets?design__arraycontains=rct")
    assert [r["paper_id"] for r in narrowed] == [kb.RCT]


def test_evidence_table_view_facets(site):
    data = fetch(site, "/kb/evidence_table.json?_extra=facet_results").json()
    facets = {name: {r["value"]: r["count"] for r in f["results"]} for name, f in data["facet_results"].items()}
    assert facets["design"]["retrospective"] == 1
    assert facets["dose_band"] == {"low": 2}
    assert facets["evidence_from"] == {"curated": 2, "auto tags": 1}


def test_lists_read_as_words_and_keys_link_to_papers(site):
    page = fetch(site, "/kb/evidence_table").text
    assert "randomised controlled trial, crossover, double-blind, placebo-controlled" in page
    assert re.search(r'<a href="/kb/papers/99000001" title="[^"]*">Younger 2013</a>', page)
    assert re.search(r'<a href="/kb/papers/doi~3A10~2E3390~2Fbiomed99~2E1087" title="[^"]*">Driver 2023</a>', page)


def test_paper_page_reads_like_a_record(site):
    page = fetch(site, f"/kb/papers/{kb.RCT}").text
    assert '<h1 class="kb-title">Low-dose naltrexone for <i>fibromyalgia</i>: a randomized crossover trial</h1>' in page
    for link in (
        'href="https://pubmed.ncbi.nlm.nih.gov/99000001/"',
        'href="https://doi.org/10.1002/art.99001"',
        'href="https://pmc.ncbi.nlm.nih.gov/articles/PMC9900001/"',
        'href="https://clinicaltrials.gov/study/NCT00568555"',
        'href="/kb/papers/99000001.ris"',
        'href="/kb/papers/99000001.bib"',
    ):
        assert link in page
    assert "<strong>Methods.</strong> Thirty-one women took 4.5 mg/day naltrexone or placebo; pain fell by 10<sup>2</sup> points." in page
    assert "&ldquo;Pain was reduced by 28.8% on LDN&rdquo; <small>(Results)</small>" in page
    assert '<span class="kb-relation">Corrected by</span>' in page
    assert '<a href="/kb/papers/99000002">Erratum: Low-dose naltrexone for fibromyalgia.' in page
    assert "Included in review" in page
    assert "checked by a curator on 2026-11-25" in page


def test_paper_page_of_a_paper_known_by_doi(site):
    response = fetch(site, "/kb/papers/doi~3A10~2E3390~2Fbiomed99~2E1087")
    assert response.status_code == 200
    assert "Efficacy of low-dose naltrexone in chronic pain" in response.text
    assert "citation checked by hand; no PubMed record here yet" in response.text


def test_markup_is_sanitised_when_rendered(site):
    paper = fetch(site, f"/kb/papers/{kb.HOSTILE}").text
    assert '<h1 class="kb-title">A title with  <sup>markup</sup></h1>' in paper
    assert "<p>Abstract  text. </p>" in paper
    assert 'javascript:alert(2) <small class="kb-source-kind">(secondary copy or mirror)</small>, checked 2026-11-25' in paper
    assert 'href="javascript:' not in paper
    assert "Kept to check that &lt;b&gt;notes&lt;/b&gt; are shown as text." in paper
    for page in (paper, fetch(site, "/kb/papers?_size=max").text, fetch(site, "/kb/abstract_sections").text):
        assert "<script>alert" not in page


def test_charts_dashboard_and_its_queries(site):
    page = fetch(site, "/-/dashboards/charts")
    assert page.status_code == 200
    assert "Publications per year by study type" in page.text and "Doses studied" in page.text
    charts = kb.metadata()["plugins"]["datasette-dashboards"]["charts"]["charts"]
    per_year = fetch(site, "/kb.json", params={"sql": charts["publications-per-year"]["query"], "_shape": "objects"}).json()["rows"]
    assert {"year": 2013, "study_type": "randomised trial", "papers": 1} in per_year
    doses = fetch(site, "/kb.json", params={"sql": charts["doses-studied"]["query"], "_shape": "objects"}).json()["rows"]
    assert doses == [{"mg_per_day": 4.5, "band": "low", "studies": 2}]
    # numeric years (a year with no papers is a gap), whole-number counts, no version warning
    per_year = charts["publications-per-year"]["display"]["encoding"]
    assert per_year["x"]["type"] == "quantitative" and per_year["x"]["bin"] == {"step": 1}
    for chart in charts.values():
        assert chart["display"]["encoding"]["y"]["axis"]["tickMinStep"] == 1
        schema_major = re.search(r"/v(\d+)\.json$", chart["display"]["$schema"]).group(1)
        assert schema_major == bundled_vega_lite_major()


def bundled_vega_lite_major():
    """The major version of the Vega-Lite that datasette-dashboards serves (its first string literal)."""
    import datasette_dashboards

    script = (Path(datasette_dashboards.__file__).parent / "static" / "vega-lite.min.js").read_text()
    return re.search(r'var n="(\d+)\.\d+\.\d+"', script).group(1)


# ---- exports ----------------------------------------------------------------------------------


def test_ris_export_of_all_papers(site):
    response = fetch(site, "/kb/papers.ris?_size=max")
    assert response.headers["content-type"].startswith("application/x-research-info-systems")
    entries = rispy.loads(response.text)
    assert len(entries) == 8
    rct = next(e for e in entries if e.get("accession_number") == "PMID:99000001")
    assert rct["title"] == "Low-dose naltrexone for fibromyalgia: a randomized crossover trial"
    assert rct["authors"] == ["Younger, J", "Noor, N", "McCue, R", "Mackey, S"]
    assert (rct["year"], rct["journal_name"], rct["volume"], rct["number"]) == ("2013", "Arthritis Rheum", "65", "2")
    assert (rct["start_page"], rct["end_page"], rct["doi"]) == ("529", "538", "10.1002/art.99001")
    assert rct["abstract"].startswith("Objective: To test whether")
    curated = next(e for e in entries if e.get("doi") == "10.3390/biomed99.1087")
    assert "accession_number" not in curated  # no PMID to give
    congress = next(e for e in entries if e["title"].endswith("a congress abstract"))
    assert "accession_number" not in congress and "urls" not in congress


def test_bibtex_export_of_all_papers(site):
    response = fetch(site, "/kb/papers.bib?_size=max")
    assert response.headers["content-type"].startswith("application/x-bibtex")
    library = bibtexparser.parse_string(response.text)
    assert library.failed_blocks == []
    assert len(library.entries) == 8
    assert len({e.key for e in library.entries}) == 8
    rct = next(e for e in library.entries if e.fields_dict.get("pmid") and e["pmid"] == kb.RCT)
    assert rct.entry_type == "article"
    assert rct["author"] == "Younger, J. and Noor, N. and McCue, R. and Mackey, S."
    assert (rct["year"], rct["pages"], rct["doi"]) == ("2013", "529--538", "10.1002/art.99001")
    anonymous = next(e for e in library.entries if e.fields_dict.get("pmid") and e["pmid"] == kb.ERRATUM)
    assert "author" not in anonymous.fields_dict
    assert anonymous.key == "anonymous2013"


def test_bibtex_keys_transliterate_accented_names():
    exports = kb.plugin("reference_exports")
    taken = set()
    keys = [exports.bibtex_key({"authors": [name], "year": 2024}, taken)
            for name in ("Häuser W", "Rodríguez-Freire C", "Bye-Møller L", "Häuser W")]
    assert keys == ["hauser2024", "rodriguezfreire2024", "byemoller2024", "hauser2024a"]


def test_exports_of_a_query_a_view_and_a_paper(site):
    assert len(rispy.loads(fetch(site, "/kb/evidence_table.ris").text)) == 3
    assert len(bibtexparser.parse_string(fetch(site, "/kb/paper_facets.bib?_search=naltrexone").text).entries) == 5
    [entry] = bibtexparser.parse_string(fetch(site, f"/kb/papers/{kb.RCT}.bib").text).entries
    assert entry["title"] == "Low-dose naltrexone for fibromyalgia: a randomized crossover trial"


def test_exports_are_offered_only_where_the_columns_allow(site):
    assert 'href="/kb/papers.ris' in fetch(site, "/kb/papers").text
    doses_page = fetch(site, "/kb/doses").text
    assert ".ris" not in doses_page and ".bib" not in doses_page
    assert fetch(site, "/kb/doses.ris").status_code == 400


def test_atom_feed_of_new_papers(site):
    response = fetch(site, "/kb/new_papers_feed.atom")
    assert response.status_code == 200
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}title") == "LDN evidence base: new papers"
    entries = {e.findtext(f"{ATOM}id"): e for e in feed.findall(f"{ATOM}entry")}
    assert len(entries) == 8
    rct = entries["tag:ldn-evidence-base,2026:paper/99000001"]
    assert rct.findtext(f"{ATOM}title") == "Low-dose naltrexone for fibromyalgia: a randomized crossover trial"
    assert rct.find(f"{ATOM}link").get("href") == "https://pubmed.ncbi.nlm.nih.gov/99000001/"
    assert rct.findtext(f"{ATOM}updated")
    # a paper with no PubMed, DOI or PMC page links to its page here
    congress = entries["tag:ldn-evidence-base,2026:paper/curated:early-2019-congress"]
    assert congress.find(f"{ATOM}link").get("href") == "/kb/papers/curated:early-2019-congress"
    assert fetch(site, "/kb/papers/curated:early-2019-congress").status_code == 200


# ---- refusals ---------------------------------------------------------------------------------


def test_post_to_any_canned_query_is_refused_and_changes_nothing(site, db_path):
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    for name in kb.metadata()["databases"]["kb"]["queries"]:
        for body in ({"data": {"q": "x"}}, {"json": {"q": "x"}}):
            response = fetch(site, f"/kb/{name}", method="post", **body)
            assert response.status_code == 405, name
    assert fetch(site, "/kb", method="post", data={"sql": "delete from papers"}).status_code == 405
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    assert len(rows(site, "/kb/papers")) == 8


def test_runaway_query_is_stopped_by_the_time_limit(site):
    started = time.monotonic()
    response = fetch(site, "/kb.json", params={"sql": kb.RUNAWAY_SQL})
    elapsed = time.monotonic() - started
    assert response.status_code == 400
    assert "SQL query took too long" in response.json()["error"]
    assert elapsed < 10


def test_pages_say_plainly_when_nothing_was_harvested(db_path, tmp_path):
    harvested = kb.make_datasette(db_path)
    assert "Last harvest from PubMed: 2026-11-20" in fetch(harvested, "/kb/new_papers").text
    assert "What this copy holds" not in fetch(harvested, "/").text
    copy = tmp_path / "kb.db"
    shutil.copy(db_path, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("delete from harvest_runs")
    never = kb.make_datasette(copy)
    home = fetch(never, "/").text
    assert "not harvested from PubMed yet" in home and "<em>without abstracts</em>" in home
    assert "Recently added curated papers" in home
    assert "Nothing has been harvested from PubMed yet" in fetch(never, "/kb/new_papers").text


def test_home_page_keeps_a_place_for_the_evidence_summary():
    # the partial is optional: without it the home page still renders (see the tests above)
    assert '{% include "_evidence_summary.html" ignore missing %}' in (kb.ROOT / "templates/index.html").read_text()


# ---- pages in words (plugins/markup.py) ----------------------------------------------------------


def test_numbers_read_as_clinicians_read_them():
    markup = kb.plugin("markup")
    cases = [
        ((-0.15358760194884488,), "-0.15"),      # computed: two decimals
        ((0.0907181881815039,), "0.091"),        # computed and below 0.1: three
        ((-1.3,), "-1.3"),                       # reported: as reported
        ((0.27,), "0.27"),
        ((12.0,), "12"),
        ((2024,), "2024"),                       # years and counts: no separators
        ((69.7231246518652, "i2"), "70%"),
        ((0.0367362753362163, "q_p"), "0.04"),   # p-values as journals print them
        ((0.0063, "p_value"), "0.006"),
        ((0.0004, "p_value"), "<0.001"),
        (("4.5 mg/day",), "4.5 mg/day"),
    ]
    assert [markup.number_text(*args) for args, _ in cases] == [shown for _, shown in cases]


def test_codes_names_and_notes_read_as_words():
    markup = kb.plugin("markup")
    assert markup.code_words("placebo_controlled") == "placebo-controlled"  # a label
    assert markup.code_words("reanalysis_of") == "re-analysis of"            # a relation
    assert markup.code_words("posted_primary") == "posted primary"           # anything else
    assert markup.scalar_words("the per-arm n (n_source) of https://x.org/a_b", "reported") == \
        "the per-arm n (n source) of https://x.org/a_b"
    assert markup.column_words("ci_low") == "95% CI from" and markup.column_words("sd_ldn") == "SD LDN"
    assert markup.field_note("1 if results are posted, 0 if not") == "Yes if results are posted, no if not"
    assert markup.field_note("Outcomes (pain_intensity, quality_of_life)") == "Outcomes (pain intensity, quality of life)"
    assert markup.is_flag("poolable", "1 if the result can be pooled") and markup.is_flag("flag_dose_differs")
    assert not markup.is_flag("step", "1 for the first trial, 2 after adding the second")
    assert markup.paper_name("de Carvalho JF", 2023, "A title") == "de Carvalho 2023"
    assert markup.paper_name(None, 2025, "Efficacy and safety of low-dose naltrexone in fibromyalgia") == \
        "Efficacy and safety of low-dose naltrexone… 2025"
    assert markup.paper_name("Rodríguez-Freire C", None, "x") == "Rodríguez-Freire, year not verified"


@pytest.fixture(scope="module")
def evidence_site(db_path, tmp_path_factory):
    """The test kb.db with one pooled estimate of two results, one of them the RCT's."""
    import sqlite_utils

    from harvest import evidence, store

    path = tmp_path_factory.mktemp("evidence") / "kb.db"
    shutil.copy(db_path, path)
    db = sqlite_utils.Database(path)
    store.ensure_db_shape(db)
    assert "effects" in evidence.TABLES
    db["effects"].insert_all([
        {"effect_id": "younger-2013-crossover#1", "key": "younger-2013-crossover", "paper_id": kb.RCT,
         "trial_key": "NCT00568555", "outcome": "pain_intensity", "timepoint_weeks": 12.0, "measure": "md",
         "estimate": -10.8, "p_value": 0.016, "n_ldn": 28, "n_comparator": 28, "favours": "ldn", "is_primary": 1,
         "crossover": 1, "smd": -0.472099728235831, "poolable": 1, "source": "https://example.org/younger"},
        {"effect_id": "driver-2099-retrospective#1", "key": "driver-2099-retrospective", "paper_id": kb.CURATED_ONLY,
         "outcome": "pain_intensity", "measure": "md", "estimate": -1.0, "is_primary": 1, "crossover": 0,
         "smd": -0.2, "poolable": 1, "source": "https://example.org/driver"},
    ])
    db["pooled_estimates"].insert({
        "outcome": "pain_intensity", "method": "REML", "measure": "smd", "k": 2, "estimate": -0.15358760194884488,
        "ci_low": -0.561773848015192, "ci_high": 0.254598644117502, "i2": 69.7231246518652, "q_p": 0.0367362753362163,
        "effect_ids": '["younger-2013-crossover#1", "driver-2099-retrospective#1"]',
        "excluded": '[{"effect_id": "driver-2099-retrospective#1", "reason": "not randomised"}]'})
    db.close()
    return kb.make_datasette(path)


def test_a_pooled_estimate_reads_in_words_and_links_to_each_result_it_pooled(evidence_site):
    page = fetch(evidence_site, "/kb/pooled_estimates/pain_intensity,REML").text
    assert "<h1" in page and "Pooled estimates (our meta-analysis): pain intensity, REML</h1>" in page
    for shown in (">-0.15<", ">-0.56<", ">0.25<", ">70%<", ">0.04<"):
        assert shown in page, shown
    assert "0.153587" not in page and "69.72" not in page and "[" not in page.split("<body")[1].split("<footer")[0]
    assert re.search(r'<a href="/kb/effects/younger-2013-crossover~231" title="">Younger 2013: pain intensity, '
                     r'mean difference at 12 weeks</a>', page)
    assert re.search(r'<a href="/kb/effects/driver-2099-retrospective~231" title="">Driver 2023: pain intensity, '
                     r'mean difference</a>: not randomised', page)
    assert "Prediction interval" not in page  # empty fields are left out


def test_a_result_links_to_its_paper_and_the_paper_to_its_source(evidence_site):
    row = fetch(evidence_site, "/kb/effects/younger-2013-crossover~231").text
    assert "Younger 2013: pain intensity, mean difference at 12 weeks</h1>" in row
    assert re.search(r'<a href="/kb/papers/99000001" title="[^"]*">Younger 2013</a>', row)
    assert re.search(r"<th[^>]*>Primary analysis</th>\s*<td[^>]*>yes<", row)
    assert re.search(r"<th[^>]*>Crossover</th>\s*<td[^>]*>yes<", row)
    assert "Events on LDN" not in row and "Events LDN" not in row  # empty: left out
    assert '<a href="https://example.org/younger">' in row
    paper = fetch(evidence_site, f"/kb/papers/{kb.RCT}").text
    results = paper[paper.index("Results reported"):]
    assert 'href="/kb/effects/younger-2013-crossover~231"' in results
    assert "mean difference -10.8, p 0.02; favours LDN; SMD -0.47." in " ".join(results.split())
    assert '<a href="https://example.org/younger" class="kb-source">Source</a>' in results


def test_tags_show_once_with_who_found_them(site):
    page = fetch(site, f"/kb/papers/{kb.RCT}").text
    tags = page[page.index("Tags and their evidence"):page.index("</table>", page.index("Tags and their evidence"))]
    # the tagger and the curator both gave design rct: one row, saying so, with the tagger's sentence
    assert tags.count("<td>randomised controlled trial</td>") == 1
    assert "<td>automatic tagging and a curator</td>" in tags
    assert "<td>double-blind</td><td>a curator</td>" in tags
    for jargon in ("curated", "found through", "harvested"):
        assert jargon not in page.split('<section class="kb-record kb-raw">')[0].lower().replace("curated summar", ""), jargon


def test_kb_db_shape_does_not_depend_on_what_was_imported_first(tmp_path):
    """A fresh interpreter that imports only harvest.store shapes kb.db exactly as the whole pipeline does."""
    from harvest import pipeline  # noqa: F401 (imports every module that declares tables)

    shaped = sqlite_utils.Database(tmp_path / "all.db")
    store.ensure_db_shape(shaped)
    code = ("import sys, sqlite_utils; from harvest import store; db = sqlite_utils.Database(sys.argv[1]); "
            "store.ensure_db_shape(db); print(len(db.table_names()), len(db.view_names()))")
    alone = subprocess.run([sys.executable, "-c", code, str(tmp_path / "alone.db")], capture_output=True, text=True,
                           cwd=kb.ROOT, check=True)
    assert alone.stdout.split() == [str(len(shaped.table_names())), str(len(shaped.view_names()))]
    assert "effect_candidates" in shaped.table_names() and "not_yet_in_analysis" in shaped.view_names()
