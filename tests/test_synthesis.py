"""harvest.synthesis: effect-size conversion, random-effects pooling, leave-one-out,
cumulative meta-analysis and GRADE, checked against published output and hand calculations."""

import math

import pytest

from harvest import synthesis

# The 13 BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): TB cases and non-cases,
# vaccinated (tpos, tneg) and not (cpos, cneg), with the publication year. Counts as printed in
# metafor's README (https://github.com/wviechtb/metafor, "dat.bcg"), on
# https://metafor-project.org/doku.php/analyses:vanhouwelingen2002 (Table I of van Houwelingen
# et al. 2002) and in the dataset file
# https://raw.githubusercontent.com/jasp-stats/jasp-data-library/main/BCG%20Vaccine/BCG%20Vaccine.csv
BCG = [
    ("Aronson", 1948, 4, 119, 11, 128), ("Ferguson & Simes", 1949, 6, 300, 29, 274),
    ("Rosenthal 1960", 1960, 3, 228, 11, 209), ("Hart & Sutherland", 1977, 62, 13536, 248, 12619),
    ("Frimodt-Moller", 1973, 33, 5036, 47, 5761), ("Stein & Aronson", 1953, 180, 1361, 372, 1079),
    ("Vandiviere", 1973, 8, 2537, 10, 619), ("TPT Madras", 1980, 505, 87886, 499, 87892),
    ("Coetzee & Berjak", 1968, 29, 7470, 45, 7232), ("Rosenthal 1961", 1961, 17, 1699, 65, 1600),
    ("Comstock 1974", 1974, 186, 50448, 141, 27197), ("Comstock & Webster", 1969, 5, 2493, 3, 2338),
    ("Comstock 1976", 1976, 27, 16886, 29, 17825),
]


def bcg_log_risk_ratios():
    """escalc(measure="RR"): yi = log((a/n1)/(c/n2)), vi = 1/a - 1/n1 + 1/c - 1/n2."""
    rows = []
    for study, year, a, b, c, d in BCG:
        rows.append({"study": study, "year": year, "yi": math.log((a / (a + b)) / (c / (c + d))),
                     "vi": 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)})
    return rows


def rounded(value):
    return round(value, 4)


def test_reml_reproduces_metafor_on_the_bcg_trials():
    # metafor's printed rma(yi, vi, data = dat) for dat.bcg, log risk ratios, as shown on
    # https://cttir.github.io/courses/course3_design_causal/labs/lab_week4_session2_slides.html
    # tau^2 0.3132, I^2 92.22%, Q(df = 12) = 152.2330, estimate -0.7145, se 0.1798,
    # ci.lb -1.0669, ci.ub -0.3622.
    studies = bcg_log_risk_ratios()
    result = synthesis.pool([s["yi"] for s in studies], [s["vi"] for s in studies], "REML")
    assert rounded(result["estimate"]) == -0.7145
    assert rounded(result["se"]) == 0.1798
    assert (rounded(result["ci_low"]), rounded(result["ci_high"])) == (-1.0669, -0.3622)
    assert rounded(result["tau2"]) == 0.3132
    assert round(result["i2"], 2) == 92.22
    assert rounded(result["q"]) == 152.2330 and result["q_df"] == 12


def test_dersimonian_laird_reproduces_metafor_on_the_bcg_trials():
    # metafor's own test of rma(yi, vi, data = dat, method = "DL") on dat.bcg, RR (checked
    # against Stata's metan there):
    # https://github.com/wviechtb/metafor/blob/master/tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r
    # estimate -0.7141, ci.lb -1.0644, ci.ub -0.3638, zval -3.9952, tau^2 0.3088, I^2 92.1173,
    # and QE 152.2330 (same data, FE model). se = |estimate| / |z| = 0.1787.
    studies = bcg_log_risk_ratios()
    result = synthesis.pool([s["yi"] for s in studies], [s["vi"] for s in studies], "DL")
    assert rounded(result["estimate"]) == -0.7141
    assert rounded(result["se"]) == 0.1787
    assert rounded(result["estimate"] / result["se"]) == -3.9952
    assert (rounded(result["ci_low"]), rounded(result["ci_high"])) == (-1.0644, -0.3638)
    assert rounded(result["tau2"]) == 0.3088
    assert rounded(result["i2"]) == 92.1173
    assert rounded(result["q"]) == 152.2330


def test_hartung_knapp_reproduces_metafor_on_the_bcg_trials():
    # metafor's README, rma(yi, vi, data = dat, test = "knha") on dat.bcg:
    # https://github.com/wviechtb/metafor (README.md): estimate -0.7145, se 0.1808,
    # tval -3.9522, df 12, pval 0.0019, ci.lb -1.1084, ci.ub -0.3206.
    studies = bcg_log_risk_ratios()
    result = synthesis.pool([s["yi"] for s in studies], [s["vi"] for s in studies], "REML", hartung_knapp=True)
    assert rounded(result["estimate"]) == -0.7145
    assert rounded(result["se"]) == 0.1808
    assert rounded(result["estimate"] / result["se"]) == -3.9522
    assert rounded(result["p_value"]) == 0.0019
    assert (rounded(result["ci_low"]), rounded(result["ci_high"])) == (-1.1084, -0.3206)


def test_dersimonian_laird_i2_is_the_q_based_formula():
    # For DL, tau^2-based I^2 equals (Q - df) / Q exactly.
    studies = bcg_log_risk_ratios()
    result = synthesis.pool([s["yi"] for s in studies], [s["vi"] for s in studies], "DL")
    assert result["i2"] == pytest.approx(100 * (result["q"] - 12) / result["q"], abs=1e-9)


def test_hartung_knapp_by_hand():
    # Three studies, DL. By hand: w = 1/v = 10, 5, 2.5; fixed mean = (-5 - 1 + 0.25)/17.5
    # = -0.328571; Q = 10*0.171429^2 + 5*0.128571^2 + 2.5*0.428571^2 = 0.835714 < df 2,
    # so tau^2 = 0 and the estimate is the fixed mean. HK: q* = Q/(k-1) = 0.417857,
    # se = sqrt(q* / 17.5) = 0.154524, CI = -0.328571 -/+ t(0.975, 2) * se, t = 4.302653.
    result = synthesis.pool([-0.5, -0.2, 0.1], [0.1, 0.2, 0.4], "DL", hartung_knapp=True)
    assert result["tau2"] == 0
    assert result["estimate"] == pytest.approx(-0.328571, abs=1e-6)
    assert result["se"] == pytest.approx(0.154524, abs=1e-6)
    assert result["ci_low"] == pytest.approx(-0.328571 - 4.302653 * 0.154524, abs=1e-5)
    plain = synthesis.pool([-0.5, -0.2, 0.1], [0.1, 0.2, 0.4], "DL")
    assert plain["se"] == pytest.approx(math.sqrt(1 / 17.5), abs=1e-9)


def test_reml_with_equal_variances_has_its_closed_form():
    # With equal v, REML's tau^2 is the sample variance (ddof 1) minus v: here mean 0.75,
    # squared deviations 14.75, / 3 = 4.916667, minus 0.01 = 4.906667. Homogeneous effects give 0.
    assert synthesis.pool([-2, 2, 0, 3], [0.01] * 4, "REML")["tau2"] == pytest.approx(4.906667, abs=1e-6)
    assert synthesis.pool([0.1, 0.1, 0.1], [0.1, 0.2, 0.4], "REML")["tau2"] == 0


def test_prediction_interval_uses_t_with_k_minus_2_df():
    studies = bcg_log_risk_ratios()
    result = synthesis.pool([s["yi"] for s in studies], [s["vi"] for s in studies], "REML")
    half = 2.200985 * math.sqrt(result["se"] ** 2 + result["tau2"])  # t(0.975, 11)
    assert result["pi_low"] == pytest.approx(result["estimate"] - half, abs=1e-5)
    assert result["pi_high"] == pytest.approx(result["estimate"] + half, abs=1e-5)
    two = synthesis.pool([-0.5, 0.1], [0.1, 0.2])
    assert two["pi_low"] is None and two["pi_high"] is None


def test_weights_sum_to_100_and_favour_precise_studies():
    studies = bcg_log_risk_ratios()
    result = synthesis.meta_analysis(studies)
    weights = {s["study"]: s["weight"] for s in result["studies"]}
    assert sum(weights.values()) == pytest.approx(100)
    assert weights["TPT Madras"] > weights["Aronson"]


def test_leave_one_out_and_cumulative():
    studies = bcg_log_risk_ratios()
    result = synthesis.meta_analysis(studies, "DL")
    assert len(result["leave_one_out"]) == 13
    without_madras = next(r for r in result["leave_one_out"] if r["omitted"] == "TPT Madras")
    direct = synthesis.pool([s["yi"] for s in studies if s["study"] != "TPT Madras"],
                            [s["vi"] for s in studies if s["study"] != "TPT Madras"], "DL")
    assert without_madras["estimate"] == pytest.approx(direct["estimate"])
    steps = result["cumulative"]
    assert [s["year"] for s in steps] == sorted(s["year"] for s in steps)
    assert steps[0]["added"] == "Aronson" and steps[0]["k"] == 1
    assert steps[0]["estimate"] == pytest.approx(studies[0]["yi"])
    assert steps[-1]["estimate"] == pytest.approx(result["estimate"])


@pytest.mark.parametrize("yi, vi, message", [
    ([], [], "at least one study"),
    ([0.1, 0.2], [0.1], "one variance per effect"),
    ([0.1, 0.2], [0.1, 0.0], "variance positive"),
    ([0.1, float("nan")], [0.1, 0.1], "variance positive"),
])
def test_bad_input_is_refused(yi, vi, message):
    with pytest.raises(synthesis.SynthesisError, match=message):
        synthesis.pool(yi, vi)


def test_unknown_method_is_refused():
    with pytest.raises(synthesis.SynthesisError, match="unknown method 'PM'"):
        synthesis.pool([0.1, 0.2], [0.1, 0.1], "PM")


# --- conversion ---------------------------------------------------------------------------


def test_parallel_md_with_ci_becomes_hedges_g():
    # MD -1.0 (95% CI -2.0 to 0.0), 20 + 20, SD 2.0. By hand: df 38, t(0.975, 38) = 2.024394,
    # SE = 2.0 / (2 * 2.024394) = 0.493972; d = -0.5; J = 1 - 3/151 = 0.980132;
    # g = -0.490066; var(d) = (0.493972/2)^2 + 0.25/80 = 0.064128; var(g) = J^2 var(d) = 0.061605.
    effect = {"measure": "md", "estimate": -1.0, "ci_low": -2.0, "ci_high": 0.0,
              "n_ldn": 20, "n_comparator": 20, "sd": 2.0}
    result = synthesis.to_smd(effect)
    assert result["smd"] == pytest.approx(-0.490066, abs=1e-6)
    assert result["smd_variance"] == pytest.approx(0.061605, abs=1e-6)
    assert "Hedges" in result["derivation"] and "CI" not in result.get("not_poolable", "")


def test_parallel_md_from_group_sds_matches_the_textbook_variance():
    # Without a CI or p: SE from pooled SD; var(d) = (n1+n2)/(n1 n2) + d^2 / (2(n1+n2)).
    effect = {"measure": "md", "estimate": -0.6, "n_ldn": 30, "n_comparator": 25,
              "sd_ldn": 1.8, "sd_comparator": 2.2}
    sd = math.sqrt((29 * 1.8**2 + 24 * 2.2**2) / 53)
    d = -0.6 / sd
    j = 1 - 3 / (4 * 53 - 1)
    result = synthesis.to_smd(effect)
    assert result["smd"] == pytest.approx(j * d)
    assert result["smd_variance"] == pytest.approx(j**2 * (55 / 750 + d**2 / 110))


def test_md_from_group_means_when_no_difference_is_reported():
    effect = {"measure": "md", "mean_ldn": 4.0, "mean_comparator": 5.0, "n_ldn": 30, "n_comparator": 25,
              "sd_ldn": 1.8, "sd_comparator": 2.2}
    assert synthesis.to_smd(effect)["smd"] == synthesis.to_smd({**effect, "estimate": -1.0})["smd"]


def test_exact_p_value_gives_the_se():
    effect = {"measure": "md", "estimate": -1.2, "p_value": 0.04, "n_ldn": 15, "n_comparator": 15, "sd": 2.5}
    result = synthesis.to_smd(effect)
    assert "exact p = 0.04" in result["derivation"]
    bound = {**effect, "p_value_text": "<0.05"}
    assert "not_poolable" in synthesis.to_smd(bound)


def test_reported_smd_with_exact_p_uses_t_on_the_trial_df():
    # SMD 0.19 with exact p 0.236, 48 + 50: df 96, t(1 - 0.118, 96) = 1.192512, SE = 0.159327.
    effect = {"measure": "smd", "estimate": 0.19, "p_value": 0.236, "n_ldn": 48, "n_comparator": 50}
    result = synthesis.to_smd(effect)
    assert result["smd"] == 0.19
    assert math.sqrt(result["smd_variance"]) == pytest.approx(0.159327, abs=1e-6)
    assert "exact p = 0.236" in result["derivation"] and "df 96" in result["derivation"]


def test_crossover_uses_the_paired_se_and_between_person_sd():
    # N = 28, MD -0.9 (paired 95% CI -1.5 to -0.3), between-person SD 2.0. By hand: df 27,
    # t = 2.051831, SE = 1.2 / (2 t) = 0.292423; d = -0.45; 2(1 - r) = 28 (SE/SD)^2 = 0.598581;
    # var(d) = (1/28 + 0.2025/56) * 0.598581 = 0.023542; J = 1 - 3/107 = 0.971963.
    effect = {"measure": "md", "estimate": -0.9, "ci_low": -1.5, "ci_high": -0.3,
              "n_ldn": 28, "n_comparator": 28, "sd": 2.0}
    result = synthesis.to_smd(effect, crossover=True)
    assert result["smd"] == pytest.approx(0.971963 * -0.45, abs=1e-6)
    assert result["smd_variance"] == pytest.approx(0.971963**2 * 0.023542, abs=2e-6)
    assert "crossover" in result["derivation"] and "23.2.7" in result["derivation"]
    # A parallel analysis of the same numbers ignores the pairing and is less precise here.
    assert synthesis.to_smd(effect)["smd_variance"] > result["smd_variance"]


def test_crossover_without_paired_analysis_is_not_poolable():
    effect = {"measure": "md", "estimate": -0.9, "n_ldn": 28, "n_comparator": 28,
              "sd_ldn": 2.0, "sd_comparator": 2.1}
    assert "within-person correlation" in synthesis.to_smd(effect, crossover=True)["not_poolable"]


def test_higher_is_better_scale_is_flipped_so_negative_still_favours_ldn():
    effect = {"measure": "smd", "estimate": 0.4, "ci_low": 0.1, "ci_high": 0.7,
              "instrument": "pain threshold, higher is better"}
    assert synthesis.to_smd(effect)["smd"] == -0.4


@pytest.mark.parametrize("effect, reason", [
    ({"measure": "median_difference", "estimate": -1}, "median"),
    ({"measure": "rr", "estimate": 1.2}, "dichotomous"),
    ({"measure": "md", "estimate": -1, "n_ldn": 10, "n_comparator": 10}, "no SD, CI or exact p-value"),
    ({"measure": "md", "estimate": -1, "sd": 2, "ci_low": -2, "ci_high": 0}, "group sizes"),
    ({"measure": "smd", "estimate": -0.3}, "without a 95% CI or an exact p-value"),
    ({"measure": "md", "n_ldn": 10, "n_comparator": 10, "sd": 2}, "no estimate reported"),
    ({"measure": "smd", "estimate": -0.3, "p_value": 0.2, "p_value_text": "0.2 (rounded)"}, "exact p-value"),
])
def test_unconvertible_results_say_why(effect, reason):
    assert reason in synthesis.to_smd(effect)["not_poolable"]


# --- GRADE --------------------------------------------------------------------------------


def trial(study, weight, rob="low", n=200):
    return {"study": study, "weight": weight, "rob_overall": rob, "comparator": "placebo",
            "population": "adults with fibromyalgia", "n": n}


def test_grade_starts_high_and_downgrades_each_domain_with_numbers_in_the_reason():
    clear = {"k": 3, "estimate": -0.4, "ci_low": -0.6, "ci_high": -0.2, "i2": 10.0, "tau2": 0.01}
    trials = [trial("A", 40), trial("B", 35), trial("C", 25)]
    assert synthesis.grade(clear, trials)["certainty"] == "high"

    messy = {"k": 3, "estimate": -0.2, "ci_low": -0.6, "ci_high": 0.2, "i2": 70.0, "tau2": 0.2}
    small = [trial("A", 60, rob=None, n=30), trial("B", 25, n=40), trial("C", 15, rob="high", n=50)]
    graded = synthesis.grade(messy, small, unpublished_trials=["NCT00000000"])
    by_domain = {d["domain"]: d for d in graded["domains"]}
    assert graded["certainty"] == "very low"
    assert by_domain["imprecision"]["downgrade"] == 2
    assert "120 patients" in by_domain["imprecision"]["reason"]
    assert "I² 70%" in by_domain["inconsistency"]["reason"]
    assert "60% from trials with some concerns or not assessed" in by_domain["risk_of_bias"]["reason"]
    assert "NCT00000000" in by_domain["publication_bias"]["reason"]
    assert by_domain["indirectness"]["downgrade"] == 0


def test_parallel_md_without_sd_takes_the_sd_from_the_se_of_the_difference():
    # MD -0.34 (95% CI -0.95 to 0.27), n 49 + 50. By hand: df 97, t(0.975, 97) = 1.98472,
    # SE = 1.22 / 3.96944 = 0.30735, SD = SE / sqrt(1/49 + 1/50) = 1.52900, d = -0.22237,
    # J = 1 - 3/387 = 0.99225, g = -0.22064.
    effect = {"measure": "md", "estimate": -0.34, "ci_low": -0.95, "ci_high": 0.27, "n_ldn": 49, "n_comparator": 50}
    result = synthesis.to_smd(effect)
    assert round(result["smd"], 4) == -0.2206
    assert "Cochrane Handbook 6.5.2.3" in result["derivation"]
    # var(g) = J^2 * ((SE/SD)^2 + d^2 / (2 * 99)): the SE and SD give back 1/49 + 1/50
    assert round(result["smd_variance"], 5) == round(0.99225**2 * (1 / 49 + 1 / 50 + 0.22237**2 / 198), 5)


def test_crossover_without_between_person_sd_imputes_the_correlation():
    # Percent change -28.8 vs -18.0 (MD -10.8 points), paired p = 0.016, N = 28. By hand: df 27,
    # t(0.992, 27) = 2.57018, SE = 4.20204, SD_diff = SE * sqrt(28) = 22.2351; r = 0.5 gives
    # SD = SD_diff, d = -0.48572, J = 1 - 3/107 = 0.97196, g = -0.47210.
    effect = {"measure": "percent_change_difference", "mean_ldn": -28.8, "mean_comparator": -18.0,
              "p_value": 0.016, "n_ldn": 28, "n_comparator": 28}
    result = synthesis.to_smd(effect, crossover=True)
    assert round(result["smd"], 4) == -0.4721
    assert "r = 0.5" in result["derivation"] and "percentage points" in result["derivation"]
