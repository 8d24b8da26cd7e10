"""The search page (/prisma, templates/pages/prisma.html): how kb.db's records were found and
screened, as a PRISMA 2020 flow diagram drawn here as SVG (no network, no JavaScript), the
search log and the exclusions by reason. Every count comes from the `prisma_flow` view and
links to the `screening` rows it counts.
"""

import textwrap
from urllib.parse import urlencode

from datasette import hookimpl
from markupsafe import Markup, escape

from harvest.labels import label

DATABASE = "kb"
PAGE = "/prisma"
NEEDED = ("searches", "screening", "prisma_flow")
# PRISMA 2020 separates databases and registers from other methods of identification.
DATABASE_ROUTES = ("harvest", "registry", "crossref")
OTHER_ROUTES = ("sweep", "citation_chasing", "curation")

# Diagram geometry, in SVG user units (the page scales it to its width).
WIDTH, COLUMN_W, LINE_H, PAD, STAGE_GAP = 1000, 440, 20, 12, 46
LEFT, RIGHT = 20, 1000 - 20 - 440
CHARS_PER_LINE = 58  # at 14px in a 440-unit box


async def rows(db, sql, params=()):
    return [dict(row) for row in (await db.execute(sql, params)).rows]


def screening_href(datasette, **filters):
    return datasette.urls.table(DATABASE, "screening") + ("?" + urlencode(filters) if filters else "")


async def search_page(datasette):
    db = datasette.get_database(DATABASE)
    present = set(await db.table_names()) | set(await db.view_names())
    if not set(NEEDED) <= present:
        return {"prisma": None}
    flow = await rows(db, "select * from prisma_flow")
    if not flow:
        return {"prisma": None}
    totals = {row["stage"]: row["count"] for row in flow if row["detail"] is None}
    by_route = {route: 0 for route in DATABASE_ROUTES + OTHER_ROUTES}
    by_route.update({row["route"]: row["n"] for row in await rows(
        db, "select source as route, count(*) as n from screening group by source")})
    reasons = [row for row in flow if row["stage"] == "excluded" and row["detail"] is not None]
    included = {row["detail"]: row["count"] for row in flow if row["stage"] == "included" and row["detail"]}
    searches = await rows(db, "select * from searches order by rowid")  # the order they were logged
    for search in searches:
        search["route_label"] = label("search_route", search["route"])
        search["href"] = screening_href(datasette, search_id=search["search_id"])
    for reason in reasons:
        reason["href"] = screening_href(datasette, decision="excluded", reason=reason["detail"])
    hrefs = {
        "identified": screening_href(datasette),
        "excluded": screening_href(datasette, decision="excluded"),
        "included": screening_href(datasette, decision="included"),
        "flow": datasette.urls.table(DATABASE, "prisma_flow"),
        "searches": datasette.urls.table(DATABASE, "searches"),
    }
    diagram = flow_svg(totals, by_route, reasons, included, hrefs,
                       {route: screening_href(datasette, source=route) for route in by_route})
    return {"prisma": {"totals": totals, "reasons": reasons, "included": included, "searches": searches,
                       "hrefs": hrefs, "svg": diagram,
                       "sweep_dates": sorted({s["run_on"] for s in searches if s["route"] == "sweep" and s["run_on"]})}}


def flow_svg(totals, by_route, reasons, included, hrefs, route_hrefs):
    """The PRISMA 2020 flow as inline SVG: identification (databases and registers beside other
    methods), duplicates removed, records screened and excluded with reasons, records included."""
    out = []
    y = 30
    out.append(_stage(y - 10, "Identification"))

    def route_lines(routes):
        return [(f"{label('search_route', r)}: {by_route.get(r, 0)}", route_hrefs[r]) for r in routes]

    left_h = _box(out, LEFT, y, "Records identified from databases and registers", route_lines(DATABASE_ROUTES))
    right_h = _box(out, RIGHT, y, "Records identified by other methods", route_lines(OTHER_ROUTES))
    top = y + max(left_h, right_h)
    y = top + STAGE_GAP
    merged_h = _box(out, LEFT, y, f"Records identified in all: {totals.get('identified', 0)}",
                    [("a record found by two searches counts twice here", None)], hrefs["identified"])
    out.append(_arrow(LEFT + COLUMN_W / 2, top, LEFT + COLUMN_W / 2, y))
    out.append(_arrow(RIGHT + COLUMN_W / 2, top, LEFT + COLUMN_W * 0.75, y))
    dup_h = _box(out, RIGHT, y, f"Duplicates removed: {totals.get('duplicates removed', 0)}",
                 [("records found by more than one search or route, kept once", None)], hrefs["flow"])
    out.append(_arrow(LEFT + COLUMN_W, y + merged_h / 2, RIGHT, y + dup_h / 2))
    top = y + max(merged_h, dup_h)
    y = top + STAGE_GAP
    out.append(_stage(y - 10, "Screening"))
    screened_h = _box(out, LEFT, y, f"Records screened: {totals.get('screened', 0)}",
                      [("each record once, by title, abstract or registry page", None)], hrefs["identified"])
    out.append(_arrow(LEFT + COLUMN_W / 2, top, LEFT + COLUMN_W / 2, y))
    excluded_h = _box(out, RIGHT, y, f"Records excluded: {totals.get('excluded', 0)}",
                      [(f"{r['detail']}: {r['count']}", r["href"]) for r in reasons], hrefs["excluded"])
    out.append(_arrow(LEFT + COLUMN_W, y + screened_h / 2, RIGHT, y + screened_h / 2))
    top = y + screened_h
    y = max(top + STAGE_GAP, y + excluded_h + 20)
    out.append(_stage(y - 10, "Included"))
    _box(out, LEFT, y, f"Records included in this knowledge base: {totals.get('included', 0)}",
         [(f"{what}: {n}", None) for what, n in included.items()], hrefs["included"])
    out.append(_arrow(LEFT + COLUMN_W / 2, top, LEFT + COLUMN_W / 2, y))
    height = y + 40 + LINE_H * (len(included) + 1)
    title = "PRISMA 2020 flow diagram of the records found and screened for this knowledge base"
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kb-prisma" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        '<defs><marker id="kb-prisma-head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" class="kb-prisma-head"/></marker></defs>'
        + "".join(out) + "</svg>")


def _box(out, x, y, heading, lines, href=None):
    """A box with a bold heading and one line per item (each optionally a link); returns its height."""
    wrapped = [(part, link) for text, link in lines for part in textwrap.wrap(text, CHARS_PER_LINE) or [""]]
    heading_lines = textwrap.wrap(heading, CHARS_PER_LINE - 6)
    height = PAD * 2 + LINE_H * (len(heading_lines) + len(wrapped))
    parts = [f'<rect x="{x}" y="{y}" width="{COLUMN_W}" height="{height}" rx="4" class="kb-prisma-box"/>']
    line_y = y + PAD + 14
    for text in heading_lines:
        parts.append(_link(href, f'<text x="{x + PAD}" y="{line_y}" class="kb-prisma-heading">{escape(text)}</text>'))
        line_y += LINE_H
    for text, link in wrapped:
        parts.append(_link(link, f'<text x="{x + PAD}" y="{line_y}">{escape(text)}</text>'))
        line_y += LINE_H
    out.append("".join(parts))
    return height


def _link(href, element):
    return f'<a href="{escape(href)}">{element}</a>' if href else element


def _arrow(x1, y1, x2, y2):
    return (f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" class="kb-prisma-arrow" '
            'marker-end="url(#kb-prisma-head)"/>')


def _stage(y, name):
    return f'<text x="{LEFT}" y="{y}" class="kb-prisma-stage">{escape(name)}</text>'


@hookimpl
def extra_template_vars(view_name, request, datasette):
    if view_name == "page" and request is not None and request.path == PAGE:
        return search_page(datasette)
    return None

