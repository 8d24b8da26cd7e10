"""Numbers from the curated files, and what `kb build` computes from them.

- validate `effects:`, `risk_of_bias:` and `meta_analysis:` on curated entries (field names in
  harvest/curated/README.md);
- load the `effects` (with each row's SMD and derivation, or why it is not poolable),
  `risk_of_bias` (every RCT x RoB 2 domain) and `meta_analyses` tables;
- pool each outcome (synthesis.py) and write `pooled_estimates`, `pooled_studies`,
  `pooled_leave_one_out`, `pooled_cumulative` and `certainty`.

Everything is rebuilt from the curated entries on each build, so re-runs are idempotent.
"""

import json
import math

from . import store, synthesis

MEASURES = {"md", "smd", "median_difference", "percent_change_difference", "rr", "or", "irr", "rd", "responders"}
POPULATIONS = {"itt", "per_protocol", "complete_case"}
FAVOURS = {"ldn", "comparator", "neither"}
ROB_DOMAINS = ["randomisation", "deviations", "missing_data", "measurement", "reporting", "overall"]
ROB_JUDGEMENTS = {"low", "some_concerns", "high"}
NOT_ASSESSED = "not assessed"
# A curator who looked and could not judge a domain says so, with why (`judgement: not_assessed`).
NOT_JUDGEABLE = "not_assessed"
# Outcomes an effect may have beyond the tagging vocabulary's: the harms and responder outcomes a
# summary of findings reports. `adverse_events` means participants with any adverse event; a single
# named event is `named_adverse_event` with the event in `event`.
EFFECT_OUTCOMES = {"pain_responders", "adverse_event_withdrawals", "serious_adverse_events", "named_adverse_event"}
# Outcomes counted as participants with the event: pooled as risk ratios, not on the SMD scale.
DICHOTOMOUS_OUTCOMES = {"pain_responders", "adverse_events", "adverse_event_withdrawals", "serious_adverse_events",
                        "named_adverse_event"}
# Low-dose naltrexone means at most 6 mg/day; a trial of a higher dose is shown, never pooled or
# counted as a trial of LDN.
LOW_DOSE_MAX_MG = 6
# RoB 2 judges a trial's reported result: a protocol has none, and a secondary analysis is judged
# with its trial's main report, so neither gets rows of its own.
NOT_JUDGED_DESIGNS = {"protocol", "secondary_analysis"}
NUMBER_FIELDS = [
    "timepoint_weeks", "estimate", "ci_low", "ci_high", "p_value", "mean_ldn", "sd_ldn",
    "mean_comparator", "sd_comparator", "sd",
    # medians and quartiles per arm, for a conversion to means and SDs (sensitivity analyses only)
    "median_ldn", "q1_ldn", "q3_ldn", "median_comparator", "q1_comparator", "q3_comparator",
    # the authors' own standardised effect (our sign: negative favours LDN) and its 95% CI
    "authors_smd", "authors_smd_ci_low", "authors_smd_ci_high",
]
COUNT_FIELDS = ["n_ldn", "n_comparator", "events_ldn", "events_comparator"]
TEXT_FIELDS = ["contrast", "instrument", "p_value_text", "reported", "event", "n_source"]
POOLED_FIELDS = ["estimate", "ci_low", "ci_high", "i2", "p_value"]
# Links that make a later paper part of a published meta-analysis's story.
LATER_RELATIONS = ("correction_of", "comment_on", "reply_to", "reanalysis_of")
PUBMED_LATER = ("ErratumIn", "CommentIn", "RetractionIn", "ExpressionOfConcernIn", "UpdateIn",
                "PartialRetractionIn", "CorrectedandRepublishedIn")
# The outcome the home page and `kb pool` lead with.
PAIN = "pain_intensity"

TABLES = {
    "effects": (
        {
            "effect_id": str, "key": str, "paper_id": str, "trial_key": str, "outcome": str,
            "timepoint_weeks": float, "contrast": str, "instrument": str, "measure": str,
            "estimate": float, "ci_low": float, "ci_high": float, "p_value": float,
            "p_value_text": str, "n_ldn": int, "n_comparator": int, "mean_ldn": float,
            "sd_ldn": float, "mean_comparator": float, "sd_comparator": float,
            "events_ldn": int, "events_comparator": int, "sd": float,
            "median_ldn": float, "q1_ldn": float, "q3_ldn": float, "median_comparator": float,
            "q1_comparator": float, "q3_comparator": float, "authors_smd": float,
            "authors_smd_ci_low": float, "authors_smd_ci_high": float, "event": str, "n_source": str,
            "population": str,
            "favours": str, "is_primary": int, "reported": str, "source": str, "checked": str,
            "crossover": int, "smd": float, "smd_se": float, "rr": float, "rr_ci_low": float,
            "rr_ci_high": float, "log_rr_se": float, "derivation": str, "poolable": int,
            "not_poolable_reason": str,
        },
        "effect_id",
        {"paper_id": ("papers", "paper_id")},
    ),
    "risk_of_bias": (
        {"key": str, "paper_id": str, "domain": str, "judgement": str, "reason": str, "source": str,
         "checked": str},
        ("key", "domain"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "meta_analyses": (
        {
            "key": str, "position": int, "paper_id": str, "year": int, "search_date": str,
            "included": str, "included_verified": int, "included_text": str, "conclusion": str,
            "outcome": str, "label": str, "measure": str, "k": int, "n": int, "estimate": float,
            "ci_low": float, "ci_high": float, "i2": float, "p_value": float, "p_value_text": str,
            "source": str,
            "checked": str, "later": str,
        },
        ("key", "position"),
        {"paper_id": ("papers", "paper_id")},
    ),
    "pooled_estimates": (
        {
            "outcome": str, "method": str, "measure": str, "k": int, "patients": int,
            "estimate": float, "se": float, "ci_low": float, "ci_high": float, "pi_low": float,
            "pi_high": float, "tau2": float, "i2": float, "q": float, "q_df": int, "q_p": float,
            "p_value": float, "certainty": str, "effect_ids": str, "excluded": str,
        },
        ("outcome", "method"),
        {},
    ),
    "pooled_studies": (
        {"outcome": str, "method": str, "effect_id": str, "study": str, "key": str, "paper_id": str,
         "year": int, "smd": float, "smd_se": float, "ci_low": float, "ci_high": float,
         "weight": float, "patients": int, "source": str},
        ("outcome", "method", "effect_id"),
        {},
    ),
    "pooled_leave_one_out": (
        {"outcome": str, "method": str, "omitted_effect_id": str, "omitted": str, "k": int,
         "estimate": float, "se": float, "ci_low": float, "ci_high": float, "tau2": float,
         "i2": float},
        ("outcome", "method", "omitted_effect_id"),
        {},
    ),
    "pooled_cumulative": (
        {"outcome": str, "method": str, "step": int, "year": int, "added_effect_id": str,
         "added": str, "k": int, "estimate": float, "se": float, "ci_low": float,
         "ci_high": float, "tau2": float, "i2": float},
        ("outcome", "method", "step"),
        {},
    ),
    "certainty": (
        {"outcome": str, "method": str, "domain": str, "downgrade": int, "reason": str},
        ("outcome", "method", "domain"),
        {},
    ),
}
store.register(tables=TABLES)


# --- validation ---------------------------------------------------------------------------


def validate_entry(entry, vocabulary):
    """Problems in one entry's effects, risk_of_bias and meta_analysis, as readable lines."""
    where = f"{entry.get('_file')}: {entry.get('key')}"
    problems = []
    effects = entry.get("effects") or []
    if not isinstance(effects, list):
        return [f"{where}: effects must be a list"]
    for index, effect in enumerate(effects, 1):
        problems += [f"{where}: effects[{index}]: {p}" for p in _effect_problems(effect, vocabulary)]
    rob = entry.get("risk_of_bias") or []
    if rob and not is_judged_rct(entry):
        problems.append(f"{where}: risk_of_bias is for reports of RCTs (design rct, not protocol or secondary_analysis)")
    seen = set()
    for index, item in enumerate(rob if isinstance(rob, list) else [None], 1):
        label = f"{where}: risk_of_bias[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{label}: expected {{domain, judgement, reason, source, checked}}")
            continue
        if item.get("domain") not in ROB_DOMAINS:
            problems.append(f"{label}: domain must be one of {', '.join(ROB_DOMAINS)}, not {item.get('domain')!r}")
        if item.get("domain") in seen:
            problems.append(f"{label}: domain {item['domain']} given twice")
        seen.add(item.get("domain"))
        if item.get("judgement") not in ROB_JUDGEMENTS | {NOT_JUDGEABLE}:
            problems.append(f"{label}: judgement must be low, some_concerns, high or not_assessed, not {item.get('judgement')!r}")
        if not item.get("reason"):
            problems.append(f"{label}: needs a reason (for not_assessed: why it cannot be judged)")
        if item.get("judgement") != NOT_JUDGEABLE or item.get("source"):
            problems += [f"{label}: {p}" for p in _source_problems(item)]
    meta = entry.get("meta_analysis")
    if meta is not None:
        problems += [f"{where}: meta_analysis: {p}" for p in _meta_problems(meta, vocabulary)]
    return problems


def validate_links(entries):
    """Keys named in meta_analysis.included must exist."""
    keys = {entry.get("key") for entry in entries}
    return [
        f"{entry.get('_file')}: {entry['key']}: meta_analysis: included key {included!r} does not exist"
        for entry in entries if isinstance(entry.get("meta_analysis"), dict)
        for included in entry["meta_analysis"].get("included") or [] if included not in keys
    ]


def _effect_problems(effect, vocabulary):
    if not isinstance(effect, dict):
        return ["expected a mapping of effect fields"]
    problems = []
    if effect.get("outcome") not in set(vocabulary["outcome"]) | EFFECT_OUTCOMES:
        problems.append(f"unknown outcome {effect.get('outcome')!r}")
    if (effect.get("outcome") == "named_adverse_event") != bool(effect.get("event")):
        problems.append("a named_adverse_event needs `event` (the event's name), and only it has one")
    if effect.get("measure") not in MEASURES:
        problems.append(f"measure must be one of {', '.join(sorted(MEASURES))}, not {effect.get('measure')!r}")
    problems += _not_numbers(effect, NUMBER_FIELDS)
    for field in COUNT_FIELDS:
        value = effect.get(field)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            problems.append(f"{field} must be a whole number, not {value!r}")
    if problems:
        return problems
    low, estimate, high = effect.get("ci_low"), effect.get("estimate"), effect.get("ci_high")
    if (low is None) != (high is None):
        problems.append("give both ci_low and ci_high, or neither")
    elif low is not None and not (low <= high and (estimate is None or low <= estimate <= high)):
        problems.append(f"CI {low} to {high} does not contain the estimate {estimate}")
    if effect.get("p_value") is not None and not 0 <= effect["p_value"] <= 1:
        problems.append(f"p_value {effect['p_value']} is not between 0 and 1")
    for field in ("sd", "sd_ldn", "sd_comparator"):
        if effect.get(field) is not None and effect[field] <= 0:
            problems.append(f"{field} must be positive")
    if effect.get("population") is not None and effect["population"] not in POPULATIONS:
        problems.append(f"population must be itt, per_protocol or complete_case, not {effect['population']!r}")
    if effect.get("favours") is not None and effect["favours"] not in FAVOURS:
        problems.append(f"favours must be ldn, comparator or neither, not {effect['favours']!r}")
    if not effect.get("reported"):
        problems.append("needs `reported` (what was reported, our words)")
    return problems + _source_problems(effect)


def _meta_problems(meta, vocabulary):
    if not isinstance(meta, dict):
        return ["expected a mapping"]
    problems = []
    for index, pooled in enumerate(meta.get("pooled") or [], 1):
        label = f"pooled[{index}]"
        if not isinstance(pooled, dict):
            problems.append(f"{label}: expected a mapping")
            continue
        if pooled.get("outcome") not in vocabulary["outcome"]:
            problems.append(f"{label}: unknown outcome {pooled.get('outcome')!r}")
        if pooled.get("measure") not in MEASURES:
            problems.append(f"{label}: unknown measure {pooled.get('measure')!r}")
        problems += [f"{label}: {p}" for p in _not_numbers(pooled, POOLED_FIELDS)]
        problems += [f"{label}: {p}" for p in _source_problems(pooled)]
    return problems


def _source_problems(item):
    problems = []
    if not str(item.get("source") or "").startswith(("http://", "https://")):
        problems.append("needs a source URL")
    if not item.get("checked"):
        problems.append("needs the date the source was checked")
    return problems


def _not_numbers(item, fields):
    return [f"{field} must be a number, not {item[field]!r}"
            for field in fields if item.get(field) is not None and not _is_number(item[field])]


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- loading ------------------------------------------------------------------------------


def build(db, entries, paper_key):
    """Load effects, risk of bias and meta-analyses from `entries`, then pool every outcome.

    `paper_key(entry)` is curate.paper_key (passed in: curate imports this module)."""
    publications = [e for e in entries if e.get("type") == "publication"]
    trial_ids = {e["key"]: str(e["registry_id"]) for e in entries if e.get("type") == "trial"}
    with db.conn:
        for table in TABLES:
            db.execute(f"delete from {table}")
    db["effects"].insert_all(
        [row for e in publications for row in _effect_rows(e, paper_key(e), trial_ids)], pk="effect_id"
    )
    db["risk_of_bias"].insert_all(
        [row for e in publications if is_judged_rct(e) for row in _rob_rows(e, paper_key(e))],
        pk=("key", "domain"),
    )
    db["meta_analyses"].insert_all(
        [row for e in publications if isinstance(e.get("meta_analysis"), dict)
         for row in _meta_rows(db, e, paper_key(e))],
        pk=("key", "position"),
    )
    for outcome in _poolable_outcomes(db):
        # two trials at least, counted after exclusions (a retracted paper's result drops out)
        if len(studies_for(db, outcome)[0]) >= 2:
            for method in synthesis.METHODS:
                save_pooled(db, outcome, method)


# Only randomised comparisons of low-dose naltrexone are pooled; other results stay in
# `effects`, shown with why.
NOT_RANDOMISED = "not a randomised controlled trial: shown, not pooled with the randomised evidence"
NOT_LOW_DOSE = (f"not low-dose naltrexone (more than {LOW_DOSE_MAX_MG} mg/day): shown, not pooled with the "
                "trials of LDN")
DOSE_NOT_VERIFIED = "the dose was not verified, so it is not counted as a trial of low-dose naltrexone"


def not_pooled_design(design, max_mg_per_day):
    """Why results of this study are never pooled (None when they may be): not randomised, or
    not low-dose naltrexone."""
    if "rct" not in (design or []):
        return NOT_RANDOMISED
    if max_mg_per_day is None:
        return DOSE_NOT_VERIFIED
    return NOT_LOW_DOSE if max_mg_per_day > LOW_DOSE_MAX_MG else None


def _effect_rows(entry, key, trial_ids):
    design = entry.get("design") or []
    crossover = "crossover" in design
    trial_key = next(
        (trial_ids[r["key"]] for r in entry.get("related") or []
         if r.get("relation") == "reports_trial" and r.get("key") in trial_ids),
        (entry.get("registry_ids") or [entry["key"]])[0],
    )
    excluded = not_pooled_design(design, (entry.get("dose") or {}).get("max_mg_per_day"))
    rows = []
    for index, effect in enumerate(entry.get("effects") or [], 1):
        if excluded:
            converted = {"not_poolable": excluded}
        elif effect["outcome"] in DICHOTOMOUS_OUTCOMES:
            converted = synthesis.to_log_rr(effect)
        else:
            converted = synthesis.to_smd(effect, crossover=crossover)
        variance = converted.get("smd_variance")
        rows.append({
            "effect_id": f"{entry['key']}#{index}", "key": entry["key"], "paper_id": key,
            "trial_key": str(trial_key), "outcome": effect["outcome"],
            **{f: effect.get(f) for f in NUMBER_FIELDS + COUNT_FIELDS + TEXT_FIELDS},
            "measure": effect["measure"], "population": effect.get("population"),
            "favours": effect.get("favours"), "is_primary": int(bool(effect.get("primary"))),
            "source": effect["source"], "checked": str(effect["checked"]), "crossover": int(crossover),
            "smd": converted.get("smd"), "smd_se": math.sqrt(variance) if variance else None,
            **_risk_ratio_columns(converted),
            "derivation": converted.get("derivation"), "poolable": int("smd" in converted or "log_rr" in converted),
            "not_poolable_reason": converted.get("not_poolable"),
        })
    return rows


def _risk_ratio_columns(converted):
    if "log_rr" not in converted:
        return {"rr": None, "rr_ci_low": None, "rr_ci_high": None, "log_rr_se": None}
    log_rr, se = converted["log_rr"], math.sqrt(converted["log_rr_variance"])
    return {"rr": math.exp(log_rr), "rr_ci_low": math.exp(log_rr - synthesis.Z95 * se),
            "rr_ci_high": math.exp(log_rr + synthesis.Z95 * se), "log_rr_se": se}


def is_judged_rct(entry):
    design = set(entry.get("design") or [])
    return "rct" in design and not design & NOT_JUDGED_DESIGNS


def _rob_rows(entry, key):
    given = {item["domain"]: item for item in entry.get("risk_of_bias") or []}
    given.setdefault("overall", _derived_overall(given))
    rows = []
    for domain in ROB_DOMAINS:
        item = given.get(domain, {})
        rows.append({
            "key": entry["key"], "paper_id": key, "domain": domain,
            "judgement": _stored_judgement(item.get("judgement")), "reason": item.get("reason"),
            "source": item.get("source"), "checked": str(item["checked"]) if item.get("checked") else None,
        })
    return rows


def _stored_judgement(judgement):
    return NOT_ASSESSED if judgement in (None, NOT_JUDGEABLE) else judgement


def _derived_overall(given):
    """RoB 2's own rule for the overall judgement, applied only when all five domains are judged:
    high if any domain is high, low if all are low, else some concerns. (RoB 2 also allows
    'high' for several domains with some concerns; that needs a reviewer, so we do not infer it.)"""
    judgements = [given[d]["judgement"] for d in ROB_DOMAINS[:-1]
                  if given.get(d, {}).get("judgement") in ROB_JUDGEMENTS]
    if len(judgements) < len(ROB_DOMAINS) - 1:
        return {}
    overall = "high" if "high" in judgements else "low" if set(judgements) == {"low"} else "some_concerns"
    return {"judgement": overall, "reason": "derived from the five domain judgements by the RoB 2 rule"}


def _meta_rows(db, entry, key):
    meta = entry["meta_analysis"]
    later = _later_papers(db, key)
    shared = {
        "key": entry["key"], "paper_id": key, "year": entry.get("year"),
        "search_date": str(meta["search_date"]) if meta.get("search_date") else None,
        "included": json.dumps(meta["included"]) if meta.get("included") else None,
        "included_verified": int(bool(meta.get("included"))), "included_text": meta.get("included_text"),
        "conclusion": meta.get("conclusion"), "later": json.dumps(later),
    }
    pooled = meta.get("pooled") or [{}]
    return [
        {**shared, "position": position, "outcome": p.get("outcome"), "label": p.get("label"),
         "measure": p.get("measure"), "k": p.get("k"), "n": p.get("n"),
         "p_value_text": p.get("p_value_text"), **{f: p.get(f) for f in POOLED_FIELDS},
         "source": p.get("source"), "checked": str(p["checked"]) if p.get("checked") else None}
        for position, p in enumerate(pooled, 1)
    ]


def _later_papers(db, key):
    """Corrections, comments, replies and re-analyses of a paper: curated links and PubMed's."""
    rows = db.execute(
        f"select relation, from_key from links where to_key = ? and relation in "
        f"({', '.join('?' * len(LATER_RELATIONS))}) order by from_key",
        [key, *LATER_RELATIONS],
    ).fetchall()
    rows += db.execute(
        f"select ref_type, ref_pmid from comments_corrections where paper_id = ? and ref_pmid is not null "
        f"and ref_type in ({', '.join('?' * len(PUBMED_LATER))}) order by ref_pmid",
        [key, *PUBMED_LATER],
    ).fetchall()
    return [{"relation": relation, "paper_id": other} for relation, other in rows]


def _poolable_outcomes(db):
    """Continuous outcomes with a poolable effect: these get the pooled SMD tables."""
    return [row[0] for row in db.execute("select distinct outcome from effects where poolable order by outcome")
            if row[0] not in DICHOTOMOUS_OUTCOMES]


# --- pooling from kb.db -------------------------------------------------------------------


def retracted_papers(db):
    """Paper keys whose integrity status is `retracted`, when kb.db has `integrity_status`."""
    if not (db["integrity_status"].exists() or "integrity_status" in db.view_names()):
        return set()
    return {row[0] for row in db.execute("select paper_id from integrity_status where status = 'retracted'")}


def studies_for(db, outcome, exclude=()):
    """One poolable effect per trial for `outcome`, and what was left out with why.

    Per trial the primary analysis wins, then ITT, then the latest timepoint. Each study's `yi`
    and `vi` are on the analysis scale: SMD, or log risk ratio for a dichotomous outcome."""
    retracted = retracted_papers(db)
    excluded, chosen = [], {}
    for row in outcome_rows(db, outcome):
        if row["key"] in exclude or row["effect_id"] in exclude or row["trial_key"] in exclude:
            excluded.append({"effect_id": row["effect_id"], "reason": "excluded on request"})
        elif row["paper_id"] in retracted:
            excluded.append({"effect_id": row["effect_id"], "reason": "paper retracted"})
        elif not row["poolable"]:
            excluded.append({"effect_id": row["effect_id"], "reason": row["not_poolable_reason"]})
        else:
            rank = (row["is_primary"], row["population"] == "itt", row["timepoint_weeks"] or 0)
            current = chosen.get(row["trial_key"])
            if current is None or rank > current[0]:
                if current:
                    excluded.append({"effect_id": current[1]["effect_id"], "reason": "another analysis of the same trial was chosen"})
                chosen[row["trial_key"]] = (rank, row)
            else:
                excluded.append({"effect_id": row["effect_id"], "reason": "another analysis of the same trial was chosen"})
    studies, labels = [], set()
    for _, row in sorted(chosen.values(), key=lambda item: (item[1]["year"] or 0, item[1]["key"])):
        label = row["study"] if row["study"] not in labels else f"{row['study']} ({row['key']})"
        labels.add(label)
        dichotomous = outcome in DICHOTOMOUS_OUTCOMES
        studies.append({
            "study": label, "yi": math.log(row["rr"]) if dichotomous else row["smd"],
            "vi": (row["log_rr_se"] if dichotomous else row["smd_se"]) ** 2, "year": row["year"],
            "effect_id": row["effect_id"], "key": row["key"], "paper_id": row["paper_id"],
            "trial_key": row["trial_key"],
            "source": row["source"], "patients": _patients(row), "comparator": row["comparator"],
            "population": row["studied"], "crossover": row["crossover"],
            **{f: row[f] for f in ("events_ldn", "n_ldn", "events_comparator", "n_comparator")},
        })
    return studies, excluded


def outcome_rows(db, outcome):
    """Every effects row of `outcome` with its study's label, year, comparator and population."""
    rows = db.query(
        "select e.*, coalesce(c.year, p.year) as year, c.authors, p.first_author, "
        "c.comparator, c.population as studied from effects e "
        "left join curated_entries c on c.key = e.key left join papers p on p.paper_id = e.paper_id "
        "where e.outcome = ? order by e.effect_id",
        [outcome],
    )
    return [{**row, "study": study_label(row["first_author"], row["authors"], row["key"], row["year"])} for row in rows]


def effect_fields(row):
    """A stored effects row back in the curated field names the synthesis functions read."""
    return {f: row[f] for f in ["measure", *NUMBER_FIELDS, *COUNT_FIELDS, *TEXT_FIELDS]}


def study_label(first_author, authors, key, year):
    """"Younger 2013": the first author's surname and the year; a study whose year no page
    confirmed says so rather than showing a blank."""
    first = first_author or (authors or key).split(",")[0]
    surname = first.rsplit(" ", 1)[0] if " " in first else first
    return f"{surname} {year}" if year else f"{surname} (year not verified)"


def _patients(row):
    if row["crossover"]:
        return row["n_ldn"] or row["n_comparator"]
    return (row["n_ldn"] or 0) + (row["n_comparator"] or 0) or None


# --- trials, their risk of bias, and results that are missing -----------------------------

# Which curated `outcomes` value says a trial measured an outcome of the summary of findings.
MEASURED_AS = {"adverse_event_withdrawals": "adverse_events", "serious_adverse_events": "adverse_events",
               "pain_responders": None}
# Registry statuses after which results are due.
RESULTS_DUE = {"completed", "terminated", "unknown", "unknown status", "suspended"}


def trial_reports(db):
    """Every curated report of a randomised trial's results (not protocols or secondary
    analyses), one dict per paper: key, paper_id, trial_key, label, year, design, dose, comparator,
    population, outcomes, n_randomized, and why its results are never pooled (None when they
    may be: randomised, low-dose)."""
    if not db["curated_entries"].exists():
        return []
    trial_of = dict(db.execute("select from_key, to_key from links where relation = 'reports_trial'").fetchall())
    reports = []
    for row in db.query(
            "select c.*, p.first_author from curated_entries c left join papers p on p.paper_id = c.paper_id "
            "where c.type = 'publication' order by coalesce(c.year, 9999), c.key"):
        design = json.loads(row["design"] or "[]")
        if not is_judged_rct({"design": design}):
            continue
        registry_ids = json.loads(row["registry_ids"] or "[]")
        reports.append({
            "key": row["key"], "paper_id": row["paper_id"],
            "trial_key": trial_of.get(row["paper_id"]) or (registry_ids or [row["key"]])[0],
            "label": study_label(row["first_author"], row["authors"], row["key"], row["year"]),
            "year": row["year"], "design": design, "dose_max_mg_per_day": row["dose_max_mg_per_day"],
            "comparator": row["comparator"], "population": row["population"],
            "outcomes": json.loads(row["outcomes"] or "[]"), "n_randomized": row["n_randomized"],
            "not_pooled": not_pooled_design(design, row["dose_max_mg_per_day"]),
        })
    return reports


def ldn_trials(db):
    """The randomised trials of LDN (at most 6 mg/day) in fibromyalgia with results: one
    report per trial (the earliest), in publication order."""
    seen, trials = set(), []
    for report in trial_reports(db):
        if (report["not_pooled"] is None and "fibromyalgia" in str(report["population"] or "").lower()
                and report["trial_key"] not in seen):
            seen.add(report["trial_key"])
            trials.append(report)
    return trials


def rob_by_trial(db):
    """Each trial's RoB 2 judgement for GRADE: the overall judgement where one was made, else
    the worst judged domain when it is high or some concerns (RoB 2's overall is at least as
    bad as any domain), else None (not assessed). {trial_key: (judgement, reports' keys)}."""
    judged = {}
    keys = {r["key"]: r["trial_key"] for r in trial_reports(db)}
    if not db["risk_of_bias"].exists():
        return {}
    for row in db.query("select key, domain, judgement from risk_of_bias"):
        judged.setdefault(keys.get(row["key"], row["key"]), {}).setdefault(row["domain"], []).append(row["judgement"])
    ranked = ["low", "some_concerns", "high"]
    result = {}
    for trial_key, domains in judged.items():
        overall = [j for j in domains.get("overall", []) if j in ranked]
        worst = max((j for d, js in domains.items() if d != "overall" for j in js if j in ranked),
                    key=ranked.index, default=None)
        if overall:
            result[trial_key] = max(overall, key=ranked.index)
        elif worst in ("high", "some_concerns"):
            result[trial_key] = worst
        else:
            result[trial_key] = None
    return result


NO_NUMBERS = "measured, but no effect estimate was found on public pages"


def missing_results(db, outcome, used_trial_keys):
    """Trials whose results for `outcome` are missing or unusable, as (trial, why): randomised
    LDN trials that measured it (their curated outcomes, or an effects row) but gave no usable
    numbers, and registered trials whose results are due but were not found."""
    measured_as = MEASURED_AS.get(outcome, outcome)
    reasons = {}
    if db["effects"].exists():
        for row in db.query("select trial_key, not_poolable_reason from effects where outcome = ? and not poolable "
                            "order by is_primary desc, effect_id", [outcome]):
            reasons.setdefault(row["trial_key"], row["not_poolable_reason"])
    # A trial with no events in either arm reported its result; it just cannot enter a risk ratio.
    reported = {key for key, why in reasons.items() if why == synthesis.DOUBLE_ZERO}
    missing, seen = [], set(used_trial_keys) | reported
    for report in ldn_trials(db):
        key = report["trial_key"]
        if key in seen or not (key in reasons or (measured_as and measured_as in report["outcomes"])):
            continue
        seen.add(key)
        missing.append((report["label"], reasons.get(key) or NO_NUMBERS))
    if db["trials"].exists():
        for row in db.query("select registry_id, acronym, status, dose_max_mg_per_day from trials "
                            "where published = 0 order by registry_id"):
            low_dose = row["dose_max_mg_per_day"] is None or row["dose_max_mg_per_day"] <= LOW_DOSE_MAX_MG
            if low_dose and (row["status"] or "").lower() in RESULTS_DUE and row["registry_id"] not in seen:
                name = f"{row['acronym']} ({row['registry_id']})" if row["acronym"] else row["registry_id"]
                missing.append((name, f"registered, status {row['status']}, no results found"))
    return missing


def pool_outcome(db, outcome, method="REML", hartung_knapp=False, exclude=()):
    """The `kb pool --db` result: meta-analysis of one outcome, with sources and exclusions,
    and its GRADE-style certainty. A dichotomous outcome is pooled as log risk ratios."""
    if not db["effects"].exists():
        raise synthesis.SynthesisError("this database has no effects table; run kb build first")
    studies, excluded = studies_for(db, outcome, exclude)
    if not studies:
        raise synthesis.SynthesisError(f"no poolable {outcome} effects in kb.db")
    measure = "rr" if outcome in DICHOTOMOUS_OUTCOMES else "smd"
    result = synthesis.meta_analysis(studies, method, hartung_knapp)
    result.update({"outcome": outcome, "measure": measure,
                   "sign": "log risk ratio, LDN over comparator" if measure == "rr" else "negative favours LDN",
                   "excluded": excluded,
                   "integrity_checked": bool(db["integrity_status"].exists() or "integrity_status" in db.view_names()),
                   "patients": sum(s["patients"] or 0 for s in studies)})
    rob = rob_by_trial(db)
    trials = [{**s, "n": s["patients"], "rob": rob.get(s["trial_key"])} for s in result["studies"]]
    events = sum((s["events_ldn"] or 0) + (s["events_comparator"] or 0) for s in studies) if measure == "rr" else None
    missing = missing_results(db, outcome, {s["trial_key"] for s in studies})
    result["grade"] = synthesis.grade(result, trials, missing, measure, events)
    return result


def certainty_rows(outcome, method, graded):
    """The `certainty` rows of one result: each GRADE domain, then the overall row."""
    where = {"outcome": outcome, "method": method}
    return [{**where, **d} for d in graded["domains"]] + [{**where, **synthesis.overall_certainty(graded)}]


def save_pooled(db, outcome, method):
    """Write one outcome's pooled result, studies, leave-one-out, cumulative and certainty."""
    result = pool_outcome(db, outcome, method)
    where = {"outcome": outcome, "method": method}
    db["pooled_estimates"].insert({
        **where, "measure": "smd", "patients": result["patients"],
        **{f: result[f] for f in ("k", "estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high",
                                  "tau2", "i2", "q", "q_df", "q_p", "p_value")},
        "certainty": result["grade"]["certainty"],
        "effect_ids": json.dumps([s["effect_id"] for s in result["studies"]]),
        "excluded": json.dumps(result["excluded"]),
    }, pk=("outcome", "method"))
    z = synthesis.Z95
    db["pooled_studies"].insert_all([
        {**where, "effect_id": s["effect_id"], "study": s["study"], "key": s["key"], "paper_id": s["paper_id"],
         "year": s["year"], "smd": s["yi"], "smd_se": s["se"], "ci_low": s["yi"] - z * s["se"],
         "ci_high": s["yi"] + z * s["se"], "weight": s["weight"], "patients": s["patients"],
         "source": s["source"]}
        for s in result["studies"]], pk=("outcome", "method", "effect_id"))
    ids = {s["study"]: s["effect_id"] for s in result["studies"]}
    db["pooled_leave_one_out"].insert_all([
        {**where, "omitted_effect_id": ids[r["omitted"]], **r} for r in result["leave_one_out"]],
        pk=("outcome", "method", "omitted_effect_id"))
    db["pooled_cumulative"].insert_all([
        {**where, "added_effect_id": ids[r["added"]], **r} for r in result["cumulative"]],
        pk=("outcome", "method", "step"))
    db["certainty"].insert_all(certainty_rows(outcome, method, result["grade"]), pk=("outcome", "method", "domain"))
