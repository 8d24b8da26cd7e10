"""The home page's "What the evidence says" (templates/_evidence_summary.html): a bottom line
generated from kb.db, a forest plot and a cumulative plot drawn here as SVG (no network, no
JavaScript), and published meta-analyses beside ours. Every number links to its source row.

Reads the tables harvest/evidence.py writes (pooled_estimates, pooled_studies,
pooled_cumulative, certainty, meta_analyses, risk_of_bias); shows nothing until they exist.
"""

import math

from datasette import hookimpl
from datasette.utils import tilde_encode
from markupsafe import Markup, escape

from harvest.labels import label

DATABASE = "kb"
OUTCOME = "pain_intensity"
METHOD = "REML"
NEEDED = ("pooled_estimates", "pooled_studies", "pooled_cumulative", "certainty", "meta_analyses",
          "risk_of_bias", "effects")
# Cohen's rough guide for SMDs, used only to put a size into words.
SIZES = [(0.2, "a very small or no"), (0.5, "a small"), (0.8, "a moderate"), (float("inf"), "a large")]

# Plot geometry, in SVG user units.
WIDTH, LABEL_W, RIGHT_W, ROW_H, TOP, AXIS_H = 760, 230, 150, 26, 34, 46


async def rows(db, sql, params=()):
    return [dict(row) for row in (await db.execute(sql, params)).rows]


def row_href(datasette, table, *pks):
    return datasette.urls.row(DATABASE, table, ",".join(tilde_encode(str(pk)) for pk in pks))


def number(value, places=2):
    return "n/a" if value is None else f"{value:.{places}f}".replace("-", "\u2212")


# Each trial's pain result as the home page lists it: per trial the primary analysis, then ITT,
# then the latest timepoint (the rule harvest/evidence.py pools by).
PAIN_RESULTS = """
with ranked as (
  select e.*, row_number() over (
           partition by e.trial_key
           order by e.is_primary desc, e.population = 'itt' desc, e.timepoint_weeks desc, e.effect_id) as rank
  from effects e where e.outcome = :outcome and e.measure not in ('responders', 'rr', 'or', 'irr', 'rd')
)
select r.effect_id, r.key, r.measure, r.estimate, r.ci_low, r.ci_high, r.p_value, r.favours, r.poolable,
       r.not_poolable_reason, r.crossover, r.source,
       coalesce(case when r.crossover then r.n_ldn else r.n_ldn + r.n_comparator end,
                c.n_analysed, c.n_randomized) as patients,
       coalesce(c.year, p.year) as year, coalesce(p.first_author, c.authors) as first_author
from ranked r
left join curated_entries c on c.key = r.key
left join papers p on p.pmid = r.pmid
where r.rank = 1
order by coalesce(c.year, p.year) is null, coalesce(c.year, p.year), r.key
"""


async def evidence_summary(datasette):
    db = datasette.get_database(DATABASE)
    present = set(await db.table_names()) | set(await db.view_names())
    if not set(NEEDED) <= present:
        return {"evidence_summary": None}
    where = [OUTCOME, METHOD]
    pooled = (await rows(db, "select * from pooled_estimates where outcome = ? and method = ?", where) or [None])[0]
    results = await rows(db, PAIN_RESULTS, {"outcome": OUTCOME})
    published = await rows(db, """
        select m.*, p.citation,
               coalesce(p.first_author, substr(c.authors, 1, instr(c.authors || ',', ',') - 1), m.key) as first_author
        from meta_analyses m left join papers p on p.pmid = m.pmid left join curated_entries c on c.key = m.key
        where m.outcome = ? and m.estimate is not null order by m.year, m.key, m.position""", [OUTCOME])
    if not (pooled or results or published):
        return {"evidence_summary": None}
    rcts = (await rows(db, "select count(distinct key) as n from risk_of_bias"))[0]["n"]
    for item in results:
        item["measure_label"] = label("measure", item["measure"])
        item["href"] = row_href(datasette, "effects", item["effect_id"])
        item["study"] = f"{str(item['first_author'] or item['key']).split(',')[0].rsplit(' ', 1)[0]} {item['year'] or ''}".strip()
    for item in published:
        item["measure_label"] = label("measure", item["measure"])
        if item["first_author"] == item["key"]:  # no authors known: the key's name part
            item["first_author"] = item["key"].split("-")[0].capitalize()
        item["href"] = row_href(datasette, "meta_analyses", item["key"], item["position"])
        item["paper_href"] = datasette.urls.row(DATABASE, "papers", tilde_encode(item["pmid"]))
    summary = {
        "pooled": pooled, "results": results, "published": published, "rcts": rcts,
        "rob_href": datasette.urls.table(DATABASE, "risk_of_bias") + "?domain=overall",
        "effects_href": datasette.urls.table(DATABASE, "effects") + f"?outcome={OUTCOME}",
        "largest": sorted(results, key=lambda r: r["patients"] or 0, reverse=True)[:3],
    }
    if pooled:
        studies = await rows(db, "select * from pooled_studies where outcome = ? and method = ? order by year is null, year, study", where)
        steps = await rows(db, "select * from pooled_cumulative where outcome = ? and method = ? order by step", where)
        for study in studies:
            study["href"] = row_href(datasette, "effects", study["effect_id"])
        for step in steps:
            step.update(href=row_href(datasette, "effects", step["added_effect_id"]), smd=step["estimate"],
                        study=f"{step['year'] or ''} + {step['added']} (k={step['k']})")
        pooled["href"] = row_href(datasette, "pooled_estimates", OUTCOME, METHOD)
        summary.update(
            certainty=[{**d, "domain_label": label("certainty_domain", d["domain"])} for d in await rows(
                db, "select * from certainty where outcome = ? and method = ? and domain != 'overall'", where)],
            certainty_href=datasette.urls.table(DATABASE, "certainty") + f"?outcome={OUTCOME}&method={METHOD}",
            bottom_line=bottom_line(pooled),
            forest_svg=forest_svg(studies, pooled, "Forest plot: pain, standardised mean difference by trial"),
            cumulative_svg=forest_svg(steps, None, "Cumulative meta-analysis: pooled pain SMD as each trial was added"),
        )
    return {"evidence_summary": summary}


def bottom_line(pooled):
    """One sentence on the pooled effect, in words a patient can read, built from the numbers."""
    estimate, low, high = pooled["estimate"], pooled["ci_low"], pooled["ci_high"]
    size = next(words for limit, words in SIZES if abs(estimate) < limit)
    direction = "in favour of LDN" if estimate < 0 else "in favour of placebo"
    if low < 0 < high:
        verdict = (f"The pooled result points to {size} effect {direction}, but the 95% CI includes "
                   "no difference at all")
    else:
        verdict = f"The pooled result shows {size} effect {direction}"
    spread = ""
    if pooled["pi_low"] is not None:
        spread = ("; a new trial could find anything from a benefit to a harm"
                  if pooled["pi_low"] < 0 < pooled["pi_high"] else "")
    return verdict + spread + "."


def forest_svg(items, pooled, title):
    """A forest plot as inline SVG: one linked row per item (smd, ci_low, ci_high, optional
    weight), an optional pooled diamond with its prediction interval, and the favours labels."""
    values = [v for item in items for v in (item["ci_low"], item["ci_high"])]
    if pooled:
        values += [v for v in (pooled["ci_low"], pooled["ci_high"], pooled["pi_low"], pooled["pi_high"]) if v is not None]
    span = math.ceil(max([1.0] + [abs(v) for v in values]) * 2) / 2  # symmetric, to the next half
    plot_w = WIDTH - LABEL_W - RIGHT_W
    bottom = TOP + ROW_H * (len(items) + (2 if pooled else 0))

    def x(value):
        return LABEL_W + (max(-span, min(span, value)) + span) / (2 * span) * plot_w

    def interval(item, estimate):
        return f"{number(item[estimate])} [{number(item['ci_low'])}, {number(item['ci_high'])}]"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kb-forest" role="img" viewBox="0 0 {WIDTH} {bottom + AXIS_H}" '
        f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>',
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
            + _text(WIDTH - RIGHT_W + 8, y + 4, interval(item, "smd")) + "</g></a>"
        )
    if pooled:
        y = TOP + ROW_H * (len(items) + 1)
        if pooled["pi_low"] is not None:
            out.append(_line(x(pooled["pi_low"]), y, x(pooled["pi_high"]), y, "kb-forest-pi"))
        mid = x(pooled["estimate"])
        diamond = f"{x(pooled['ci_low']):.1f},{y:.1f} {mid:.1f},{y - 8:.1f} {x(pooled['ci_high']):.1f},{y:.1f} {mid:.1f},{y + 8:.1f}"
        out.append(
            f'<a href="{escape(pooled["href"])}"><g class="kb-forest-pooled">'
            + _text(4, y + 4, f"Pooled ({pooled['method']}, k={pooled['k']})")
            + f'<polygon points="{diamond}" class="kb-forest-diamond"/>'
            + _text(WIDTH - RIGHT_W + 8, y + 4, interval(pooled, "estimate")) + "</g></a>"
        )
    out.append(_line(LABEL_W, bottom, LABEL_W + plot_w, bottom, "kb-forest-axis"))
    for tick in (-span, -span / 2, 0, span / 2, span):
        out += [_line(x(tick), bottom, x(tick), bottom + 5, "kb-forest-axis"),
                _text(x(tick), bottom + 17, number(tick, 1), anchor="middle")]
    out += [_text(x(0) - 6, bottom + 36, "\u2190 favours LDN", "kb-forest-favours", "end"),
            _text(x(0) + 6, bottom + 36, "favours placebo \u2192", "kb-forest-favours"), "</svg>"]
    return Markup("".join(out))


def _text(x, y, content, css_class=None, anchor=None):
    attributes = (f' class="{css_class}"' if css_class else "") + (f' text-anchor="{anchor}"' if anchor else "")
    return f'<text x="{x:.1f}" y="{y:.1f}"{attributes}>{escape(content)}</text>'


def _line(x1, y1, x2, y2, css_class):
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{css_class}"/>'


@hookimpl
def extra_template_vars(view_name, datasette):
    if view_name == "index":
        return evidence_summary(datasette)
    return None
