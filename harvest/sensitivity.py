"""Sensitivity analyses: does the answer of the summary of findings survive other choices?

For every outcome with a result, `kb build` writes `sensitivity_analyses`, each beside the main
analysis (REML, normal CI; the summary of findings):
- `hartung_knapp`: the Hartung-Knapp-Sidik-Jonkman CI (t with k - 1 df), wider with few trials;
- `crossover_r_0.3`, `crossover_r_0.7`: crossover trials without a between-person SD with the
  within-person correlation imputed as 0.3 or 0.7 instead of 0.5 (continuous outcomes);
- `with_median_conversions`: trials that reported medians and quartiles per arm, converted to
  means and SDs (Wan et al. 2014) and added (continuous outcomes);
- `authors_effect_sizes`: each trial's own standardised effect where its authors give one;
- `leave_one_out:<effect_id>`: the pool without that trial.
A result "changes the conclusion" when its 95% CI falls on another side of no effect than the
main analysis's (below, above, or including it).
"""

import math

from . import evidence, store, synthesis

TABLES = {
    "sensitivity_analyses": (
        {"outcome": str, "analysis": str, "position": int, "measure": str, "k": int, "estimate": float,
         "ci_low": float, "ci_high": float, "changes_conclusion": int, "note": str},
        ("outcome", "analysis"),
        {},
    ),
}
store.register(tables=TABLES)

CORRELATIONS = (0.3, 0.7)


def build(db):
    """Write the sensitivity analyses of every outcome of the summary of findings with a result."""
    with db.conn:
        db.execute("delete from sensitivity_analyses")
    outcomes = [row[0] for row in db.execute("select outcome from summary_of_findings where k > 0 order by position")]
    db["sensitivity_analyses"].insert_all(
        [row for outcome in outcomes for row in analyses(db, outcome)], pk=("outcome", "analysis"))


def analyses(db, outcome):
    """Rows of `sensitivity_analyses` for one outcome."""
    main = evidence.pool_outcome(db, outcome, "REML")
    studies = main["studies"]
    measure = main["measure"]
    found = []
    if len(studies) > 1:
        knapp = synthesis.pool(_y(studies), _v(studies), "REML", hartung_knapp=True)
        narrower = (" (narrower than the main CI: the trials agree more closely than their own SEs lead one to "
                    "expect)" if knapp["ci_high"] - knapp["ci_low"] < main["ci_high"] - main["ci_low"] else "")
        found.append(("hartung_knapp", knapp, f"Hartung-Knapp-Sidik-Jonkman: t with {len(studies) - 1} df and the "
                                              f"weighted spread of the trials around the pooled estimate{narrower}"))
    if measure == "smd":
        rows = {row["effect_id"]: row for row in evidence.outcome_rows(db, outcome)}
        for r in CORRELATIONS:
            found.append(_crossover(studies, rows, r))
        found.append(_medians(db, outcome, studies))
        found.append(_authors(studies, rows))
    if len(studies) > 1:
        for index, study in enumerate(studies):
            rest = studies[:index] + studies[index + 1:]
            found.append((f"leave_one_out:{study['effect_id']}", synthesis.pool(_y(rest), _v(rest), "REML"),
                          f"without {study['study']}"))
    baseline = _side(main)
    rows = []
    for position, (analysis, result, note) in enumerate(found, 1):
        estimate, low, high = (result[f] for f in ("estimate", "ci_low", "ci_high"))
        if measure == "rr":
            estimate, low, high = math.exp(estimate), math.exp(low), math.exp(high)
        changes = _side(result) != baseline
        rows.append({"outcome": outcome, "analysis": analysis, "position": position, "measure": measure,
                     "k": result["k"], "estimate": estimate, "ci_low": low, "ci_high": high,
                     "changes_conclusion": int(changes),
                     "note": note + (f"; the 95% CI now {_SIDES[_side(result)]}, where the main analysis's "
                                     f"{_SIDES[baseline]}: this changes the conclusion" if changes else "")})
    return rows


_SIDES = {-1: "lies wholly below no effect", 0: "includes no effect", 1: "lies wholly above no effect"}


def _side(result):
    """Where a 95% CI (analysis scale) lies against no effect: -1 below, 0 across, 1 above."""
    return -1 if result["ci_high"] < 0 else 1 if result["ci_low"] > 0 else 0


def _y(studies):
    return [s["yi"] for s in studies]


def _v(studies):
    return [s["vi"] for s in studies]


def _crossover(studies, rows, r):
    """Crossover trials whose between-person SD rests on the imputed correlation, with r instead."""
    changed, varied = [], []
    for study in studies:
        row = rows[study["effect_id"]]
        effect = evidence.effect_fields(row)
        if row["crossover"] and synthesis.imputes_correlation(effect):
            converted = synthesis.to_smd(effect, crossover=True, correlation=r)
            study = {**study, "yi": converted["smd"], "vi": converted["smd_variance"]}
            changed.append(study["study"])
        varied.append(study)
    note = (f"within-person correlation {r} instead of {synthesis.IMPUTED_CROSSOVER_R} for {', '.join(changed)}"
            if changed else "no trial here depends on an imputed within-person correlation: same as the main analysis")
    return f"crossover_r_{r}", synthesis.pool(_y(varied), _v(varied), "REML"), note


def _medians(db, outcome, studies):
    """Add the trials that reported medians and quartiles per arm, converted by Wan et al. 2014."""
    used = {s["trial_key"] for s in studies}
    retracted = evidence.retracted_papers(db)
    added, unconvertible, seen = [], [], set()
    for row in sorted(evidence.outcome_rows(db, outcome), key=lambda r: (-r["is_primary"], r["effect_id"])):
        excluded = row["not_poolable_reason"] in (evidence.NOT_RANDOMISED, evidence.NOT_LOW_DOSE,
                                                  evidence.DOSE_NOT_VERIFIED)
        if row["poolable"] or excluded or row["trial_key"] in used | seen or row["paper_id"] in retracted:
            continue
        seen.add(row["trial_key"])
        converted = synthesis.from_medians(evidence.effect_fields(row), bool(row["crossover"]))
        if "smd" in converted:
            added.append({"study": row["study"], "yi": converted["smd"], "vi": converted["smd_variance"]})
        else:
            unconvertible.append(f"{row['study']} ({converted['not_poolable']})")
    everything = studies + added
    note = (f"added from medians and quartiles (Wan et al. 2014): {', '.join(s['study'] for s in added)}"
            if added else "no trial left out of the main analysis reports medians and quartiles for each arm")
    if unconvertible:
        note += f"; not convertible: {'; '.join(unconvertible)}"
    return "with_median_conversions", synthesis.pool(_y(everything), _v(everything), "REML"), note


def _authors(studies, rows):
    """Each trial's own standardised effect where its authors report one (our sign)."""
    replaced, used = [], []
    for study in studies:
        row = rows[study["effect_id"]]
        d = row["authors_smd"]
        if d is not None:
            low, high = row["authors_smd_ci_low"], row["authors_smd_ci_high"]
            if low is not None and high is not None:
                variance = ((high - low) / (2 * synthesis.Z95)) ** 2
            elif not row["crossover"] and row["n_ldn"] and row["n_comparator"]:
                n1, n2 = row["n_ldn"], row["n_comparator"]
                variance = (n1 + n2) / (n1 * n2) + d**2 / (2 * (n1 + n2))  # the large-sample variance of d
            else:
                variance = None
            if variance:
                study = {**study, "yi": d, "vi": variance}
                replaced.append(study["study"])
        used.append(study)
    note = (f"the authors' own standardised effects for {', '.join(replaced)}; ours for the others"
            if replaced else "no trial here reports its own standardised effect in kb.db: same as the main analysis")
    return "authors_effect_sizes", synthesis.pool(_y(used), _v(used), "REML"), note
