"""The `kb` command surface: every command documented, `kb tag-text` as specified."""

import json
from pathlib import Path

import sqlite_utils
from click.testing import CliRunner

from harvest.cli import cli

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_command_has_help_and_a_readme_section():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name, command in cli.commands.items():
        assert name in result.output
        assert command.help and len(command.help) > 40, name
        assert f"kb {name}" in README, f"README has no example of kb {name}"
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0


def test_tag_text_prints_json_lines_with_evidence():
    paper = (
        "Low-dose naltrexone for fibromyalgia: a randomized, double-blind, placebo-controlled crossover trial\n"
        "Thirty-one women with fibromyalgia took naltrexone 4.5 mg/day or placebo for 12 weeks. "
        "Daily pain fell more on naltrexone than on placebo (p = 0.02), but sleep did not change. "
        "Vivid dreams were the most common adverse event.\n"
    )
    result = CliRunner().invoke(cli, ["tag-text"], input=paper)
    assert result.exit_code == 0
    tags = [json.loads(line) for line in result.output.splitlines()]
    assert all(set(t) == {"kind", "value", "detail", "evidence"} for t in tags)
    found = {(t["kind"], t["value"]) for t in tags}
    assert {("design", "rct"), ("design", "crossover"), ("design", "double_blind"), ("comparator", "placebo"),
            ("adverse_event", "vivid dreams"), ("outcome", "adverse_events")} <= found
    dose = next(t for t in tags if t["kind"] == "dose")
    assert (dose["detail"]["min_mg_per_day"], dose["detail"]["max_mg_per_day"], dose["detail"]["band"]) == (4.5, 4.5, "low")
    assert "4.5 mg/day" in dose["evidence"]
    sleep = next(t for t in tags if t["kind"] == "outcome" and t["value"] == "sleep")
    assert sleep["detail"].get("direction") == "no_difference"
    size = next(t for t in tags if t["kind"] == "sample_size")
    assert size["value"] == "31"


NEWS_ARTICLE_REFERENCES = """\
1. Younger J, Mackey S. Fibromyalgia symptoms are reduced by low-dose naltrexone: a pilot study. Arthritis & Rheumatology. 2009;10(4):663-72. doi:10.1111/j.1526-4637.2009.00613.
2. Younger J, McCue R, Noor N, Mackey S. Low-dose naltrexone for the treatment of fibromyalgia: findings of a small, randomized, double-blind, placebo-controlled, counterbalanced, crossover trial assessing daily pain levels. 2013;65(2):529-38. doi:10.1002/art.37734.
"""


def built_kb(tmp_path):
    db_path = tmp_path / "kb.db"
    assert CliRunner().invoke(cli, ["build", "--db", str(db_path)]).exit_code == 0
    return db_path


def test_check_refs_json_and_exit_status(tmp_path):
    db_path = built_kb(tmp_path)
    result = CliRunner().invoke(cli, ["check-refs", "--offline", "--json", "--db", str(db_path)], input=NEWS_ARTICLE_REFERENCES)
    assert result.exit_code == 1
    first, second = json.loads(result.output)
    assert (first["pmid"], sorted(d["kind"] for d in first["discrepancies"])) == ("19453963", ["doi_truncated", "journal_wrong"])
    assert (second["pmid"], sorted(d["kind"] for d in second["discrepancies"])) == ("23359310", ["author_order", "journal_missing"])
    assert "Pain Med. 2009;10(4):663-72" in first["corrected_citation"]

    clean = CliRunner().invoke(cli, ["check-refs", "--offline", "--db", str(db_path)], input=first["corrected_citation"] + "\n")
    assert clean.exit_code == 0 and "1 ok" in clean.output
    unresolved = CliRunner().invoke(cli, ["check-refs", "--offline", "--db", str(db_path)], input="a shopping list\n")
    assert unresolved.exit_code == 2


def test_check_refs_save_stores_results_and_plain_checks_do_not_write(tmp_path):
    db_path = built_kb(tmp_path)
    before = db_path.read_bytes()
    CliRunner().invoke(cli, ["check-refs", "--offline", "--db", str(db_path)], input=NEWS_ARTICLE_REFERENCES)
    assert db_path.read_bytes() == before
    result = CliRunner().invoke(cli, ["check-refs", "--offline", "--save", "--db", str(db_path)], input=NEWS_ARTICLE_REFERENCES)
    assert result.exit_code == 1
    rows = list(sqlite_utils.Database(db_path).query("select pmid, status from reference_checks order by id"))
    assert rows == [{"pmid": "19453963", "status": "discrepancies"}, {"pmid": "23359310", "status": "discrepancies"}]


def test_check_refs_says_once_at_the_top_that_kb_db_is_missing(tmp_path, monkeypatch):
    missing = tmp_path / "kb.db"
    online = CliRunner().invoke(cli, ["check-refs", "--db", str(missing)], input=NEWS_ARTICLE_REFERENCES)
    lines = online.stderr.splitlines()
    assert lines[0] == f"Note: {missing} not found; checking against PubMed only"
    assert online.output.count(str(missing)) == 1
    offline = CliRunner().invoke(cli, ["check-refs", "--offline", "--db", str(missing)], input=NEWS_ARTICLE_REFERENCES)
    assert offline.exit_code == 2 and offline.stdout == ""
    assert offline.stderr.count("\n") == 1 and f"{missing} not found" in offline.stderr
    assert not missing.exists()


def test_check_refs_db_help_says_it_reads_unless_save():
    text = " ".join(CliRunner().invoke(cli, ["check-refs", "--help"]).output.split())
    assert "--db FILE The SQLite database to read (written only with --save)." in text


def test_check_refs_on_an_empty_file_says_why_in_one_line_naming_it(tmp_path):
    db_path = built_kb(tmp_path)
    empty = tmp_path / "references.txt"
    empty.write_text("")
    result = CliRunner().invoke(cli, ["check-refs", "--offline", "--db", str(db_path), str(empty)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"Error: {empty} is empty: nothing to check\n"
    heading_only = CliRunner().invoke(cli, ["check-refs", "--offline", "--db", str(db_path)], input="References\n\n")
    assert heading_only.exit_code == 2
    assert heading_only.stderr == "Error: stdin holds no reference: nothing to check\n"


def test_a_harvest_whose_network_fails_still_names_its_malformed_doi_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_EUTILS_URL", "http://127.0.0.1:9/entrez/eutils/")  # refused
    dois = tmp_path / "dois.txt"
    dois.write_text("# our list\n10.1002/art.37734\nnot-a-doi/42\n")
    result = CliRunner().invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--dois", str(dois),
                                      "--max-retry-time", "0", "--quiet"])
    assert result.exit_code == 1
    *said, error = result.stderr.splitlines()
    assert said == [f"{dois} line 3: malformed DOI, not harvested: not a DOI: 'not-a-doi/42'"]
    assert error.startswith("Error: cannot reach http://127.0.0.1:9/") and error.endswith(f"no {tmp_path / 'kb.db'} created)")


def test_read_finding_says_where_a_line_stops_being_json():
    # `{"text": "Pain fell` is 19 characters: the line's newline, inside the string, is column 20.
    cut = CliRunner().invoke(cli, ["read-finding"], input='{"text": "Pain fell\n')
    assert cut.exit_code == 2
    assert cut.stderr == "Error: stdin line 1: not JSON (Invalid control character at column 20)\n"
    unterminated = CliRunner().invoke(cli, ["read-finding"], input='{"text": "ok"}\n\n{"text": "Pain')
    assert unterminated.stderr == "Error: stdin line 3: not JSON (Unterminated string starting at column 10)\n"
    assert json.loads(unterminated.stdout)["evidence"] == "ok"
