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


def test_leave_one_out_and_cumulative_by_hand():
    # Three studies, DL (the example of test_hartung_knapp_by_hand). Leaving out the first:
    # w = 5, 2.5; fixed mean = (-1 + 0.25)/7.5 = -0.1; Q = 5*0.1^2 + 2.5*0.2^2 = 0.15 < df 1, so
    # tau^2 = 0; se = sqrt(1/7.5) = 0.365148. Cumulative, step 2: w = 10, 5, mean (-5 - 1)/15 =
    # -0.4; Q = 10*0.1^2 + 5*0.2^2 = 0.3 < 1, tau^2 = 0, se = sqrt(1/15) = 0.258199.
    studies = [{"study": "A", "yi": -0.5, "vi": 0.1, "year": 2001}, {"study": "B", "yi": -0.2, "vi": 0.2, "year": 2002},
               {"study": "C", "yi": 0.1, "vi": 0.4, "year": 2003}]
    result = synthesis.meta_analysis(studies, "DL")
    without_a = next(r for r in result["leave_one_out"] if r["omitted"] == "A")
    assert (round(without_a["estimate"], 6), round(without_a["se"], 6), without_a["k"]) == (-0.1, 0.365148, 2)
    steps = result["cumulative"]
    assert [(s["added"], s["k"]) for s in steps] == [("A", 1), ("B", 2), ("C", 3)]
    assert (steps[0]["estimate"], round(steps[0]["se"], 6)) == (-0.5, 0.316228)
    assert (round(steps[1]["estimate"], 6), round(steps[1]["se"], 6)) == (-0.4, 0.258199)
    assert round(steps[2]["estimate"], 6) == -0.328571
    bcg = synthesis.meta_analysis(bcg_log_risk_ratios(), "DL")
    assert len(bcg["leave_one_out"]) == 13 and [s["year"] for s in bcg["cumulative"]][:3] == [1948, 1949, 1953]


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
    # Without a CI or p: SE from the pooled SD. By hand: SD = sqrt((29*1.8^2 + 24*2.2^2)/53)
    # = sqrt(210.12/53) = 1.991112; d = -0.6/1.991112 = -0.301339; J = 1 - 3/211 = 0.985782;
    # g = -0.297055; var(g) = J^2 * ((30+25)/(30*25) + d^2/(2*55)) = 0.971766 * 0.074159 = 0.072065.
    effect = {"measure": "md", "estimate": -0.6, "n_ldn": 30, "n_comparator": 25,
              "sd_ldn": 1.8, "sd_comparator": 2.2}
    result = synthesis.to_smd(effect)
    assert round(result["smd"], 6) == -0.297055
    assert round(result["smd_variance"], 6) == 0.072065


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


def test_reported_smd_takes_its_se_from_the_ci_with_z_not_t():
    # SMD -0.3 (95% CI -0.7 to 0.1), 20 + 20: SMD intervals are normal-based, so SE = 0.8 /
    # (2 * 1.959964) = 0.204085; with t(0.975, 38) = 2.024394 it would be 0.197590.
    effect = {"measure": "smd", "estimate": -0.3, "ci_low": -0.7, "ci_high": 0.1, "n_ldn": 20, "n_comparator": 20}
    assert round(math.sqrt(synthesis.to_smd(effect)["smd_variance"]), 6) == 0.204085


@pytest.mark.parametrize("r, smd, variance", [
    # MD -0.9, paired p = 0.01, N = 28, no SD. By hand: t(0.995, 27) = 2.770683, SE = 0.324829,
    # SD_diff = SE*sqrt(28) = 1.718840, SD = SD_diff / sqrt(2(1 - r)), d = -0.9/SD, J = 0.971963,
    # var(g) = J^2 * (1/28 + d^2/56) * 28*(SE/SD)^2 (= 2(1 - r)).
    (0.3, -0.602173, 0.056301),  # SD 1.452682, d -0.619543
    (0.5, -0.508929, 0.038365),  # SD 1.718840, d -0.523608
    (0.7, -0.394215, 0.021909),  # SD 2.219042, d -0.405582
])
def test_crossover_imputed_correlation_can_be_varied(r, smd, variance):
    effect = {"measure": "md", "estimate": -0.9, "p_value": 0.01, "n_ldn": 28, "n_comparator": 28}
    result = synthesis.to_smd(effect, crossover=True, correlation=r)
    assert (round(result["smd"], 6), round(result["smd_variance"], 6)) == (smd, variance)
    assert synthesis.imputes_correlation(effect) and not synthesis.imputes_correlation({**effect, "sd": 2.0})


# --- dichotomous results ------------------------------------------------------------------


def test_log_risk_ratio_from_counts_reproduces_metafor():
    # metafor's README (escalc, measure "RR", dat.bcg): Aronson 1948, 4/123 vaccinated vs 11/139
    # not: yi -0.8893, vi 0.3256; TPT Madras 505/88391 vs 499/88391: yi 0.0120, vi 0.0040.
    aronson = synthesis.to_log_rr({"measure": "responders", "events_ldn": 4, "n_ldn": 123, "events_comparator": 11,
                                   "n_comparator": 139})
    assert (round(aronson["log_rr"], 4), round(aronson["log_rr_variance"], 4)) == (-0.8893, 0.3256)
    madras = synthesis.to_log_rr({"measure": "rr", "events_ldn": 505, "n_ldn": 88391, "events_comparator": 499,
                                  "n_comparator": 88391})
    assert (round(madras["log_rr"], 4), round(madras["log_rr_variance"], 4)) == (0.0120, 0.0040)


def test_zero_cells_get_half_added_and_double_zero_trials_are_left_out():
    # 0/49 vs 1/50: a zero cell, so 0.5 is added to each cell: 0.5/50 vs 1.5/51, RR = 0.01/0.029412
    # = 0.34; var(log RR) = 1/0.5 - 1/50 + 1/1.5 - 1/51 = 2.627059.
    one_zero = synthesis.to_log_rr({"measure": "responders", "events_ldn": 0, "n_ldn": 49, "events_comparator": 1,
                                    "n_comparator": 50})
    assert round(math.exp(one_zero["log_rr"]), 6) == 0.34
    assert round(one_zero["log_rr_variance"], 6) == 2.627059 and "0.5 added to each cell" in one_zero["derivation"]
    for a, c in ((0, 0), (49, 50)):
        both = synthesis.to_log_rr({"measure": "responders", "events_ldn": a, "n_ldn": 49, "events_comparator": c,
                                    "n_comparator": 50})
        assert both == {"not_poolable": synthesis.DOUBLE_ZERO}
    # No cell is zero: nothing is added. 3/49 vs 1/50: RR = 3.061224, var = 1/3 - 1/49 + 1 - 1/50 = 1.292925.
    plain = synthesis.to_log_rr({"measure": "responders", "events_ldn": 3, "n_ldn": 49, "events_comparator": 1,
                                 "n_comparator": 50})
    assert (round(math.exp(plain["log_rr"]), 6), round(plain["log_rr_variance"], 6)) == (3.061224, 1.292925)


def test_reported_risk_ratio_takes_its_se_from_the_ci_and_percentages_alone_are_not_enough():
    # RR 1.0 (0.5 to 2.0): SE(log RR) = (ln 2 - ln 0.5) / (2 * 1.959964) = 0.353653.
    reported = synthesis.to_log_rr({"measure": "rr", "estimate": 1.0, "ci_low": 0.5, "ci_high": 2.0})
    assert round(math.sqrt(reported["log_rr_variance"]), 6) == 0.353653
    assert "neither event counts" in synthesis.to_log_rr({"measure": "responders", "p_value": 0.05})["not_poolable"]


# --- medians and quartiles ----------------------------------------------------------------


def test_wan_conversion_reproduces_a_worked_example():
    # Wan et al. 2014 (BMC Med Res Methodol 14:135, scenario C3): SD = (q3 - q1) / eta(n),
    # eta(n) = 2 * Phi^-1((0.75n - 0.125)/(n + 0.25)); mean = (q1 + m + q3)/3. Worked example
    # (q1 0.02, q3 0.04, n 100) published with the formula at
    # https://imathworks.com/cv/solved-how-to-calculate-mean-and-standard-deviation-from-median-and-quartiles/:
    # SD 0.0150441.
    mean, sd = synthesis.wan_mean_sd(0.02, 0.03, 0.04, 100)
    assert round(sd, 7) == 0.0150441 and round(mean, 6) == 0.03
    # By hand, n = 30: eta = 2 * Phi^-1(22.375/30.25 = 0.739669) = 1.284653; SD = 4/1.284653 = 3.113681;
    # a skewed arm's mean moves off the median: (2 + 3 + 7)/3 = 4.
    assert [round(x, 6) for x in synthesis.wan_mean_sd(3.0, 5.0, 7.0, 30)] == [5.0, 3.113681]
    assert synthesis.wan_mean_sd(2.0, 3.0, 7.0, 30)[0] == 4.0


def test_medians_per_arm_become_an_smd_for_parallel_and_crossover_trials():
    # Parallel, 30 + 30: means 5.0 and 5.5, both SDs 3.113681 (above); d = -0.5/3.113681 = -0.160582;
    # J = 1 - 3/231 = 0.987013; g = -0.158497; var(g) = J^2 * (60/900 + d^2/120) = 0.065156.
    parallel = {"measure": "median_difference", "n_ldn": 30, "n_comparator": 30, "median_ldn": 5.0, "q1_ldn": 3.0,
                "q3_ldn": 7.0, "median_comparator": 5.5, "q1_comparator": 3.5, "q3_comparator": 7.5}
    result = synthesis.from_medians(parallel)
    assert (round(result["smd"], 6), round(result["smd_variance"], 6)) == (-0.158496, 0.065156)
    assert "Wan et al. 2014" in result["derivation"]
    # Crossover, N = 20, medians 4 vs 5 with IQRs 2-6 and 3-7: eta(20) = 1.253375, SD = 3.191384 in
    # both conditions; r = 0.5 gives paired SE = sqrt((2 SD^2 - SD^2)/20) = 0.713615 and 2(1 - r) = 1;
    # d = -1/3.191384 = -0.313344; J = 1 - 3/75 = 0.96; g = -0.300810; var(g) = J^2 (1/20 + d^2/40) = 0.048342.
    crossover = {**parallel, "n_ldn": 20, "n_comparator": 20, "median_ldn": 4.0, "q1_ldn": 2.0, "q3_ldn": 6.0,
                 "median_comparator": 5.0, "q1_comparator": 3.0, "q3_comparator": 7.0}
    result = synthesis.from_medians(crossover, crossover=True)
    assert (round(result["smd"], 6), round(result["smd_variance"], 6)) == (-0.30081, 0.048342)
    assert "not_poolable" in synthesis.from_medians({**parallel, "q1_ldn": None})
    assert "number analysed" in synthesis.from_medians({**parallel, "n_ldn": None})["not_poolable"]


# --- GRADE --------------------------------------------------------------------------------


def trial(study, weight, rob="low", n=200):
    return {"study": study, "weight": weight, "rob": rob, "comparator": "placebo",
            "population": "adults with fibromyalgia", "n": n}


CLEAR = {"k": 3, "estimate": -0.4, "ci_low": -0.6, "ci_high": -0.25, "i2": 10.0, "tau2": 0.01}


def domains(graded):
    return {d["domain"]: d for d in graded["domains"]}


def test_grade_starts_high_and_takes_one_level_per_serious_concern():
    trials = [trial("A", 40), trial("B", 35), trial("C", 25)]
    assert synthesis.grade(CLEAR, trials) == {**synthesis.grade(CLEAR, trials), "certainty": "high", "downgrades": 0}
    inconsistent = {**CLEAR, "i2": 50.0}
    assert synthesis.grade(inconsistent, trials)["certainty"] == "moderate"
    missing = [("NCT00000000", "registered, status completed, no results found")]
    both = synthesis.grade(inconsistent, trials, missing)
    assert both["certainty"] == "low" and both["downgrades"] == 2
    assert "NCT00000000 (registered, status completed" in domains(both)["publication_bias"]["reason"]
    off = [trial("A", 40), {**trial("B", 60), "comparator": "active"}]
    assert synthesis.grade({**inconsistent, "k": 2}, off, missing)["certainty"] == "very low"


def test_certainty_never_falls_below_very_low_and_the_overall_row_says_at_most_three_levels():
    messy = {"k": 3, "estimate": -0.2, "ci_low": -0.6, "ci_high": 0.3, "i2": 70.0, "tau2": 0.2}
    small = [trial("A", 60, rob="high", n=30), trial("B", 25, n=40), trial("C", 15, n=50)]
    graded = synthesis.grade(messy, small, [("X", "why")])
    assert graded["downgrades"] == 5 and graded["certainty"] == "very low"  # 1 + 1 + 2 + 1
    overall = synthesis.overall_certainty(graded)
    assert overall["downgrade"] == 3 and "add up to 5 levels" in overall["reason"]
    assert synthesis.overall_certainty(synthesis.grade(CLEAR, [trial("B", 60), trial("C", 40)]))["downgrade"] == 0


@pytest.mark.parametrize("trials, downgrade, words", [
    ([trial("A", 50, rob="high"), trial("B", 50)], 1, "50% of the weight comes from trials judged at high risk"),
    ([trial("A", 60, rob="some_concerns"), trial("B", 40)], 1, "60% from trials judged with some concerns"),
    ([trial("A", 30, rob="high"), trial("B", 20, rob="some_concerns"), trial("C", 50)], 1, "30% of the weight"),
    ([trial("A", 49, rob="high"), trial("B", 51)], 0, "Not serious: 49%"),
    # a trial not assessed (public pages do not allow a judgement) does not by itself downgrade
    ([trial("A", 80, rob=None), trial("B", 20)], 0, "which by itself lowers nothing: A"),
])
def test_risk_of_bias_rests_on_judgements_weighted_by_the_pool(trials, downgrade, words):
    found = domains(synthesis.grade(CLEAR, trials))["risk_of_bias"]
    assert found["downgrade"] == downgrade and words in found["reason"]


@pytest.mark.parametrize("result, n, downgrade", [
    (CLEAR, 400, 0),                                              # CI excludes 0, 400 patients
    (CLEAR, 399, 1),                                              # fewer than 400 patients
    ({**CLEAR, "ci_low": -0.5, "ci_high": 0.1}, 400, 1),          # CI includes 0, not +0.2
    ({**CLEAR, "ci_low": -0.5, "ci_high": 0.2}, 400, 2),          # includes -0.2 and +0.2
])
def test_imprecision_of_a_continuous_outcome(result, n, downgrade):
    trials = [trial("A", 50, n=n // 2), trial("B", 50, n=n - n // 2)]
    assert domains(synthesis.grade(result, trials))["imprecision"]["downgrade"] == downgrade


@pytest.mark.parametrize("low, high, events, downgrade", [
    (0.80, 0.95, 300, 0), (0.80, 0.95, 299, 1), (0.80, 1.10, 300, 1), (0.70, 1.30, 1000, 2), (0.76, 1.30, 1000, 1),
])
def test_imprecision_of_a_dichotomous_outcome_counts_events(low, high, events, downgrade):
    result = {"k": 2, "estimate": math.log(0.9), "ci_low": math.log(low), "ci_high": math.log(high), "i2": 0, "tau2": 0}
    found = domains(synthesis.grade(result, [trial("A", 50), trial("B", 50)], measure="rr", events=events))
    assert found["imprecision"]["downgrade"] == downgrade
    assert (f"{events} events, fewer than the 300" in found["imprecision"]["reason"]) == (events < 300)


def test_imprecision_counts_a_single_event_in_the_singular():
    result = {"k": 1, "estimate": math.log(0.34), "ci_low": math.log(0.01), "ci_high": math.log(8.15), "i2": 0, "tau2": 0}
    reason = domains(synthesis.grade(result, [trial("A", 99)], measure="rr", events=1))["imprecision"]["reason"]
    assert "; 1 event, fewer than the 300" in reason


def test_inconsistency_needs_two_trials_and_half_the_variability():
    assert domains(synthesis.grade({**CLEAR, "i2": 49.9}, [trial("A", 100)]))["inconsistency"]["downgrade"] == 0
    single = domains(synthesis.grade({**CLEAR, "k": 1, "i2": 0}, [trial("A", 100)]))["inconsistency"]
    assert single == {"domain": "inconsistency", "downgrade": 0, "reason": "Not assessable: a single trial."}


@pytest.mark.parametrize("certainty, statement", [
    ("high", "LDN results in little to no difference in pain."),
    ("moderate", "LDN probably results in little to no difference in pain."),
    ("low", "LDN may result in little to no difference in pain."),
    ("very low", "The evidence is very uncertain about the effect of LDN on pain."),
])
def test_informative_statements_follow_grade(certainty, statement):
    assert synthesis.informative_statement(certainty, "little to no difference in pain", "pain") == statement


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
