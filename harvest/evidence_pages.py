"""The evidence pages, rendered once by `kb build` and stored, so serving them costs one query.

`evidence_pages` holds three HTML fragments (harvest/templates/): `home` (the home page's
"What the evidence says": bottom line, compact summary of findings, forest and cumulative plots
drawn as SVG, each trial's pain result, published meta-analyses), `summary_of_findings` (the
full table with footnotes) and `robustness` (the sensitivity analyses). Links are written as
page_links.BASE + path; plugins/evidence_summary.py puts Datasette's base_url in its place.
"""

import json
import math

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from . import evidence, store, summary_of_findings, synthesis
from .labels import label
from .page_links import DATABASE, path, row_href, table_href, with_links

PAIN = evidence.PAIN
# A prediction interval from fewer trials is too unstable to show (it stays in pooled_estimates).
MIN_TRIALS_FOR_PREDICTION = 5
TABLES = {"evidence_pages": ({"page": str, "title": str, "html": str}, "page", {})}
store.register(tables=TABLES)

ANALYSES = {
    "hartung_knapp": "Hartung-Knapp-Sidik-Jonkman CI",
    "crossover_r_0.3": "crossover trials: within-person correlation 0.3",
    "crossover_r_0.7": "crossover trials: within-person correlation 0.7",
    "with_median_conversions": "adding trials reported as medians (converted)",
    "authors_effect_sizes": "the authors' own effect sizes",
}
# Plot geometry, in SVG user units.
WIDTH, LABEL_W, RIGHT_W, ROW_H, TOP, AXIS_H = 820, 270, 150, 26, 34, 46

_templates = Environment(loader=PackageLoader("harvest", "templates"), autoescape=select_autoescape(["html"]),
                         trim_blocks=True, lstrip_blocks=True)


def number(value, places=2):
    return "n/a" if value is None else f"{value:.{places}f}".replace("-", "\u2212")


_templates.filters["num"] = number
_templates.filters["with_links"] = with_links


def build(db):
    """Render the three pages from the tables `kb build` has just written, and store them."""
    with db.conn:
        db.execute("delete from evidence_pages")
    pages = [
        ("home", "What the evidence says", "evidence_home.html", home(db)),
        ("summary_of_findings", "Summary of findings: low-dose naltrexone for fibromyalgia", "evidence_sof.html",
         sof_page(db)),
        ("robustness", "How robust is the summary of findings?", "evidence_robustness.html", robustness(db)),
    ]
    db["evidence_pages"].insert_all(
        [{"page": page, "title": title, "html": _templates.get_template(template).render(title=title, **context)}
         for page, title, template, context in pages], pk="page")


# --- links and numbers --------------------------------------------------------------------


def paper_href(paper_id):
    return row_href("papers", paper_id)


def interval(estimate, low, high, places=2):
    return f"{number(estimate, places)} ({number(low, places)} to {number(high, places)})"


# --- the home page ------------------------------------------------------------------------


def home(db):
    pooled = _one(db, "select * from pooled_estimates where outcome = ? and method = 'REML'", [PAIN])
    trials = evidence.ldn_trials(db)
    context = {
        "trials": trials, "trials_href": table_href("curated_entries", key=[t["key"] for t in trials]),
        "not_counted": _not_counted(db), "results": _pain_results(db), "published": _published(db),
        "sof": _sof_rows(db), "sof_page": path("summary-of-findings"), "robustness_page": path("robustness"),
        "robustness": _robustness_line(db),
    }
    results = context["results"]
    context["largest"] = sorted(results, key=lambda r: r["patients"] or 0, reverse=True)[:3]
    if not pooled:
        return {**context, "pain": None}
    sof = next(row for row in context["sof"] if row["outcome"] == PAIN)
    studies = list(db.query("select * from pooled_studies where outcome = ? and method = 'REML' "
                            "order by year is null, year, study", [PAIN]))
    steps = list(db.query("select * from pooled_cumulative where outcome = ? and method = 'REML' order by step",
                          [PAIN]))
    for study in studies:
        study["href"] = row_href("effects", study["effect_id"])
    for step in steps:
        step.update(href=row_href("effects", step["added_effect_id"]), smd=step["estimate"],
                    study=f"+ {step['added']} (k={step['k']})")
    pooled["href"] = row_href("pooled_estimates", PAIN, "REML")
    pooled["show_prediction"] = pooled["k"] >= MIN_TRIALS_FOR_PREDICTION and pooled["pi_low"] is not None
    effect_ids = json.loads(pooled["effect_ids"])
    return {
        **context, "pain": pooled, "pain_sof": sof, "min_trials_for_prediction": MIN_TRIALS_FOR_PREDICTION,
        "pooled_effects_href": table_href("effects", effect_id=effect_ids),
        "bottom_line": bottom_line(pooled),
        "certainty": [{**row, "domain_label": label("certainty_domain", row["domain"])} for row in db.query(
            "select * from certainty where outcome = ? and method = 'REML' and domain != 'overall' order by rowid",
            [PAIN])],
        "certainty_href": path(DATABASE, "certainty") + f"?outcome={PAIN}&method=REML",
        "forest_svg": forest_svg(studies, pooled, "Forest plot: pain, standardised mean difference by trial"),
        "cumulative_svg": forest_svg(steps, None, "Cumulative meta-analysis: pooled pain SMD as each trial was added"),
    }


def bottom_line(pooled):
    """One sentence on the pooled effect's size and whether its CI includes no difference."""
    estimate, low, high = pooled["estimate"], pooled["ci_low"], pooled["ci_high"]
    size = next(words for limit, words in [(0.2, "a very small or no"), (0.5, "a small"), (0.8, "a moderate"),
                                           (math.inf, "a large")] if abs(estimate) < limit)
    direction = "in favour of LDN" if estimate < 0 else "in favour of placebo"
    if low < 0 < high:
        return (f"The pooled result points to {size} effect {direction}, but the 95% CI includes no difference "
                "at all.")
    return f"The pooled result shows {size} effect {direction}."


def _one(db, sql, params):
    rows = list(db.query(sql, params))
    return rows[0] if rows else None


def _not_counted(db):
    """Studies with results that are shown but not counted as randomised trials of LDN."""
    reasons = {evidence.NOT_RANDOMISED: "not randomised", evidence.DOSE_NOT_VERIFIED: "dose not verified"}
    shown = []
    for row in db.query(
            "select distinct e.key, e.paper_id, e.not_poolable_reason, c.year, c.authors, c.dose_max_mg_per_day, "
            "p.first_author from effects e left join curated_entries c on c.key = e.key "
            "left join papers p on p.paper_id = e.paper_id where e.not_poolable_reason in (?, ?, ?) "
            "order by c.year, e.key",
            [evidence.NOT_RANDOMISED, evidence.NOT_LOW_DOSE, evidence.DOSE_NOT_VERIFIED]):
        why = reasons.get(row["not_poolable_reason"]) or f"naltrexone {row['dose_max_mg_per_day']:g} mg, not low-dose"
        shown.append({"label": evidence.study_label(row["first_author"], row["authors"], row["key"], row["year"]),
                      "href": paper_href(row["paper_id"]), "why": why})
    keys = {item["href"] for item in shown}
    for report in evidence.trial_reports(db):  # trials of another dose with no effects rows
        if report["not_pooled"] == evidence.NOT_LOW_DOSE and paper_href(report["paper_id"]) not in keys:
            shown.append({"label": report["label"], "href": paper_href(report["paper_id"]),
                          "why": f"naltrexone {report['dose_max_mg_per_day']:g} mg, not low-dose"})
    return shown


# Each trial's pain result as the home page lists it: per trial the primary analysis, then ITT,
# then the latest timepoint (the rule evidence.studies_for pools by).
PAIN_RESULTS = """
with ranked as (
  select e.*, row_number() over (
           partition by e.trial_key
           order by e.is_primary desc, e.population = 'itt' desc, e.timepoint_weeks desc, e.effect_id) as rank
  from effects e where e.outcome = :outcome and e.measure not in ('responders', 'rr', 'or', 'irr', 'rd')
)
select r.effect_id, r.key, r.paper_id, r.measure, r.estimate, r.ci_low, r.ci_high, r.p_value, r.favours, r.poolable,
       r.not_poolable_reason, r.crossover, r.source,
       coalesce(case when r.crossover then r.n_ldn else r.n_ldn + r.n_comparator end,
                c.n_analysed, c.n_randomized) as patients,
       coalesce(c.year, p.year) as year, c.authors, p.first_author
from ranked r
left join curated_entries c on c.key = r.key
left join papers p on p.paper_id = r.paper_id
where r.rank = 1
order by coalesce(c.year, p.year) is null, coalesce(c.year, p.year), r.key
"""


def _pain_results(db):
    results = list(db.query(PAIN_RESULTS, {"outcome": PAIN}))
    for item in results:
        item["measure_label"] = label("measure", item["measure"])
        item["href"] = row_href("effects", item["effect_id"])
        item["study"] = evidence.study_label(item["first_author"], item["authors"], item["key"], item["year"])
    return results


def _published(db):
    published = list(db.query("""
        select m.*, p.citation,
               coalesce(p.first_author, substr(c.authors, 1, instr(c.authors || ',', ',') - 1)) as first_author
        from meta_analyses m left join papers p on p.paper_id = m.paper_id left join curated_entries c on c.key = m.key
        where m.outcome = ? and m.estimate is not null order by m.year, m.key, m.position""", [PAIN]))
    for item in published:
        item["measure_label"] = label("measure", item["measure"])
        item["first_author"] = (item["first_author"] or item["key"].split("-")[0].capitalize()).rsplit(" ", 1)[0]
        item["href"] = row_href("meta_analyses", item["key"], item["position"])
        item["paper_href"] = paper_href(item["paper_id"])
        item["shown"] = interval(item["estimate"], item["ci_low"], item["ci_high"]) if item["ci_low"] is not None \
            else number(item["estimate"])
        item["i2_shown"] = "not reported" if item["i2"] is None else f"{item['i2']:.0f}%"
    return published


def _robustness_line(db):
    rows = list(db.query("select * from sensitivity_analyses where outcome = ? order by position", [PAIN]))
    changed = [row for row in rows if row["changes_conclusion"]]
    return {"total": len(rows), "changed": [_analysis_words(row["analysis"], db) for row in changed]}


def _analysis_words(analysis, db):
    if analysis.startswith("leave_one_out:"):
        effect_id = analysis.split(":", 1)[1]
        row = _one(db, "select e.key, e.paper_id, c.year, c.authors, p.first_author from effects e left join "
                       "curated_entries c on c.key = e.key left join papers p on p.paper_id = e.paper_id "
                       "where e.effect_id = ?", [effect_id])
        who = evidence.study_label(row["first_author"], row["authors"], row["key"], row["year"]) if row else effect_id
        return f"leaving out {who}"
    return ANALYSES.get(analysis, analysis.replace("_", " "))


# --- summary of findings ------------------------------------------------------------------


def _sof_rows(db):
    rows = list(db.query("select * from summary_of_findings order by position"))
    for row in rows:
        row["href"] = row_href("summary_of_findings", row["outcome"])
        if row["k"]:
            name = "SMD" if row["measure"] == "smd" else "RR"
            row["effect"] = f"{name} {interval(row['estimate'], row['ci_low'], row['ci_high'])}"
    return rows


def sof_page(db):
    rows = _sof_rows(db)
    for row in rows:
        method = "REML" if (row["k"] or 0) > 1 else "single trial"
        row["domains"] = [{**d, "domain_label": label("certainty_domain", d["domain"])} for d in db.query(
            "select * from certainty where outcome = ? and method = ? and domain != 'overall' order by rowid",
            [row["outcome"], method])]
        row["trials"] = [{"study": s["study"], "href": row_href("effects", s["effect_id"])}
                         for s in _studies(db, json.loads(row["effect_ids"] or "[]"))]
    return {"rows": rows, "pain_sd": summary_of_findings.pain_sd(), "sd_source": summary_of_findings.PAIN_SD_SOURCE,
            "mid": summary_of_findings.PAIN_MID, "zero_cell": synthesis.ZERO_CELL_CORRECTION,
            "home": path(""), "robustness_page": path("robustness"), "trials": evidence.ldn_trials(db),
            "not_counted": _not_counted(db)}


def _studies(db, effect_ids):
    studies = []
    for effect_id in effect_ids:
        row = _one(db, "select e.key, c.year, c.authors, p.first_author from effects e left join curated_entries c "
                       "on c.key = e.key left join papers p on p.paper_id = e.paper_id "
                       "where e.effect_id = ?", [effect_id])
        studies.append({"effect_id": effect_id,
                        "study": evidence.study_label(row["first_author"], row["authors"], row["key"], row["year"])})
    return studies


# --- robustness ---------------------------------------------------------------------------


def robustness(db):
    outcomes = []
    for sof in _sof_rows(db):
        rows = list(db.query("select * from sensitivity_analyses where outcome = ? order by position", [sof["outcome"]]))
        if not rows:
            continue
        for row in rows:
            row["href"] = row_href("sensitivity_analyses", row["outcome"], row["analysis"])
            row["words"] = _analysis_words(row["analysis"], db)
            row["shown"] = interval(row["estimate"], row["ci_low"], row["ci_high"])
        outcomes.append({**sof, "analyses": rows})
    return {"outcomes": outcomes, "home": path(""), "sof_page": path("summary-of-findings")}


# --- plots --------------------------------------------------------------------------------


def forest_svg(items, pooled, title):
    """A forest plot as inline SVG: one linked row per item (smd, ci_low, ci_high, optional
    weight) and an optional pooled diamond. The axis fits the trials' and the pooled CIs; the
    prediction interval is drawn only from MIN_TRIALS_FOR_PREDICTION trials, clipped to the axis."""
    values = [v for item in items for v in (item["ci_low"], item["ci_high"])]
    if pooled:
        values += [pooled["ci_low"], pooled["ci_high"]]
    span = math.ceil(max([0.5] + [abs(v) for v in values]) * 4) / 4  # symmetric, to the next quarter
    plot_w = WIDTH - LABEL_W - RIGHT_W
    bottom = TOP + ROW_H * (len(items) + (2 if pooled else 0))

    def x(value):
        return LABEL_W + (max(-span, min(span, value)) + span) / (2 * span) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kb-forest" role="img" viewBox="0 0 {WIDTH} '
        f'{bottom + AXIS_H}" width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        _text(LABEL_W + plot_w / 2, 16, "SMD (Hedges' g), 95% CI", "kb-forest-head", "middle"),
        _text(WIDTH - RIGHT_W + 8, 16, "SMD [95% CI]", "kb-forest-head"),
        _line(x(0), TOP - 8, x(0), bottom, "kb-forest-zero"),
    ]
    biggest = max([item.get("weight") or 0 for item in items] + [1])
    for index, item in enumerate(items):
        y = TOP + ROW_H * index + ROW_H / 2
        side = 4 + 8 * ((item.get("weight") or biggest) / biggest) ** 0.5  # area follows weight
        out.append(
            f'<a href="{escape(item["href"])}"><g class="kb-forest-row">'
            + _text(4, y + 4, item["study"]) + _line(x(item["ci_low"]), y, x(item["ci_high"]), y, "kb-forest-ci")
            + f'<rect x="{x(item["smd"]) - side / 2:.1f}" y="{y - side / 2:.1f}" width="{side:.1f}" '
            f'height="{side:.1f}" class="kb-forest-box"/>'
            + _text(WIDTH - RIGHT_W + 8, y + 4, f"{number(item['smd'])} [{number(item['ci_low'])}, "
                                                f"{number(item['ci_high'])}]") + "</g></a>"
        )
    if pooled:
        y = TOP + ROW_H * (len(items) + 1)
        if pooled.get("show_prediction"):
            out.append(_line(x(pooled["pi_low"]), y, x(pooled["pi_high"]), y, "kb-forest-pi"))
        mid = x(pooled["estimate"])
        diamond = (f"{x(pooled['ci_low']):.1f},{y:.1f} {mid:.1f},{y - 8:.1f} {x(pooled['ci_high']):.1f},{y:.1f} "
                   f"{mid:.1f},{y + 8:.1f}")
        out.append(
            f'<a href="{escape(pooled["href"])}"><g class="kb-forest-pooled">'
            + _text(4, y + 4, f"Pooled (REML, k={pooled['k']})")
            + f'<polygon points="{diamond}" class="kb-forest-diamond"/>'
            + _text(WIDTH - RIGHT_W + 8, y + 4, f"{number(pooled['estimate'])} [{number(pooled['ci_low'])}, "
                                                f"{number(pooled['ci_high'])}]") + "</g></a>"
        )
    out.append(_line(LABEL_W, bottom, LABEL_W + plot_w, bottom, "kb-forest-axis"))
    for tick in (-span, -span / 2, 0, span / 2, span):
        out += [_line(x(tick), bottom, x(tick), bottom + 5, "kb-forest-axis"),
                _text(x(tick), bottom + 17, number(tick), anchor="middle")]
    out += [_text(x(0) - 6, bottom + 36, "\u2190 favours LDN", "kb-forest-favours", "end"),
            _text(x(0) + 6, bottom + 36, "favours placebo \u2192", "kb-forest-favours"), "</svg>"]
    return Markup("".join(out))


def _text(x, y, content, css_class=None, anchor=None):
    attributes = (f' class="{css_class}"' if css_class else "") + (f' text-anchor="{anchor}"' if anchor else "")
    return f'<text x="{x:.1f}" y="{y:.1f}"{attributes}>{escape(content)}</text>'


def _line(x1, y1, x2, y2, css_class):
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{css_class}"/>'
