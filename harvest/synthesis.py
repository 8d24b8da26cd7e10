"""Evidence synthesis: effect sizes on one scale, random-effects pooling, GRADE-style certainty.

Pure functions over numbers and dicts; no database. `evidence.py` feeds them from kb.db.

Sign convention: a standardised mean difference (SMD) is LDN minus comparator on a scale where
lower is better, so a NEGATIVE SMD FAVOURS LDN. A result on a higher-is-better scale is flipped.

Formulas (the numbered sources are named where used):
- SMD: Hedges' g = J * MD / SD, J = 1 - 3 / (4 * df - 1) (Cochrane Handbook 6.5.1.2; Borenstein
  et al., Introduction to Meta-Analysis, ch. 4).
- SE of a mean difference from a 95% CI: (upper - lower) / (2 * t(0.975, df)), and from an exact
  p-value: |MD| / t(1 - p/2, df) (Cochrane Handbook 6.5.2.2-6.5.2.3, t rather than z for small trials).
- SD from the SE of a difference when no SD is reported (Cochrane Handbook 6.5.2.3): parallel
  groups SD = SE / sqrt(1/n1 + 1/n2); for an adjusted (e.g. ANCOVA) difference this is the
  residual SD, so the SMD is somewhat larger than one on the raw SD would be.
- Crossover trials (Cochrane Handbook 23.2.7): the SE comes from the paired (within-person)
  analysis; the SMD divides by the between-person SD, and its variance is
  (1/N + g^2 / (2N)) * 2(1 - r), with 2(1 - r) = N * (SE_MD / SD)^2 implied by the paired SE.
  With no between-person SD reported, the within-person correlation is imputed as
  r = 0.5 (Handbook 23.2.7.3), so SD = SD_diff / sqrt(2(1 - r)) with SD_diff = SE * sqrt(N).
- A difference in mean percentage change is a mean difference on the percentage-change scale;
  standardising it removes the unit like any other MD.
- Random effects: REML by Fisher scoring, or DerSimonian-Laird; I^2 from tau^2 as metafor
  computes it; optional Hartung-Knapp(-Sidik-Jonkman) t-based CI; prediction interval with
  t(k - 2) (Higgins, Thompson and Spiegelhalter 2009; metafor's predict(pi.type = "Riley")).
"""

import csv
import math

import numpy as np
from scipy import stats

METHODS = ("REML", "DL")
CERTAINTY_LEVELS = ["very low", "low", "moderate", "high"]
# The within-person correlation imputed for a crossover trial that reports no between-person SD.
IMPUTED_CROSSOVER_R = 0.5
# Differences on these measures cannot be put on the SMD scale without data we do not have.
UNCONVERTIBLE = {
    "median_difference": "a median difference has no SD to standardise with",
    "rr": "a risk ratio is a dichotomous result, not a difference in means",
    "or": "an odds ratio is a dichotomous result, not a difference in means",
    "irr": "an incidence rate ratio counts events, not a difference in means",
    "rd": "a risk difference is a dichotomous result, not a difference in means",
    "responders": "responder proportions are a dichotomous result, not a difference in means",
}
# The 97.5th centile of the standard normal: 95% intervals of ratios and of pooled estimates.
Z95 = float(stats.norm.ppf(0.975))
# Zero cells (Cochrane Handbook chapter 10, rare events; RevMan's default): a trial with no
# events (or only events) in one arm gets 0.5 added to each of its four cells; a trial with
# none (or all) in both arms says nothing about the ratio and is left out of the pool.
ZERO_CELL_CORRECTION = 0.5
DOUBLE_ZERO = ("no events (or only events) in both arms: no information on the risk ratio, so the trial is left "
               "out of the pool (Cochrane Handbook ch. 10)")


class SynthesisError(ValueError):
    """Input that cannot be pooled (too few studies, a non-positive variance, ...)."""


# --- effect sizes -------------------------------------------------------------------------


def to_smd(effect, crossover=False, correlation=IMPUTED_CROSSOVER_R):
    """Put one `effects` row on the SMD scale.

    Returns {"smd", "smd_variance", "derivation"} or {"not_poolable": reason}. `effect` uses the
    curated field names (estimate, ci_low, ci_high, p_value, n_ldn, sd_ldn, ...). `correlation`
    is the within-person correlation imputed for a crossover trial that reports no
    between-person SD (the sensitivity analyses vary it)."""
    measure = effect.get("measure")
    if measure in UNCONVERTIBLE:
        return {"not_poolable": UNCONVERTIBLE[measure]}
    if measure not in ("md", "smd", "percent_change_difference"):
        return {"not_poolable": f"measure {measure!r} has no conversion to an SMD"}
    if effect.get("estimate") is None:
        if measure == "smd" or effect.get("mean_ldn") is None or effect.get("mean_comparator") is None:
            return {"not_poolable": "no estimate reported"}
        # The difference of the reported group means is the MD; its CI and p, if any, are the paper's.
        effect = {**effect, "estimate": effect["mean_ldn"] - effect["mean_comparator"]}
    if measure == "smd":
        return _reported_smd(effect, crossover)
    return _crossover_smd(effect, correlation) if crossover else _parallel_smd(effect)


def _reported_smd(effect, crossover):
    """A reported SMD: SE from its 95% CI (z, as SMD intervals are computed), else from an exact
    p-value (t with the trial's df when group sizes are given, else z)."""
    n1, n2 = effect.get("n_ldn"), effect.get("n_comparator")
    df = (n1 or n2) - 1 if crossover and (n1 or n2) else (n1 + n2 - 2 if n1 and n2 else None)
    se, how = _se_from_ci(effect, df=None)
    if se is None:
        se, how = _se_from_p(effect, df)
    if se is None:
        return {"not_poolable": "an SMD reported without a 95% CI or an exact p-value"}
    sign, flipped = _orientation(effect)
    smd = sign * effect["estimate"]
    return {"smd": float(smd), "smd_variance": float(se**2),
            "derivation": f"SMD {effect['estimate']} as reported{flipped}; {how}; variance = SE^2"}


def _parallel_smd(effect):
    n1, n2 = effect.get("n_ldn"), effect.get("n_comparator")
    if not (n1 and n2):
        return {"not_poolable": "group sizes not reported"}
    df = n1 + n2 - 2
    sd, sd_how = _standardiser(effect, n1, n2)
    se, se_how = _se_of_difference(effect, df)
    if se is None:
        if effect.get("sd_ldn") and effect.get("sd_comparator"):
            se = sd * math.sqrt(1 / n1 + 1 / n2)
            se_how = f"SE(MD) = SD_pooled * sqrt(1/{n1} + 1/{n2}) = {se:.4f}"
        else:
            return {"not_poolable": "no SD, CI or exact p-value to standardise the mean difference"}
    if sd is None:
        sd = se / math.sqrt(1 / n1 + 1 / n2)
        sd_how = f"SD = SE / sqrt(1/{n1} + 1/{n2}) = {sd:.4f} (Cochrane Handbook 6.5.2.3; no SD reported)"
    j, d, flipped = _standardised(effect, sd, df)
    variance_d = (se / sd) ** 2 + d**2 / (2 * (n1 + n2))
    return {
        "smd": float(j * d), "smd_variance": float(j**2 * variance_d),
        "derivation": (
            f"parallel groups, n = {n1} + {n2}; {_difference(effect)}{flipped}; {se_how}; "
            f"{sd_how}; d = MD / SD = {d:.4f}; Hedges' J = 1 - 3/(4*{df} - 1) = {j:.4f}; "
            f"g = J*d; var(g) = J^2 * ((SE/SD)^2 + d^2/(2*{n1 + n2}))"
        ),
    }


def _crossover_smd(effect, correlation=IMPUTED_CROSSOVER_R):
    n = effect.get("n_ldn") or effect.get("n_comparator")
    if not n:
        return {"not_poolable": "number of participants not reported"}
    df = n - 1
    sd, sd_how = _standardiser(effect, n, n)
    se, se_how = _se_of_difference(effect, df)
    if se is None:
        return {"not_poolable": (
            "crossover result without a paired CI or exact p-value: the within-person "
            "correlation is unknown, so no honest SE")}
    if sd is None:
        r = correlation
        sd = se * math.sqrt(n) / math.sqrt(2 * (1 - r))
        sd_how = (f"no between-person SD reported: SD_diff = SE * sqrt({n}) and within-person correlation "
                  f"imputed as r = {r} (Cochrane Handbook 23.2.7.3), SD = SD_diff / sqrt(2(1 - r)) = {sd:.4f}")
    j, d, flipped = _standardised(effect, sd, df)
    two_one_minus_r = n * (se / sd) ** 2
    variance_d = (1 / n + d**2 / (2 * n)) * two_one_minus_r
    return {
        "smd": float(j * d), "smd_variance": float(j**2 * variance_d),
        "derivation": (
            f"crossover, N = {n} (paired analysis, Cochrane Handbook 23.2.7); "
            f"{_difference(effect)}{flipped}; {se_how}; {sd_how} (between-person); "
            f"d = MD / SD = {d:.4f}; implied 2(1 - r) = N*(SE/SD)^2 = {two_one_minus_r:.4f}; "
            f"Hedges' J = 1 - 3/(4*{df} - 1) = {j:.4f}; g = J*d; "
            f"var(g) = J^2 * (1/N + d^2/(2N)) * 2(1 - r)"
        ),
    }


def imputes_correlation(effect):
    """True when a crossover result's SMD rests on the imputed within-person correlation: a
    difference in means with no between-person SD reported."""
    return effect.get("measure") != "smd" and not effect.get("sd") and not (
        effect.get("sd_ldn") and effect.get("sd_comparator"))


def _standardised(effect, sd, df):
    """Hedges' small-sample factor J, Cohen's d = MD / SD on the lower-is-better scale, and the
    note that says when the sign was flipped."""
    sign, flipped = _orientation(effect)
    return 1 - 3 / (4 * df - 1), sign * effect["estimate"] / sd, flipped


def _difference(effect):
    if effect.get("measure") == "percent_change_difference":
        return f"MD {effect['estimate']:g} percentage points of change from baseline"
    return f"MD {effect['estimate']:g}"


def _standardiser(effect, n1, n2):
    """The SD to divide by: a reported one, else the pooled SD of the two groups."""
    if effect.get("sd"):
        return effect["sd"], f"SD = {effect['sd']} as reported"
    s1, s2 = effect.get("sd_ldn"), effect.get("sd_comparator")
    if not (s1 and s2):
        return None, None
    pooled = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
    return pooled, f"SD_pooled = sqrt(((n1-1)*{s1}^2 + (n2-1)*{s2}^2)/(n1+n2-2)) = {pooled:.4f}"


def _se_of_difference(effect, df):
    """SE of the reported difference from its CI, else from an exact p-value (a conversion
    from medians brings its own SE, `se_of_difference`, with how it was found)."""
    if effect.get("se_of_difference"):
        return effect["se_of_difference"], effect["se_how"]
    se, how = _se_from_ci(effect, df)
    return (se, how) if se is not None else _se_from_p(effect, df)


def _se_from_p(effect, df):
    """SE = |estimate| / quantile(1 - p/2), only for an exact p (a bound such as <0.05 is not one)."""
    p = effect.get("p_value")
    if p is None or effect.get("p_value_text") or not 0 < p < 1 or not effect.get("estimate"):
        return None, None
    quantile = stats.norm.ppf(1 - p / 2) if df is None else stats.t.ppf(1 - p / 2, df)
    label = "z" if df is None else f"t(1 - p/2, df {df})"
    se = abs(effect["estimate"]) / quantile
    return se, f"SE = |estimate| / {label} with exact p = {p}: {se:.4f}"


def _se_from_ci(effect, df):
    low, high = effect.get("ci_low"), effect.get("ci_high")
    if low is None or high is None or high <= low:
        return None, None
    quantile = stats.norm.ppf(0.975) if df is None else stats.t.ppf(0.975, df)
    label = "z" if df is None else f"t(0.975, df {df})"
    se = (high - low) / (2 * quantile)
    return se, f"SE = ({high} - ({low})) / (2*{label}) = {se:.4f}"


def _orientation(effect):
    """-1 when the instrument is higher-is-better, so that negative still favours LDN."""
    if "higher is better" in str(effect.get("instrument") or "").lower():
        return -1, " (sign flipped: higher is better on this scale)"
    return 1, ""


# --- dichotomous results ------------------------------------------------------------------


def to_log_rr(effect):
    """Put one dichotomous `effects` row on the log risk-ratio scale (LDN over comparator).

    From the events and group sizes of both arms, else from a reported risk ratio with its
    95% CI. Returns {"log_rr", "log_rr_variance", "derivation"} or {"not_poolable": reason}.
    A crossover trial's counts are analysed as if from parallel groups: this ignores the
    pairing, so its CI is wider than a paired analysis would give (Cochrane Handbook ch. 23)."""
    counts = [effect.get(f) for f in ("events_ldn", "n_ldn", "events_comparator", "n_comparator")]
    if None not in counts:
        return _log_rr_from_counts(*counts)
    if effect.get("measure") == "rr" and effect.get("estimate") and effect.get("ci_low") and effect.get("ci_high"):
        low, high = effect["ci_low"], effect["ci_high"]
        se = (math.log(high) - math.log(low)) / (2 * Z95)
        return {"log_rr": math.log(effect["estimate"]), "log_rr_variance": se**2,
                "derivation": f"risk ratio {effect['estimate']} as reported; SE(log RR) = (ln {high} - ln {low}) / "
                              f"(2*1.96) = {se:.4f}"}
    if effect.get("measure") in ("responders", "rr", "or", "rd"):
        return {"not_poolable": "neither event counts with group sizes nor a risk ratio with its CI were reported"}
    return {"not_poolable": f"measure {effect.get('measure')!r} is not a count of participants with the event"}


def _log_rr_from_counts(a, n1, c, n2):
    if not (n1 and n2) or not (0 <= a <= n1 and 0 <= c <= n2):
        return {"not_poolable": "event counts must lie between 0 and the group size"}
    if (a == 0 and c == 0) or (a == n1 and c == n2):
        return {"not_poolable": DOUBLE_ZERO}
    note = ""
    if 0 in (a, c) or a == n1 or c == n2:
        k = ZERO_CELL_CORRECTION
        a, c, n1, n2 = a + k, c + k, n1 + 2 * k, n2 + 2 * k
        note = f"; a zero cell, so {k} added to each cell (Cochrane Handbook ch. 10)"
    log_rr = math.log((a / n1) / (c / n2))
    variance = 1 / a - 1 / n1 + 1 / c - 1 / n2
    return {"log_rr": log_rr, "log_rr_variance": variance,
            "derivation": f"risk ratio from counts {a:g}/{n1:g} vs {c:g}/{n2:g}{note}: RR = {math.exp(log_rr):.4f}, "
                          f"var(log RR) = 1/a - 1/n1 + 1/c - 1/n2 = {variance:.4f}"}


# --- medians and quartiles ----------------------------------------------------------------


def wan_mean_sd(q1, median, q3, n):
    """Mean and SD from the first quartile, median, third quartile and sample size (Wan et
    al. 2014, BMC Med Res Methodol 14:135, scenario C3): mean = (q1 + m + q3) / 3,
    SD = (q3 - q1) / eta(n) with eta(n) = 2 * Phi^-1((0.75n - 0.125) / (n + 0.25))."""
    eta = 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    return (q1 + median + q3) / 3, (q3 - q1) / eta


def from_medians(effect, crossover=False, correlation=IMPUTED_CROSSOVER_R):
    """An effect reported as medians and quartiles per arm, converted to means and SDs by Wan
    et al. 2014 and then put on the SMD scale like any mean difference; for a crossover the
    paired SE needs a within-person correlation, imputed as `correlation`. For sensitivity
    analyses only: the conversion assumes roughly normal data."""
    fields = ("median_ldn", "q1_ldn", "q3_ldn", "median_comparator", "q1_comparator", "q3_comparator")
    if any(effect.get(f) is None for f in fields):
        return {"not_poolable": "medians and both quartiles are not reported for each arm"}
    n1, n2 = effect.get("n_ldn"), effect.get("n_comparator")
    if not (n1 and n2):
        return {"not_poolable": "medians without the number analysed in each arm"}
    mean1, sd1 = wan_mean_sd(effect["q1_ldn"], effect["median_ldn"], effect["q3_ldn"], n1)
    mean2, sd2 = wan_mean_sd(effect["q1_comparator"], effect["median_comparator"], effect["q3_comparator"], n2)
    how = (f"Wan et al. 2014 (scenario C3): mean = (q1 + m + q3)/3, SD = (q3 - q1)/eta(n): "
           f"LDN {mean1:.4f} (SD {sd1:.4f}), comparator {mean2:.4f} (SD {sd2:.4f})")
    converted = {**{f: effect.get(f) for f in ("instrument", "n_ldn", "n_comparator")},
                 "measure": "md", "estimate": mean1 - mean2, "sd_ldn": sd1, "sd_comparator": sd2}
    if crossover:
        se = math.sqrt((sd1**2 + sd2**2 - 2 * correlation * sd1 * sd2) / n1)
        converted.update(se_of_difference=se, se_how=(
            f"paired SE = sqrt((SD1^2 + SD2^2 - 2r SD1 SD2)/N) = {se:.4f} with r = {correlation} imputed"))
    result = to_smd(converted, crossover, correlation)
    if "derivation" in result:
        result["derivation"] = f"{how}; then {result['derivation']}"
    return result


# --- pooling ------------------------------------------------------------------------------


def pool(yi, vi, method="REML", hartung_knapp=False, level=0.95):
    """Random-effects meta-analysis of effects `yi` with sampling variances `vi`.

    Returns k, estimate, se, ci_low, ci_high, pi_low, pi_high, tau2, i2, h2, q, q_df, q_p,
    p_value, method, hartung_knapp and weights (percent, in input order)."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if method not in METHODS:
        raise SynthesisError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if len(y) == 0 or len(y) != len(v):
        raise SynthesisError("need at least one study, with one variance per effect")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise SynthesisError("every effect must be a number and every variance positive")
    k = len(y)
    w_fixed = 1 / v
    mu_fixed = np.sum(w_fixed * y) / np.sum(w_fixed)
    q = float(np.sum(w_fixed * (y - mu_fixed) ** 2))
    if k == 1:
        tau2 = 0.0
    elif method == "DL":
        c = np.sum(w_fixed) - np.sum(w_fixed**2) / np.sum(w_fixed)
        tau2 = max(0.0, (q - (k - 1)) / c)
    else:
        tau2 = _reml_tau2(y, v)
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    alpha = 1 - level
    if hartung_knapp and k > 1:
        se = math.sqrt(float(np.sum(w * (y - mu) ** 2)) / ((k - 1) * np.sum(w)))
        crit = stats.t.ppf(1 - alpha / 2, k - 1)
        p_value = 2 * stats.t.sf(abs(mu / se), k - 1) if se > 0 else 0.0
    else:
        se = math.sqrt(1 / float(np.sum(w)))
        crit = stats.norm.ppf(1 - alpha / 2)
        p_value = 2 * stats.norm.sf(abs(mu / se))
    # Typical within-study variance (Higgins & Thompson 2002), as metafor uses for I^2.
    s2 = (k - 1) * np.sum(w_fixed) / (np.sum(w_fixed) ** 2 - np.sum(w_fixed**2)) if k > 1 else 0.0
    i2 = 100 * tau2 / (tau2 + s2) if k > 1 and tau2 + s2 > 0 else 0.0
    if k > 2:
        half = stats.t.ppf(1 - alpha / 2, k - 2) * math.sqrt(se**2 + tau2)
        pi_low, pi_high = mu - half, mu + half
    else:
        pi_low = pi_high = None  # t(k - 2) needs three studies
    return {
        "k": k, "estimate": mu, "se": float(se), "ci_low": float(mu - crit * se),
        "ci_high": float(mu + crit * se), "pi_low": _float(pi_low), "pi_high": _float(pi_high), "tau2": float(tau2), "i2": float(i2),
        "h2": float(100 / (100 - i2)) if i2 < 100 else None,
        "q": q, "q_df": k - 1, "q_p": float(stats.chi2.sf(q, k - 1)) if k > 1 else None,
        "p_value": float(p_value), "method": method, "hartung_knapp": bool(hartung_knapp and k > 1),
        "weights": [float(x) for x in 100 * w / np.sum(w)],
    }


def _float(value):
    return None if value is None else float(value)


def _reml_tau2(y, v, tolerance=1e-10, max_iterations=1000):
    """REML tau^2 by Fisher scoring on the intercept-only model, truncated at zero (as metafor)."""
    tau2 = max(0.0, float(np.var(y, ddof=1) - np.mean(v)))  # a moment start; the score finds the rest
    for _ in range(max_iterations):
        w = 1 / (v + tau2)
        p_diag_sum = np.sum(w) - np.sum(w**2) / np.sum(w)  # trace of P
        mu = np.sum(w * y) / np.sum(w)
        residual = w * (y - mu)  # P y for an intercept-only model
        # trace(P P) for P = W - w w' / sum(w)
        sw = np.sum(w)
        trace_pp = np.sum(w**2) - 2 * np.sum(w**3) / sw + np.sum(w**2) ** 2 / sw**2
        score = 0.5 * (np.sum(residual**2) - p_diag_sum)
        information = 0.5 * trace_pp
        step = score / information
        new = max(0.0, tau2 + step)
        if abs(new - tau2) < tolerance:
            return new
        tau2 = new
    raise SynthesisError("REML did not converge; try --method DL")


def leave_one_out(studies, method="REML", hartung_knapp=False):
    """Pool all but one study, for each study in turn: [{"omitted": label, **result}]."""
    if len(studies) < 3:
        return []
    rows = []
    for index, study in enumerate(studies):
        rest = studies[:index] + studies[index + 1:]
        result = pool([s["yi"] for s in rest], [s["vi"] for s in rest], method, hartung_knapp)
        rows.append({"omitted": study["study"], **_summary(result)})
    return rows


def cumulative(studies, method="REML", hartung_knapp=False):
    """Add studies one at a time by year (then label): how the pooled estimate moved."""
    ordered = sorted(studies, key=lambda s: (s.get("year") is None, s.get("year") or 0, s["study"]))
    rows = []
    for step in range(1, len(ordered) + 1):
        part = ordered[:step]
        result = pool([s["yi"] for s in part], [s["vi"] for s in part], method, hartung_knapp)
        rows.append({"step": step, "added": part[-1]["study"], "year": part[-1].get("year"),
                     **_summary(result)})
    return rows


def _summary(result):
    return {k: result[k] for k in ("k", "estimate", "se", "ci_low", "ci_high", "tau2", "i2")}


def meta_analysis(studies, method="REML", hartung_knapp=False):
    """Everything `kb pool` prints: the pooled result, per-study weights, leave-one-out, cumulative.

    `studies`: [{"study": label, "yi": effect, "vi": variance, "year": optional, ...}]."""
    result = pool([s["yi"] for s in studies], [s["vi"] for s in studies], method, hartung_knapp)
    weights = result.pop("weights")
    result["studies"] = [
        {**s, "se": math.sqrt(s["vi"]), "weight": weight} for s, weight in zip(studies, weights)
    ]
    result["leave_one_out"] = leave_one_out(studies, method, hartung_knapp)
    result["cumulative"] = cumulative(studies, method, hartung_knapp)
    return result


# --- certainty ----------------------------------------------------------------------------

# GRADE rules of thumb, written down once (GRADE guidelines 6, imprecision): an optimal
# information size of 400 patients for a continuous outcome and 300 events for a dichotomous
# one; an appreciable effect is an SMD of 0.2 (a small effect) or a 25% relative change in
# risk. I^2 of 50% or more is substantial inconsistency; half the pooled weight is "most of
# the evidence". Certainty starts high for randomised trials and has three levels below it.
OPTIMAL_INFORMATION_SIZE = 400
OPTIMAL_EVENTS = 300
APPRECIABLE_SMD = 0.2
APPRECIABLE_RR = (0.75, 1.25)
SUBSTANTIAL_I2 = 50
MOST_WEIGHT = 50
LEVELS_BELOW_HIGH = len(CERTAINTY_LEVELS) - 1


def grade(result, trials, missing=(), measure="smd", events=None):
    """GRADE-style certainty for a pooled (or single-trial) RCT result, starting at high.

    `result`: k, estimate, ci_low, ci_high, i2, tau2 on the analysis scale (SMD, or log risk
    ratio when `measure` is "rr"). `trials`: one dict per trial with study, weight (percent),
    rob (its RoB 2 judgement for this result: 'low', 'some_concerns', 'high', or None when not
    assessed), comparator, population, n (patients). `missing`: (trial, why) for registered or
    reported trials whose results for this outcome are missing or unusable. `events`: total
    events, for a dichotomous outcome. Returns {"certainty", "downgrades", "domains": [{"domain",
    "downgrade", "reason"}]}; the certainty is high minus the downgrades, never below very low."""
    domains = [
        _risk_of_bias(trials), _inconsistency(result), _indirectness(trials),
        _imprecision(result, trials, measure, events), _publication_bias(result, missing),
    ]
    downgrades = sum(d["downgrade"] for d in domains)
    return {"certainty": CERTAINTY_LEVELS[max(0, LEVELS_BELOW_HIGH - downgrades)], "downgrades": downgrades,
            "domains": domains}


def overall_certainty(graded):
    """The `overall` row: the levels actually taken off (at most three: very low is the floor)."""
    taken = min(graded["downgrades"], LEVELS_BELOW_HIGH)
    floor = (f" The domains add up to {graded['downgrades']} levels; very low is the floor, three below high."
             if graded["downgrades"] > LEVELS_BELOW_HIGH else "")
    return {"domain": "overall", "downgrade": taken,
            "reason": f"Starts high (randomised trials); {graded['certainty']} after {taken} level(s) down.{floor}"}


def _risk_of_bias(trials):
    """Downgrade when trials judged at high risk or with some concerns carry half the weight or
    more. A trial not assessed (public pages do not allow a judgement) does not by itself lower
    the certainty; the reason names it."""
    high = sum(t["weight"] for t in trials if t.get("rob") == "high")
    concerns = sum(t["weight"] for t in trials if t.get("rob") == "some_concerns")
    unjudged = [t["study"] for t in trials if t.get("rob") not in ("low", "some_concerns", "high")]
    described = (f"{high:.0f}% of the weight comes from trials judged at high risk of bias and "
                 f"{concerns:.0f}% from trials judged with some concerns")
    if unjudged:
        described += (f"; without an overall RoB 2 judgement from public pages, which by itself lowers nothing: "
                      f"{', '.join(unjudged)}")
    if high + concerns >= MOST_WEIGHT:
        return {"domain": "risk_of_bias", "downgrade": 1, "reason": f"Serious: {described}."}
    return {"domain": "risk_of_bias", "downgrade": 0, "reason": f"Not serious: {described}."}


def _inconsistency(result):
    i2 = result["i2"]
    if result["k"] < 2:
        return {"domain": "inconsistency", "downgrade": 0,
                "reason": "Not assessable: a single trial."}
    if i2 >= SUBSTANTIAL_I2:
        return {"domain": "inconsistency", "downgrade": 1,
                "reason": f"Serious: the trials disagree more than chance explains (I² {i2:.0f}%, "
                          f"tau² {result['tau2']:.3f})."}
    return {"domain": "inconsistency", "downgrade": 0,
            "reason": f"Not serious: I² {i2:.0f}%, the trials broadly agree."}


def _indirectness(trials):
    off = [t["study"] for t in trials
           if t.get("comparator") != "placebo" or "fibromyalgia" not in str(t.get("population") or "").lower()]
    if off:
        return {"domain": "indirectness", "downgrade": 1,
                "reason": "Serious: not every trial compared LDN with placebo in people with "
                          f"fibromyalgia ({', '.join(off)})."}
    return {"domain": "indirectness", "downgrade": 0,
            "reason": "Not serious: every trial compared LDN with placebo in people with fibromyalgia."}


def _imprecision(result, trials, measure, events):
    """One level when the 95% CI includes no effect or the optimal information size is not
    reached; two when the CI includes both an appreciable benefit and an appreciable harm."""
    low, high = result["ci_low"], result["ci_high"]
    if measure == "rr":
        lower, upper = (math.log(x) for x in APPRECIABLE_RR)
        shown = f"risk ratio {math.exp(low):.2f} to {math.exp(high):.2f}"
        thresholds = f"a risk ratio of {APPRECIABLE_RR[0]} and of {APPRECIABLE_RR[1]}"
        size, needed, unit = events or 0, OPTIMAL_EVENTS, "event"
    else:
        lower, upper = -APPRECIABLE_SMD, APPRECIABLE_SMD
        shown = f"{low:.2f} to {high:.2f}"
        thresholds = f"an SMD of -{APPRECIABLE_SMD} and of +{APPRECIABLE_SMD}"
        size, needed, unit = sum(t.get("n") or 0 for t in trials), OPTIMAL_INFORMATION_SIZE, "patient"
    unit += "" if size == 1 else "s"
    short = f"; {size} {unit}, fewer than the {needed} GRADE's rule of thumb asks for" if size < needed else ""
    if low <= lower and high >= upper:
        return {"domain": "imprecision", "downgrade": 2, "reason": (
            f"Very serious: the 95% CI ({shown}) includes both an appreciable benefit and an appreciable "
            f"harm ({thresholds}){short}.")}
    problems = [f"the 95% CI ({shown}) includes no effect"] if low < 0 < high else []
    problems += [short[2:]] if short else []
    if problems:
        return {"domain": "imprecision", "downgrade": 1, "reason": f"Serious: {'; '.join(problems)}."}
    return {"domain": "imprecision", "downgrade": 0,
            "reason": f"Not serious: {size} {unit} and a 95% CI ({shown}) that excludes no effect."}


def _publication_bias(result, missing):
    if missing:
        listed = "; ".join(f"{trial} ({why})" for trial, why in missing)
        return {"domain": "publication_bias", "downgrade": 1,
                "reason": f"Suspected: results missing or unusable for this outcome from {listed}."}
    note = "; too few trials for a funnel-plot test" if result["k"] < 10 else ""
    return {"domain": "publication_bias", "downgrade": 0,
            "reason": f"Not detected: no registered or reported trial is known to be missing results for "
                      f"this outcome{note}."}


def informative_statement(certainty, effect_words, outcome_words):
    """GRADE's informative statement (Santesso et al. 2020, GRADE guidelines 26): high
    "results in", moderate "probably results in", low "may result in", very low "the evidence
    is very uncertain about"."""
    if certainty == "very low":
        return f"The evidence is very uncertain about the effect of LDN on {outcome_words}."
    verb = {"high": "results in", "moderate": "probably results in", "low": "may result in"}[certainty]
    return f"LDN {verb} {effect_words}."


# --- input and output ---------------------------------------------------------------------


def read_csv(path):
    """Studies from a CSV with columns study, yi, vi (metafor's names) and optional year.

    Raises SynthesisError naming the file and row of the first problem."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets add a BOM
            return _studies_from_rows(path, csv.DictReader(handle))
    except UnicodeDecodeError:
        raise SynthesisError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None


def _studies_from_rows(path, reader):
    missing = {"study", "yi", "vi"} - set(reader.fieldnames or [])
    if missing:
        raise SynthesisError(f"{path}: missing column(s) {', '.join(sorted(missing))}; need study,yi,vi")
    studies = []
    for line, row in enumerate(reader, 2):
        try:
            study = {"study": (row["study"] or "").strip(), "yi": float(row["yi"]), "vi": float(row["vi"])}
            if row.get("year") not in (None, ""):
                study["year"] = int(row["year"])
        except (TypeError, ValueError):
            raise SynthesisError(f"{path}, row {line}: yi and vi must be numbers (and year a whole number)") from None
        if not study["study"]:
            raise SynthesisError(f"{path}, row {line}: empty study label")
        if not (math.isfinite(study["yi"]) and math.isfinite(study["vi"]) and study["vi"] > 0):
            raise SynthesisError(f"{path}, row {line}: yi must be finite and vi positive")
        studies.append(study)
    if not studies:
        raise SynthesisError(f"{path}: no studies")
    return studies


def _scale(result):
    if result.get("measure") == "rr":
        return "log risk ratio, LDN over comparator: exp() gives the risk ratio"
    return "SMD; negative favours LDN"


def format_report(result):
    """`kb pool`'s text output: the pooled result, per-study weights, leave-one-out, cumulative."""
    def num(value):
        return "n/a" if value is None else f"{value:.4f}"

    test = " (Hartung-Knapp)" if result["hartung_knapp"] else ""
    lines = [
        f"Random-effects meta-analysis, {result['method']}{test}: k = {result['k']}"
        + (f", outcome {result['outcome']} ({_scale(result)})" if result.get("outcome") else ""),
        f"estimate {num(result['estimate'])}  se {num(result['se'])}  "
        f"95% CI {num(result['ci_low'])} to {num(result['ci_high'])}  p {result['p_value']:.4g}",
        f"prediction interval {num(result['pi_low'])} to {num(result['pi_high'])}",
        f"tau2 {num(result['tau2'])}  I2 {result['i2']:.2f}%  Q {num(result['q'])} (df {result['q_df']})",
        "", "study                           effect       se   weight %",
    ]
    lines += [f"{s['study'][:30]:30} {s['yi']:8.4f} {s['se']:8.4f} {s['weight']:9.2f}"
              + (f"  {s['source']}" if s.get("source") else "") for s in result["studies"]]
    if result["leave_one_out"]:
        lines += ["", "leave one out: omitted                estimate   95% CI"]
        lines += [f"  {r['omitted'][:34]:34} {r['estimate']:8.4f}   {r['ci_low']:.4f} to {r['ci_high']:.4f}"
                  for r in result["leave_one_out"]]
    lines += ["", "cumulative by year: added             k  estimate   95% CI"]
    lines += [f"  {str(r['year'] or ''):4} {r['added'][:28]:28} {r['k']:3} {r['estimate']:8.4f}   "
              f"{r['ci_low']:.4f} to {r['ci_high']:.4f}" for r in result["cumulative"]]
    for item in result.get("excluded") or []:
        lines.append(f"left out: {item['effect_id']} ({item['reason']})")
    if "integrity_checked" in result:
        lines.append("retracted papers are left out (integrity_status checked)" if result["integrity_checked"]
                     else "integrity_status is not in this database: retractions not checked")
    if result.get("grade"):
        lines += ["", f"certainty (GRADE-style): {result['grade']['certainty']}"]
        lines += [f"  {d['domain']}: {d['reason']}" for d in result["grade"]["domains"]]
    return "\n".join(lines)
