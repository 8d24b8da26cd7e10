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
from datasette.app import Datasette

from harvest import curate, evidence, evidence_pages, synthesis, tag
from harvest.page_links import with_links
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
    assert len(rows) == 17
    alpha = rows["alpha-2009-crossover#1"]
    assert alpha["crossover"] == 1 and alpha["poolable"] == 1 and alpha["smd"] < 0
    assert "Cochrane Handbook 23.2.7" in alpha["derivation"] and alpha["source"] == "https://example.org/alpha"
    assert rows["epsilon-2025-parallel#1"]["poolable"] == 0
    assert "median" in rows["epsilon-2025-parallel#1"]["not_poolable_reason"]
    assert rows["beta-2013-crossover#1"]["trial_key"] == "NCT09990011"
    assert rows["eta-2010-standarddose#1"]["not_poolable_reason"] == evidence.NOT_LOW_DOSE
    assert rows["theta-2008-pilot#1"]["not_poolable_reason"] == evidence.NOT_RANDOMISED
    # a dichotomous result carries its risk ratio: 3/49 vs 1/50 = 3.061224 (see test_synthesis)
    withdrawals = rows["delta-2024-parallel#4"]
    assert withdrawals["poolable"] == 1 and withdrawals["smd"] is None and round(withdrawals["rr"], 6) == 3.061224
    assert rows["gamma-2023-parallel#5"]["not_poolable_reason"] == synthesis.DOUBLE_ZERO


def test_every_rct_has_every_rob_domain_with_not_assessed_where_no_source(built):
    db = sqlite_utils.Database(built)
    rows = list(db["risk_of_bias"].rows)
    rcts = {r["key"] for r in rows}
    assert rcts == {"alpha-2009-crossover", "beta-2013-crossover", "gamma-2023-parallel",
                    "delta-2024-parallel", "epsilon-2025-parallel", "eta-2010-standarddose"}
    assert len(rows) == 6 * len(evidence.ROB_DOMAINS)
    judged = {(r["key"], r["domain"]): r for r in rows}
    assert judged[("gamma-2023-parallel", "randomisation")]["judgement"] == "low"
    assert judged[("gamma-2023-parallel", "missing_data")]["judgement"] == "not assessed"
    assert judged[("gamma-2023-parallel", "missing_data")]["source"] is None


def test_meta_analyses_carry_pooled_numbers_and_later_reanalyses(built):
    db = sqlite_utils.Database(built)
    rows = {r["key"]: r for r in db["meta_analyses"].rows if r["position"] == 1}
    omega = rows["omega-2024-metaanalysis"]
    assert (omega["estimate"], omega["ci_low"], omega["ci_high"]) == (-0.6, -1.1, -0.1)
    assert json.loads(omega["included"]) == ["alpha-2009-crossover", "beta-2013-crossover"]
    assert omega["included_verified"] == 1
    assert json.loads(omega["later"]) == [{"relation": "reanalysis_of", "paper_id": "doi:10.5555/psi.2026"}]
    assert rows["psi-2026-letter"]["included_verified"] == 0 and rows["psi-2026-letter"]["estimate"] is None


# Expected numbers for the invented fixture, by hand (the per-trial arithmetic of each kind is
# spelled out in test_synthesis.py) and, for REML's tau^2, by maximising the restricted
# likelihood directly (not with harvest.synthesis). Per trial, SMD (SE):
#   alpha crossover MD -12 (CI -21 to -3), N 10, SD 20: t(0.975, 9) = 2.262157, SE 3.978503,
#         2(1 - r) = 10 (SE/SD)^2 = 0.395720, J = 0.914286: g -0.548571 (0.197566)
#   beta  crossover MD -0.9, p 0.01, N 28, no SD, r 0.5: g -0.508929 (0.195869)
#   gamma parallel MD -0.2 (CI -1.0 to 0.6), 50 + 49, SDs 2.1/2.0: g -0.096752 (0.195114)
#   delta parallel MD 0.1 (CI -0.7 to 0.9), 49 + 50, SD 2.2: g 0.045102 (0.181826)
# REML: tau^2 0.052292, estimate -0.271716, SE 0.149465, 95% CI -0.564662 to 0.021229, I^2 58.55%.
# Patients: 10 + 28 + 99 + 99 = 236, each crossover counted once (N, not 2N).
PAIN_SMDS = {"alpha-2009-crossover#1": (-0.548571, 0.197566), "beta-2013-crossover#1": (-0.508929, 0.195869),
             "gamma-2023-parallel#2": (-0.096752, 0.195114), "delta-2024-parallel#1": (0.045102, 0.181826)}


def test_stored_pooled_tables_hold_the_hand_computed_pool(built):
    db = sqlite_utils.Database(built)
    stored = db["pooled_estimates"].get(("pain_intensity", "REML"))
    assert (stored["k"], stored["patients"]) == (4, 236)
    assert [round(stored[f], 6) for f in ("tau2", "estimate", "se", "ci_low", "ci_high")] == \
        [0.052292, -0.271716, 0.149465, -0.564662, 0.021229]
    assert round(stored["i2"], 2) == 58.55
    studies = {r["effect_id"]: r for r in db.query(
        "select * from pooled_studies where outcome = 'pain_intensity' and method = 'REML'")}
    assert {k: (round(r["smd"], 6), round(r["smd_se"], 6)) for k, r in studies.items()} == PAIN_SMDS
    assert studies["beta-2013-crossover#1"]["patients"] == 28 and studies["alpha-2009-crossover#1"]["patients"] == 10
    # one effect per trial: gamma's primary 12-week result, not its interim look
    excluded = {e["effect_id"]: e["reason"] for e in json.loads(stored["excluded"])}
    assert excluded["gamma-2023-parallel#1"] == "another analysis of the same trial was chosen"
    assert excluded["eta-2010-standarddose#1"] == evidence.NOT_LOW_DOSE
    cumulative = list(db.query("select * from pooled_cumulative where outcome = 'pain_intensity' "
                               "and method = 'REML' order by step"))
    assert [r["year"] for r in cumulative] == [2009, 2013, 2023, 2024]
    assert round(cumulative[0]["estimate"], 6) == -0.548571 and round(cumulative[-1]["estimate"], 6) == -0.271716
    assert db["pooled_leave_one_out"].count_where("outcome = 'pain_intensity' and method = 'DL'") == 4
    for effect_id in studies:  # every pooled study traces to an effects row with a source
        assert db["effects"].get(effect_id)["source"].startswith("https://")
    over_time = list(db.query("select kind, year, estimate from pooled_over_time where outcome = 'pain_intensity'"))
    assert {"kind": "published", "year": 2024, "estimate": -0.6} in over_time
    assert [r["year"] for r in over_time if r["kind"] == "kb.db cumulative"] == [2009, 2013, 2023, 2024]
    domains = {r["domain"] for r in db.query("select domain from certainty where method = 'REML'")}
    assert domains == {"risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias", "overall"}
    printed = json.loads(invoke("pool", "--db", built, "--json").output)
    assert printed["sign"] == "negative favours LDN" and round(printed["estimate"], 6) == -0.271716


def sof(built):
    return {row["outcome"]: row for row in sqlite_utils.Database(built)["summary_of_findings"].rows}


def rounded(row, places=6):
    return [round(row[f], places) for f in ("estimate", "ci_low", "ci_high")]


def test_summary_of_findings_pools_pain_and_puts_it_back_on_a_0_to_10_scale(built):
    pain = sof(built)["pain_intensity"]
    assert (pain["k"], pain["patients"], pain["measure"]) == (4, 236, "smd")
    assert rounded(pain) == [-0.271716, -0.564662, 0.021229]
    # SD 1.583409 = sqrt(50) * 0.9 / (2 * t(0.975, 49) = 2.009575); -0.271716 * 1.583409 = -0.43,
    # -0.564662 * 1.583409 = -0.89, 0.021229 * 1.583409 = 0.03 (rounds to no difference).
    assert pain["absolute_effect"].startswith("0.4 points lower on a 0-10 scale (0.9 lower to no difference)")
    assert "minimal important difference is about 2.1 points" in pain["absolute_effect"]
    assert "https://doi.org/10.1002/acr.20449" in pain["absolute_basis"] and "SMD x 1.58" in pain["absolute_basis"]
    assert pain["certainty"] == "very low"
    assert pain["statement"] == "The evidence is very uncertain about the effect of LDN on pain."
    assert json.loads(pain["effect_ids"]) == list(PAIN_SMDS)


def test_summary_of_findings_pools_a_second_continuous_outcome(built):
    # Fatigue, gamma MD -3 and delta MD -1, all SDs 10: d = -0.3 and -0.1, J = 1 - 3/387 = 0.992248:
    # g -0.297674 (var 0.984556 * (99/2450 + 0.09/198) = 0.040232) and g -0.099225 (var 0.039834).
    # Q = 0.49 < 1 and REML's tau^2 is 0, so the pool is inverse-variance: w = 24.856, 25.104;
    # (-0.297674*24.856 - 0.099225*25.104)/49.960 = -0.197957, SE 1/sqrt(49.960) = 0.141477.
    fatigue = sof(built)["fatigue"]
    assert (fatigue["k"], fatigue["patients"], fatigue["measure"]) == (2, 198, "smd")
    assert rounded(fatigue) == [-0.197957, -0.475247, 0.079334]
    assert fatigue["statement"] == "LDN may result in little to no difference in fatigue."  # low: imprecision, publication bias


def test_summary_of_findings_pools_adverse_events_as_a_risk_ratio_with_absolute_numbers(built):
    # gamma 30/50 vs 28/49: log RR 0.048790, var 1/30 - 1/50 + 1/28 - 1/49 = 0.028639; delta 35/49 vs
    # 33/50: log RR 0.079043, var 0.018466. Q = 0.019 and tau^2 = 0: log RR (0.048790*34.917 +
    # 0.079043*54.154)/89.071 = 0.067183, SE 0.105958: RR 1.069492 (0.868931 to 1.316344).
    # Control risk 61/99: 1000 * 0.616162 * 0.069492 = 43 more (81 fewer to 195 more) per 1,000.
    events = sof(built)["adverse_events"]
    assert (events["k"], events["patients"], events["measure"]) == (2, 198, "rr")
    assert rounded(events, 4) == [1.0695, 0.8689, 1.3163]
    assert events["absolute_effect"] == ("43 more per 1,000 (from 81 fewer to 195 more), at a control risk of "
                                         "616 per 1,000")


def test_summary_of_findings_gives_one_trials_result_and_states_the_zero_event_rule(built):
    rows = sof(built)
    # delta 3/49 vs 1/50 alone: gamma's 0/50 vs 0/49 cannot enter a risk ratio and is named, not counted.
    withdrawals = rows["adverse_event_withdrawals"]
    assert (withdrawals["k"], withdrawals["patients"]) == (1, 99)
    assert rounded(withdrawals, 4) == [3.0612, 0.3296, 28.4295]
    assert "Gamma 2023: no events in either arm" in withdrawals["not_used"]
    # 0/49 vs 1/50 with 0.5 added to each cell: RR 0.34; 1000 * 0.02 * (0.34 - 1) = 13 fewer per 1,000.
    serious = rows["serious_adverse_events"]
    assert round(serious["estimate"], 6) == 0.34 and serious["absolute_effect"].startswith("13 fewer per 1,000")
    # crossover counts 10/28 vs 4/28, as if parallel: RR 2.5 (0.888540 to 7.034011), 28 patients.
    responders = rows["pain_responders"]
    assert (responders["k"], responders["patients"], rounded(responders)) == (1, 28, [2.5, 0.88854, 7.034011])
    assert withdrawals["certainty"] == serious["certainty"] == "very low"


def test_summary_of_findings_names_who_measured_what_was_not_reported(built):
    rows = sof(built)
    assert [r["outcome"] for r in sorted(rows.values(), key=lambda r: r["position"])] == [
        "pain_intensity", "fiq", "pain_responders", "fatigue", "sleep", "mood", "quality_of_life",
        "adverse_events", "adverse_event_withdrawals", "serious_adverse_events"]
    assert rows["fiq"]["k"] == 0 and rows["fiq"]["absolute_effect"] == "not reported"
    assert rows["fiq"]["statement"] == (
        "Not reported: no randomised trial of LDN gave numbers that can be pooled (reported in a form that "
        "cannot: Alpha 2009: a median difference has no SD to standardise with).")
    assert "Epsilon 2025: measured, but no effect estimate" in rows["sleep"]["not_used"]
    assert rows["sleep"]["statement"].endswith("(measured, but no effect estimate on public pages: Epsilon 2025).")
    assert rows["mood"]["statement"] == "Not reported: no randomised trial of LDN gave numbers that can be pooled."
    assert rows["mood"]["certainty"] is None


def test_certainty_per_outcome_with_the_reasons_of_each_domain(built):
    db = sqlite_utils.Database(built)
    pain = {r["domain"]: r for r in db.query("select * from certainty where outcome = 'pain_intensity' and method = 'REML'")}
    # alpha (high) 24% and beta (some concerns, from its one judged domain) 25% of the weight: under half.
    assert pain["risk_of_bias"]["downgrade"] == 0 and "which by itself lowers nothing: Delta 2024" in pain["risk_of_bias"]["reason"]
    assert pain["inconsistency"]["downgrade"] == 1                   # I² 59%
    assert pain["imprecision"]["downgrade"] == 1                     # CI includes 0 but not +0.2; 236 < 400
    assert pain["publication_bias"]["downgrade"] == 1
    assert "Epsilon 2025" in pain["publication_bias"]["reason"] and "NCT09990012" in pain["publication_bias"]["reason"]
    assert (pain["overall"]["downgrade"], sof(built)["pain_intensity"]["certainty"]) == (3, "very low")
    single = {r["domain"]: r for r in db.query(
        "select * from certainty where outcome = 'adverse_event_withdrawals' and method = 'single trial'")}
    assert single["inconsistency"]["reason"] == "Not assessable: a single trial."
    assert single["imprecision"]["downgrade"] == 2                   # RR 0.33 to 28.4 spans 0.75 and 1.25
    assert "Gamma" not in single["publication_bias"]["reason"]       # a double-zero trial reported its result
    events = {r["domain"]: r for r in db.query("select * from certainty where outcome = 'adverse_events'")}
    assert events["imprecision"]["downgrade"] == 1 and "126 events" in events["imprecision"]["reason"]  # 30 + 28 + 35 + 33


def test_sensitivity_analyses_for_pain(built):
    db = sqlite_utils.Database(built)
    found = {r["analysis"]: r for r in db.query("select * from sensitivity_analyses where outcome = 'pain_intensity'")}
    # Hartung-Knapp: q* = sum w (y - mu)^2 / 3, SE sqrt(q*/sum w), t(0.975, 3) = 3.182446: -0.745375 to 0.201942.
    assert rounded(found["hartung_knapp"]) == [-0.271716, -0.745375, 0.201942]
    # beta with r 0.3: g -0.602173 (var 0.056301); r 0.7: g -0.394215 (var 0.021909); pooled by REML.
    assert rounded(found["crossover_r_0.3"]) == [-0.283623, -0.60061, 0.033363]
    assert rounded(found["crossover_r_0.7"]) == [-0.252084, -0.510604, 0.006436]
    # epsilon from medians: g -0.158496 (var 0.065156) added, k 5; the CI now excludes no effect.
    medians = found["with_median_conversions"]
    assert (medians["k"], rounded(medians), medians["changes_conclusion"]) == (5, [-0.25331, -0.49665, -0.009971], 1)
    # beta's own d -0.45 (CI -0.83 to -0.07, SE 0.76/3.919928 = 0.193881) in place of ours.
    assert rounded(found["authors_effect_sizes"]) == [-0.257086, -0.535857, 0.021684]
    without_delta = found["leave_one_out:delta-2024-parallel#1"]
    assert (without_delta["k"], rounded(without_delta)) == (3, [-0.383721, -0.667638, -0.099804])
    assert without_delta["changes_conclusion"] == 1 and found["hartung_knapp"]["changes_conclusion"] == 0
    assert {r["analysis"] for r in db.query("select analysis from sensitivity_analyses where outcome = 'adverse_events'")} \
        == {"hartung_knapp", "leave_one_out:gamma-2023-parallel#4", "leave_one_out:delta-2024-parallel#3"}


def test_counts_say_what_they_count(built):
    db = sqlite_utils.Database(built)
    assert [t["key"] for t in evidence.ldn_trials(db)] == [
        "alpha-2009-crossover", "beta-2013-crossover", "gamma-2023-parallel", "delta-2024-parallel",
        "epsilon-2025-parallel"]
    home = db["evidence_pages"].get("home")["html"]
    assert "5 randomised trials of LDN\n    (at most 6 mg a day) in fibromyalgia with results" in home
    assert "key__in=alpha-2009-crossover%2Cbeta-2013-crossover%2Cgamma-2023-parallel%2Cdelta-2024-parallel%2C" \
           "epsilon-2025-parallel" in home
    assert "Theta 2008</a> (not randomised)" in home and "Eta 2010</a> (naltrexone 50 mg, not low-dose)" in home


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
        {"paper_id": key, "position": 1, "ref_type": "RetractionIn", "ref_pmid": f"9900{number}", "ref_source": "Retraction"}
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
    assert "no poolable mood effects" in invoke("pool", "--db", built, "--outcome", "mood").output
    # a dichotomous outcome pools log risk ratios: ln 1.069492 = 0.067183 (see the summary of findings)
    events = invoke("pool", "--db", built, "--outcome", "adverse_events").output
    assert "(log risk ratio, LDN over comparator" in events and "estimate 0.0672" in events
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
    for sizes in ("n_ldn: 28, n_comparator: 28, ", "n_ldn: 50, n_comparator: 49,", "n_ldn: 49, n_comparator: 50,"):
        text = text.replace(sizes, "")
    (folder / "trials.yml").write_text(text)
    path = tmp_path / "kb.db"
    assert invoke("build", "--db", path, "--curated", folder).exit_code == 0
    page = asyncio.run(publish_db.make_datasette(path).client.get("/")).text
    assert "Not pooled yet:" in page and "kb-forest" not in page
    assert "no: group sizes not reported" in page and "no: number of participants not reported" in page
    assert "Omega 2024" in page and "no: a median difference has no SD to standardise with" in page


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
    low = {"max_mg_per_day": 4.5}
    randomised = {"key": "a-2020-rct", "design": ["rct", "parallel"], "dose": low, "effects": [effect]}
    fixed_order = {"key": "b-2020-pilot", "design": ["nonrandomized", "parallel"], "dose": low, "effects": [effect]}
    standard = {"key": "c-2020-rct", "design": ["rct", "parallel"], "dose": {"max_mg_per_day": 50}, "effects": [effect]}
    unknown = {"key": "d-2020-rct", "design": ["rct", "parallel"], "effects": [effect]}
    [pooled] = evidence._effect_rows(randomised, "a", {})
    [shown] = evidence._effect_rows(fixed_order, "b", {})
    assert pooled["poolable"] == 1 and pooled["smd"] < 0
    assert shown["poolable"] == 0 and shown["smd"] is None
    assert shown["not_poolable_reason"] == evidence.NOT_RANDOMISED
    assert evidence._effect_rows(standard, "c", {})[0]["not_poolable_reason"] == evidence.NOT_LOW_DOSE
    assert evidence._effect_rows(unknown, "d", {})[0]["not_poolable_reason"] == evidence.DOSE_NOT_VERIFIED
    assert evidence._effect_rows({**randomised, "dose": {"max_mg_per_day": 6}}, "a", {})[0]["poolable"] == 1


def test_validation_names_a_pooled_result_that_is_not_a_number():
    entries = curate.load_curated(EVIDENCE)
    review = next(e for e in entries if isinstance(e.get("meta_analysis"), dict) and e["meta_analysis"].get("pooled"))
    review["meta_analysis"]["pooled"][0]["i2"] = "high"
    problems = curate.validate(entries, tag.VOCABULARY_VALUES)
    assert any(f"{review['key']}: " in p and "pooled[1]: i2 must be a number, not 'high'" in p for p in problems), problems


def evidence_section(page):
    return page[page.index('id="what-the-evidence-says"'):page.index("</section>")]


def test_evidence_pages_are_served_as_stored_under_any_base_url(built, tmp_path):
    copy = tmp_path / "kb.db"
    shutil.copy(built, copy)
    db = sqlite_utils.Database(copy)
    stored = db["evidence_pages"].get("home")["html"]
    assert "@BASE@/kb/summary_of_findings/pain_intensity" in stored
    # the page shows what is stored, not a recomputation: change the stored words, the page follows
    db["evidence_pages"].update("home", {"html": stored.replace("Robustness:", "Stored robustness:")})
    db.conn.close()
    datasette = Datasette(immutables=[str(copy)], metadata=publish_db.metadata(),
                          plugins_dir=str(publish_db.ROOT / "plugins"), template_dir=str(publish_db.ROOT / "templates"),
                          settings={**publish_db.SETTINGS, "base_url": "/prefix/"})
    page = asyncio.run(datasette.client.get("/")).text
    section = evidence_section(page)
    assert "Stored robustness:" in section
    assert 'href="/prefix/kb/summary_of_findings/pain_intensity"' in section
    assert 'href="/kb/' not in section and "@BASE@" not in page
    for path, heading in (("/summary-of-findings", "Summary of findings: low-dose naltrexone for fibromyalgia"),
                          ("/robustness", "How robust is the summary of findings?")):
        response = asyncio.run(datasette.client.get(path))
        assert response.status_code == 200 and f"<h1>{heading}</h1>" in response.text
        assert 'href="/prefix/kb/sensitivity_analyses/' in response.text or path != "/robustness"


def test_home_page_frames_the_pooled_result_honestly(built):
    page = asyncio.run(publish_db.make_datasette(built).client.get("/")).text
    section = evidence_section(page)
    # k = 4 < 5: no prediction interval quoted or drawn, and the page says why
    assert "No prediction interval is given: from fewer than 5 trials" in section
    assert "kb-forest-pi" not in section and "prediction interval −" not in section
    assert "a new trial could find anything" not in section
    assert "2 of <a" in section and "sensitivity analyses</a> change the conclusion on pain" in section
    # the compact summary of findings: every number a link to its row
    assert '<a href="/kb/summary_of_findings/adverse_events">RR 1.07 (0.87 to 1.32)</a>' in section
    assert '<a href="/kb/summary_of_findings/fiq">not reported</a>' in section
    # published estimates rounded alike; an I² nobody reported says so
    assert ">−0.88 (−1.50 to −0.25)</a></td><td>not reported</td>" in section
    sof_page = asyncio.run(publish_db.make_datasette(built).client.get("/summary-of-findings")).text
    assert "0.5 added to each of its four" in sof_page.replace("\n      ", " ") and 'id="note-serious_adverse_events"' in sof_page


def test_forest_axis_fits_the_trials_and_a_prediction_interval_is_drawn_only_from_five_trials():
    items = [{"study": "A", "smd": -0.5, "ci_low": -0.9, "ci_high": -0.1, "href": "a"},
             {"study": "B", "smd": 0.2, "ci_low": -0.3, "ci_high": 0.7, "href": "b"}]
    pooled = {"estimate": -0.15, "ci_low": -0.6, "ci_high": 0.3, "pi_low": -4.8, "pi_high": 4.5, "k": 2,
              "href": "p", "show_prediction": False}
    svg = str(evidence_pages.forest_svg(items, pooled, "t"))
    assert ">1.00</text>" in svg and ">−1.00</text>" in svg and "5.00" not in svg  # the axis ends at +/-1
    assert "kb-forest-pi" not in svg
    assert "kb-forest-pi" in str(evidence_pages.forest_svg(items, {**pooled, "show_prediction": True}, "t"))


def test_a_study_without_a_verified_year_says_so(tmp_path):
    assert evidence.study_label(None, "Rho R, Sigma S", "rho-x", None) == "Rho (year not verified)"
    folder = tmp_path / "curated"
    shutil.copytree(EVIDENCE, folder)
    text = (folder / "trials.yml").read_text().replace("  year: 2025\n", "")
    (folder / "trials.yml").write_text(text)
    path = tmp_path / "kb.db"
    assert invoke("build", "--db", path, "--curated", folder).exit_code == 0
    section = evidence_section(asyncio.run(publish_db.make_datasette(path).client.get("/")).text)
    assert ">Epsilon (year not verified)</a>" in section


def test_web_addresses_in_stored_text_become_links_named_by_doi_or_host():
    shown = str(with_links("SD from a report (https://example.org/a?x=1&y=2); MID: Mease 2011 "
                           "(https://doi.org/10.1002/acr.20449, seen on https://example.net/t/1). <b>"))
    assert shown == ('SD from a report (<a href="https://example.org/a?x=1&amp;y=2">example.org</a>); MID: Mease 2011 '
                     '(<a href="https://doi.org/10.1002/acr.20449">doi:10.1002/acr.20449</a>, seen on '
                     '<a href="https://example.net/t/1">example.net</a>). &lt;b&gt;')
