"""Effects, risk of bias and meta-analyses from curated YAML into kb.db, and `kb pool`.

The curated files used here are invented (tests/fixtures/evidence, DOIs under the 10.5555
test prefix) so the tests depend on no real curation."""

import asyncio
import csv
import json
import shutil

import pytest
import sqlite_utils
from click.testing import CliRunner

from harvest import curate, evidence, tag
from harvest.cli import cli

import publish_db
from conftest import FIXTURES
from test_synthesis import bcg_log_risk_ratios

EVIDENCE = FIXTURES / "evidence"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("evidence") / "kb.db"
    result = CliRunner().invoke(cli, ["build", "--db", str(path), "--curated", str(EVIDENCE)])
    assert result.exit_code == 0, result.output
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_effects_table_has_one_row_per_curated_effect_with_its_derivation(built):
    db = sqlite_utils.Database(built)
    rows = {r["effect_id"]: r for r in db["effects"].rows}
    assert len(rows) == 7
    alpha = rows["alpha-2009-crossover#1"]
    assert alpha["crossover"] == 1 and alpha["poolable"] == 1 and alpha["smd"] < 0
    assert "Cochrane Handbook 23.2.7" in alpha["derivation"] and alpha["source"] == "https://example.org/alpha"
    assert rows["epsilon-2025-parallel#1"]["poolable"] == 0
    assert "median" in rows["epsilon-2025-parallel#1"]["not_poolable_reason"]
    assert rows["beta-2013-crossover#1"]["trial_key"] == "NCT09990011"


def test_every_rct_has_every_rob_domain_with_not_assessed_where_no_source(built):
    db = sqlite_utils.Database(built)
    rows = list(db["risk_of_bias"].rows)
    rcts = {r["key"] for r in rows}
    assert rcts == {"alpha-2009-crossover", "beta-2013-crossover", "gamma-2023-parallel",
                    "delta-2024-parallel", "epsilon-2025-parallel"}
    assert len(rows) == 5 * len(evidence.ROB_DOMAINS)
    judged = {(r["key"], r["domain"]): r for r in rows}
    assert judged[("gamma-2023-parallel", "randomisation")]["judgement"] == "low"
    assert judged[("gamma-2023-parallel", "missing_data")]["judgement"] == "not assessed"
    assert judged[("gamma-2023-parallel", "missing_data")]["source"] is None


def test_meta_analyses_carry_pooled_numbers_and_later_reanalyses(built):
    db = sqlite_utils.Database(built)
    rows = {r["key"]: r for r in db["meta_analyses"].rows}
    omega = rows["omega-2024-metaanalysis"]
    assert (omega["estimate"], omega["ci_low"], omega["ci_high"]) == (-0.6, -1.1, -0.1)
    assert json.loads(omega["included"]) == ["alpha-2009-crossover", "beta-2013-crossover"]
    assert omega["included_verified"] == 1
    assert json.loads(omega["later"]) == [{"relation": "reanalysis_of", "pmid": "doi:10.5555/psi.2026"}]
    assert rows["psi-2026-letter"]["included_verified"] == 0 and rows["psi-2026-letter"]["estimate"] is None


def test_pooled_tables_match_kb_pool(built):
    db = sqlite_utils.Database(built)
    stored = db["pooled_estimates"].get(("pain_intensity", "REML"))
    printed = json.loads(invoke("pool", "--db", built, "--json").output)
    assert stored["k"] == printed["k"] == 4
    assert printed["sign"] == "negative favours LDN"
    assert stored["estimate"] == pytest.approx(printed["estimate"])
    assert stored["certainty"] == printed["grade"]["certainty"]
    # one effect per trial: gamma's primary 12-week result, not its interim look
    assert "gamma-2023-parallel#2" in json.loads(stored["effect_ids"])
    excluded = {e["effect_id"]: e["reason"] for e in json.loads(stored["excluded"])}
    assert excluded["gamma-2023-parallel#1"] == "another analysis of the same trial was chosen"
    cumulative = list(db.query("select * from pooled_cumulative where outcome = 'pain_intensity' "
                               "and method = 'REML' order by step"))
    assert [r["year"] for r in cumulative] == [2009, 2013, 2023, 2024]
    assert cumulative[-1]["estimate"] == pytest.approx(stored["estimate"])
    assert db["pooled_leave_one_out"].count_where("outcome = 'pain_intensity' and method = 'DL'") == 4
    for study in printed["studies"]:  # every pooled study traces to an effects row with a source
        row = db["effects"].get(study["effect_id"])
        assert row["source"].startswith("https://") and row["smd"] == pytest.approx(study["yi"])
    over_time = list(db.query("select kind, year, estimate from pooled_over_time where outcome = 'pain_intensity'"))
    assert {"kind": "published", "year": 2024, "estimate": -0.6} in over_time
    assert [r["year"] for r in over_time if r["kind"] == "kb.db cumulative"] == [2009, 2013, 2023, 2024]
    domains = {r["domain"] for r in db.query("select domain from certainty where method = 'REML'")}
    assert domains == {"risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias", "overall"}


def test_rebuild_is_idempotent(built, tmp_path):
    copy = tmp_path / "kb.db"
    shutil.copy(built, copy)
    assert invoke("build", "--db", copy, "--curated", EVIDENCE).exit_code == 0
    before, after = sqlite_utils.Database(built), sqlite_utils.Database(copy)
    for table in evidence.TABLES:
        assert list(before[table].rows) == list(after[table].rows), table


def retract(db, keys):
    """Retraction notices for these papers, as a harvest records them (PubMed's RetractionIn)."""
    db["comments_corrections"].insert_all(
        {"pmid": key, "position": 1, "ref_type": "RetractionIn", "ref_pmid": f"9900{number}", "ref_source": "Retraction"}
        for number, key in enumerate(keys))
    db.conn.commit()


def test_exclude_and_retracted_papers_are_left_out(built, tmp_path):
    excluded = json.loads(invoke("pool", "--db", built, "--exclude", "alpha-2009-crossover", "--json").output)
    assert excluded["k"] == 3
    assert {"effect_id": "alpha-2009-crossover#1", "reason": "excluded on request"} in excluded["excluded"]
    copy = tmp_path / "kb.db"
    shutil.copy(built, copy)
    db = sqlite_utils.Database(copy)
    retract(db, ["doi:10.5555/delta.2024"])
    result = invoke("pool", "--db", copy)
    assert "left out: delta-2024-parallel#1 (paper retracted)" in result.output
    assert "retracted papers are left out (integrity_status checked)" in result.output
    assert "k = 3" in result.output


def test_kb_pool_csv_reproduces_metafor(tmp_path):
    path = tmp_path / "bcg.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["study", "yi", "vi", "year"])
        writer.writeheader()
        writer.writerows(bcg_log_risk_ratios())
    reml = json.loads(invoke("pool", "--input", path, "--method", "REML", "--json").output)
    dl = json.loads(invoke("pool", "--input", path, "--method", "DL", "--json").output)
    assert [round(reml[k], 4) for k in ("estimate", "se", "ci_low", "ci_high", "tau2", "q")] == \
        [-0.7145, 0.1798, -1.0669, -0.3622, 0.3132, 152.2330]
    assert [round(dl[k], 4) for k in ("estimate", "se", "ci_low", "ci_high", "tau2", "q")] == \
        [-0.7141, 0.1787, -1.0644, -0.3638, 0.3088, 152.2330]
    assert (round(reml["i2"], 2), round(dl["i2"], 2)) == (92.22, 92.12)
    assert [r["year"] for r in reml["cumulative"]][:2] == [1948, 1949]
    text = invoke("pool", "--input", path).output
    assert "estimate -0.7145" in text and "cumulative by year" in text


@pytest.mark.parametrize("content, message", [
    ("study,yi\nA,0.1\n", "missing column(s) vi"),
    ("study,yi,vi\nA,0.1,0.2\nB,x,0.1\n", "row 3: yi and vi must be numbers"),
    ("study,yi,vi\nA,0.1,-0.2\n", "row 2: yi must be finite and vi positive"),
    ("study,yi,vi\n", "no studies"),
    ("study,yi,vi\nA,0.1\n", "row 2: yi and vi must be numbers"),
    ("study,yi,vi\n,0.1,0.2\n", "row 2: empty study label"),
])
def test_bad_csv_gets_one_line_naming_file_and_row(tmp_path, content, message):
    path = tmp_path / "mine.csv"
    path.write_text(content)
    result = invoke("pool", "--input", path)
    assert result.exit_code == 1
    assert "mine.csv" in result.output and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_csv_from_a_spreadsheet_with_bom_is_read_and_latin1_is_named(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffstudy,yi,vi\nA,0.1,0.2\nB,0.3,0.1\n".encode("utf-8"))
    assert json.loads(invoke("pool", "--input", path, "--json").output)["k"] == 2
    path.write_bytes("study,yi,vi\nM\xfcller,0.1,0.2\n".encode("latin-1"))
    result = invoke("pool", "--input", path)
    assert result.exit_code == 1 and "excel.csv: not UTF-8 text" in result.output


def test_pool_needs_exactly_one_source(built, tmp_path):
    assert "exactly one of --db or --input" in invoke("pool").output
    assert "no poolable fatigue effects" in invoke("pool", "--db", built, "--outcome", "fatigue").output
    empty = tmp_path / "empty.db"
    sqlite_utils.Database(empty)["x"].insert({"a": 1})
    assert "no effects table; run kb build first" in invoke("pool", "--db", empty).output
    assert "no such database" in invoke("pool", "--db", tmp_path / "missing.db").output


@pytest.mark.parametrize("change, message", [
    (lambda e: e["effects"][0].update(outcome="happiness"), "effects[1]: unknown outcome 'happiness'"),
    (lambda e: e["effects"][0].update(ci_low=-1.0, ci_high=-5.0), "does not contain the estimate"),
    (lambda e: e["effects"][0].pop("source"), "effects[1]: needs a source URL"),
    (lambda e: e["effects"][0].update(n_ldn="ten"), "n_ldn must be a whole number"),
    (lambda e: e["effects"][0].update(estimate="-0.3"), "effects[1]: estimate must be a number, not '-0.3'"),
    (lambda e: e["risk_of_bias"][0].update(judgement="unclear"), "judgement must be low, some_concerns, high or not_assessed"),
    (lambda e: e["risk_of_bias"][0].update(domain="blinding"), "domain must be one of"),
    (lambda e: e["risk_of_bias"][0].update(judgement="not_assessed", reason=None), "needs a reason"),
    (lambda e: e["effects"][0].update(outcome="named_adverse_event"), "a named_adverse_event needs `event`"),
    (lambda e: e["effects"][0].update(event="nausea"), "a named_adverse_event needs `event`"),
    (lambda e: e["effects"][0].update(median_ldn="3"), "median_ldn must be a number"),
])
def test_validation_names_entry_and_item(change, message):
    entries = curate.load_curated(EVIDENCE)
    alpha = next(e for e in entries if e["key"] == "alpha-2009-crossover")
    change(alpha)
    problems = curate.validate(entries, tag.VOCABULARY_VALUES)
    assert any(p.startswith("trials.yml: alpha-2009-crossover: ") and message in p for p in problems), problems


def test_bad_effects_leave_kb_db_unchanged(built, tmp_path):
    folder = tmp_path / "curated"
    shutil.copytree(EVIDENCE, folder)
    text = (folder / "trials.yml").read_text().replace("measure: md, estimate: 0.1", "measure: mean, estimate: 0.1")
    (folder / "trials.yml").write_text(text)
    copy = tmp_path / "kb.db"
    shutil.copy(built, copy)
    before = copy.read_bytes()
    result = invoke("build", "--db", copy, "--curated", folder)
    assert result.exit_code == 1 and "measure must be one of" in result.output
    assert copy.read_bytes() == before


def test_build_pools_only_what_is_left_after_retractions(built, tmp_path):
    copy = tmp_path / "kb.db"
    shutil.copy(built, copy)
    db = sqlite_utils.Database(copy)
    retract(db, ["doi:10.5555/alpha.2009", "doi:10.5555/beta.2013", "doi:10.5555/gamma.2023"])
    db.conn.close()
    result = invoke("build", "--db", copy, "--curated", EVIDENCE)
    assert result.exit_code == 0, result.output
    assert "pooled_estimates: 0" in result.output  # one trial left: nothing to pool, and no error


def test_home_page_says_not_pooled_yet_and_why_when_fewer_than_two_trials_convert(tmp_path):
    folder = tmp_path / "curated"
    shutil.copytree(EVIDENCE, folder)
    text = (folder / "trials.yml").read_text()
    # beta, gamma and delta lose their group sizes, without which nothing converts: only alpha stays poolable
    for sizes in ("n_ldn: 28, n_comparator: 28, ", "n_ldn: 50, n_comparator: 49, ", "n_ldn: 49, n_comparator: 50, "):
        text = text.replace(sizes, "")
    (folder / "trials.yml").write_text(text)
    path = tmp_path / "kb.db"
    assert invoke("build", "--db", path, "--curated", folder).exit_code == 0
    page = asyncio.run(publish_db.make_datasette(path).client.get("/")).text
    assert "Not pooled yet:" in page and "kb-forest" not in page
    assert "no: group sizes not reported" in page and "no: number of participants not reported" in page
    assert "Omega O 2024" in page and "no: a median difference has no SD to standardise with" in page


@pytest.mark.parametrize("domains, overall", [
    ({"randomisation": "low", "deviations": "low", "missing_data": "low", "measurement": "low", "reporting": "low"}, "low"),
    ({"randomisation": "low", "deviations": "some_concerns", "missing_data": "low", "measurement": "low", "reporting": "low"}, "some_concerns"),
    ({"randomisation": "low", "deviations": "low", "missing_data": "high", "measurement": "low", "reporting": "low"}, "high"),
    ({"randomisation": "low", "deviations": "low", "missing_data": "low", "measurement": "low"}, "not assessed"),
    ({"randomisation": "low", "deviations": "low", "missing_data": "low", "measurement": "low",
      "reporting": "not_assessed"}, "not assessed"),
])
def test_overall_risk_of_bias_is_derived_only_from_all_five_domains(domains, overall):
    entry = {"key": "k", "risk_of_bias": [{"domain": d, "judgement": j, "reason": "r", "source": "https://e.org",
                                           "checked": "2026-12-01"} for d, j in domains.items()]}
    rows = {row["domain"]: row for row in evidence._rob_rows(entry, "k")}
    assert rows["overall"]["judgement"] == overall
    assert all(row["judgement"] != "not_assessed" for row in rows.values())  # stored as "not assessed"
    assert (rows["overall"]["reason"] or "").startswith("derived") == (overall != "not assessed")


def test_non_randomised_results_are_kept_but_not_pooled():
    effect = {"outcome": "pain_intensity", "measure": "md", "estimate": -1.0, "ci_low": -2.0, "ci_high": 0.0,
              "n_ldn": 20, "n_comparator": 20, "source": "https://example.org/pilot", "checked": "2026-12-01"}
    randomised = {"key": "a-2020-rct", "design": ["rct", "parallel"], "effects": [effect]}
    fixed_order = {"key": "b-2020-pilot", "design": ["nonrandomized", "parallel"], "effects": [effect]}
    [pooled] = evidence._effect_rows(randomised, "a", {})
    [shown] = evidence._effect_rows(fixed_order, "b", {})
    assert pooled["poolable"] == 1 and pooled["smd"] < 0
    assert shown["poolable"] == 0 and shown["smd"] is None
    assert shown["not_poolable_reason"] == evidence.NOT_RANDOMISED


def test_validation_names_a_pooled_result_that_is_not_a_number():
    entries = curate.load_curated(EVIDENCE)
    review = next(e for e in entries if isinstance(e.get("meta_analysis"), dict) and e["meta_analysis"].get("pooled"))
    review["meta_analysis"]["pooled"][0]["i2"] = "high"
    problems = curate.validate(entries, tag.VOCABULARY_VALUES)
    assert any(f"{review['key']}: " in p and "pooled[1]: i2 must be a number, not 'high'" in p for p in problems), problems
