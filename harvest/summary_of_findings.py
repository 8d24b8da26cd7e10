"""The summary of findings: one row per outcome that matters to a patient deciding about LDN.

For each outcome of SOF_OUTCOMES, from the randomised trials of low-dose naltrexone (at most
6 mg/day): the random-effects pool (REML) of two or more trials, one trial's own result, or
"not reported" naming the trials that measured the outcome without usable numbers. Continuous
outcomes are standardised mean differences (negative favours LDN), dichotomous ones risk ratios
(LDN over placebo). Each row carries its GRADE certainty with the reasons, an absolute effect
and GRADE's informative statement. `kb build` writes `summary_of_findings`, and `certainty`
rows for the results that `pooled_estimates` does not hold (dichotomous pools, single trials).
"""

import json
import math

from scipy import stats

from . import evidence, store, synthesis
from .labels import label

# The outcomes, in order: the label a table shows and how the outcome reads in a sentence
# ("the effect of LDN on ...").
OUTCOMES = {
    "pain_intensity": ("Pain intensity", "pain"),
    "fiq": ("Function and overall impact (FIQ, FIQR)", "function and the overall impact of fibromyalgia"),
    "pain_responders": ("Pain responders (at least 30% or 50% less pain, as reported)",
                        "the number of people whose pain falls by at least 30% or 50%"),
    "fatigue": ("Fatigue", "fatigue"), "sleep": ("Sleep", "sleep"), "mood": ("Mood", "mood"),
    "quality_of_life": ("Quality of life", "quality of life"),
    "adverse_events": ("Participants with any adverse event", "the number of people with any adverse event"),
    "adverse_event_withdrawals": ("Withdrawals due to adverse events",
                                  "the number of people who stop because of adverse events"),
    "serious_adverse_events": ("Serious adverse events", "the number of people with a serious adverse event"),
}
SOF_OUTCOMES = list(OUTCOMES)

# Pain back on a 0-10 scale: SMD times a representative SD (Cochrane Handbook chapter 15,
# re-expressing an SMD in the units of a familiar scale). The SD is that of the change in pain
# in the placebo arm of FINAL, the largest trial on a 0-10 scale, recovered from that arm's 95%
# CI: SD = sqrt(n) * (upper - lower) / (2 * t(0.975, n - 1)).
PAIN_SD_SOURCE = {
    "n": 50, "ci_low": -1.4, "ci_high": -0.5,
    "url": "https://research.regionh.dk/en/publications/naltrexone-6-mg-once-daily-versus-placebo-in-women-with-fibromyal",
    "what": "the change in pain (0-10) over 12 weeks in the placebo arm of FINAL (Bruun 2024), -0.9 (95% CI -1.4 "
            "to -0.5) in 50 women",
}
# The minimal important difference beside it: 2.1 points on the 0-10 Brief Pain Inventory
# average pain item, anchored on patients' global impression of improvement, from four
# duloxetine trials in fibromyalgia (Mease et al. 2011, Arthritis Care Res 63:821-6).
PAIN_MID = {"points": 2.1, "doi": "https://doi.org/10.1002/acr.20449",
            "url": "https://zendy.io/title/10.1002/acr.20449",
            "what": "Mease et al. 2011: 2.1 points on the 0-10 Brief Pain Inventory average pain item, anchored on "
                    "patients' global impression of improvement in four trials in fibromyalgia"}
# Cohen's rough guide, to put an SMD into words.
SIZES = [(0.2, "little to no difference in"), (0.5, "a slight improvement in"), (0.8, "an improvement in"),
         (float("inf"), "a large improvement in")]

TABLES = {
    "summary_of_findings": (
        {
            "position": int, "outcome": str, "label": str, "k": int, "patients": int, "measure": str,
            "estimate": float, "ci_low": float, "ci_high": float, "absolute_effect": str,
            "absolute_basis": str, "certainty": str, "certainty_reasons": str, "statement": str,
            "effect_ids": str, "not_used": str,
        },
        "outcome",
        {},
    ),
}
store.register(tables=TABLES)


def pain_sd():
    """The representative SD of pain on a 0-10 scale (see PAIN_SD_SOURCE)."""
    n = PAIN_SD_SOURCE["n"]
    return math.sqrt(n) * (PAIN_SD_SOURCE["ci_high"] - PAIN_SD_SOURCE["ci_low"]) / (2 * stats.t.ppf(0.975, n - 1))


def build(db):
    """Write `summary_of_findings` and the certainty rows `pooled_estimates` does not cover."""
    with db.conn:
        db.execute("delete from summary_of_findings")
    rows, certainty = [], []
    for position, outcome in enumerate(SOF_OUTCOMES, 1):
        row, graded, method = finding(db, outcome)
        rows.append({"position": position, **row})
        pooled_elsewhere = db["pooled_estimates"].count_where("outcome = ? and method = 'REML'", [outcome])
        if graded and not pooled_elsewhere:
            certainty += evidence.certainty_rows(outcome, method, graded)
    db["summary_of_findings"].insert_all(rows, pk="outcome", replace=True)
    if certainty:
        db["certainty"].insert_all(certainty, pk=("outcome", "method", "domain"), replace=True)


def finding(db, outcome):
    """One outcome's row, its GRADE result (None when nothing is reported) and the method."""
    studies, excluded = evidence.studies_for(db, outcome)
    missing = evidence.missing_results(db, outcome, {s["trial_key"] for s in studies})
    double_zero = [row["study"] for row in evidence.outcome_rows(db, outcome)
                   if row["not_poolable_reason"] == synthesis.DOUBLE_ZERO]
    not_used = [f"{study}: no events in either arm, so it cannot enter a risk ratio" for study in double_zero]
    row = {"outcome": outcome, "label": OUTCOMES[outcome][0],
           "not_used": "; ".join(not_used + [f"{trial}: {why}" for trial, why in missing]) or None}
    if not studies:
        return {**row, "k": 0, "patients": None, "measure": None, "estimate": None, "ci_low": None,
                "ci_high": None, "absolute_effect": "not reported", "absolute_basis": None, "certainty": None,
                "certainty_reasons": None, "effect_ids": "[]", "statement": _not_reported(missing)}, None, None
    result = evidence.pool_outcome(db, outcome, "REML")
    dichotomous = result["measure"] == "rr"
    estimate, low, high = (result[f] for f in ("estimate", "ci_low", "ci_high"))
    if dichotomous:
        estimate, low, high = math.exp(estimate), math.exp(low), math.exp(high)
    graded = result["grade"]
    absolute, basis = (_absolute_risk(studies, estimate, low, high) if dichotomous
                       else _absolute_points(outcome, estimate, low, high))
    words = OUTCOMES[outcome][1]
    return {
        **row, "k": result["k"], "patients": result["patients"], "measure": result["measure"],
        "estimate": estimate, "ci_low": low, "ci_high": high, "absolute_effect": absolute, "absolute_basis": basis,
        "certainty": graded["certainty"], "certainty_reasons": _reasons(graded),
        "statement": synthesis.informative_statement(graded["certainty"], _effect_words(result, words), words),
        "effect_ids": json.dumps([s["effect_id"] for s in result["studies"]]),
    }, graded, ("REML" if result["k"] > 1 else "single trial")


def _not_reported(missing):
    """Why an outcome has no result: the trials that reported it in a form that cannot be pooled
    (and why), and those that measured it without numbers on public pages."""
    unusable = [f"{trial}: {why}" for trial, why in missing if why != evidence.NO_NUMBERS and "registered" not in why]
    no_numbers = [trial for trial, why in missing if why == evidence.NO_NUMBERS]
    said = "Not reported: no randomised trial of LDN gave numbers that can be pooled"
    details = ([f"reported in a form that cannot: {'; '.join(unusable)}"] if unusable else []) + (
        [f"measured, but no effect estimate on public pages: {', '.join(no_numbers)}"] if no_numbers else [])
    return said + (f" ({'; '.join(details)})." if details else ".")


def _reasons(graded):
    down = [f"{label('certainty_domain', d['domain'])} (-{d['downgrade']}): {d['reason']}"
            for d in graded["domains"] if d["downgrade"]]
    return " ".join(down) if down else "No serious concern in any GRADE domain."


def _effect_words(result, words):
    """What the point estimate says, in words: SMDs by Cohen's guide (negative favours LDN),
    risk ratios against GRADE's 25% relative change."""
    if result["measure"] == "rr":
        ratio = math.exp(result["estimate"])
        lower, upper = synthesis.APPRECIABLE_RR
        if ratio <= lower:
            return f"a reduction in {words}"
        return f"an increase in {words}" if ratio >= upper else f"little to no difference in {words}"
    size = next(text for limit, text in SIZES if abs(result["estimate"]) < limit)
    if result["estimate"] > 0 and not size.startswith("little"):
        size = size.replace("improvement", "worsening")
    return f"{size} {words}"


def _absolute_points(outcome, estimate, low, high):
    if outcome != evidence.PAIN:
        return (f"SMD {_signed(estimate)} ({_signed(low)} to {_signed(high)}); no representative SD has been "
                "sourced to put it back on this scale's points", None)
    sd = pain_sd()
    points = [value * sd for value in (estimate, low, high)]
    return (f"{_points(points[0]).replace(' ', ' points ', 1)} on a 0-10 scale ({_points(points[1])} to {_points(points[2])}); the minimal "
            f"important difference is about {PAIN_MID['points']} points",
            f"SMD x {sd:.2f}, the SD of {PAIN_SD_SOURCE['what']} ({PAIN_SD_SOURCE['url']}); minimal important "
            f"difference: {PAIN_MID['what']} ({PAIN_MID['doi']}, seen on {PAIN_MID['url']})")


def _absolute_risk(studies, ratio, low, high):
    events = sum(s["events_comparator"] or 0 for s in studies)
    total = sum(s["n_comparator"] or 0 for s in studies)
    control = events / total
    per_1000 = [round(1000 * control * (r - 1)) for r in (ratio, low, high)]
    return (f"{_per_1000(per_1000[0])} per 1,000 (from {_per_1000(per_1000[1])} to {_per_1000(per_1000[2])}), "
            f"at a control risk of {round(1000 * control)} per 1,000",
            f"control risk = events / participants in the comparator arms of the trials used ({events}/{total}); "
            "difference per 1,000 = 1,000 x control risk x (risk ratio - 1)")


def _signed(value):
    return f"{value:.2f}".replace("-", "\u2212")


def _points(value):
    return f"{abs(value):.1f} {'lower' if value < 0 else 'higher'}" if round(value, 1) else "no difference"


def _per_1000(value):
    return f"{abs(value)} {'fewer' if value < 0 else 'more'}" if value else "no difference"
