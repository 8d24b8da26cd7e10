"""The evidence pages as stored by `kb build` (harvest/evidence_pages.py): the home page's "What
the evidence says" (templates/_evidence_summary.html), the summary of findings
(templates/pages/summary-of-findings.html) and the robustness page (templates/pages/robustness.html).

Nothing is computed per request: one query fetches the stored HTML, and Datasette's base_url
takes the place of the links' placeholder. Shows nothing until `kb build` has written them.
"""

from datasette import hookimpl
from markupsafe import Markup

from harvest.page_links import BASE, DATABASE


def evidence_page(datasette):
    async def render(page):
        db = datasette.get_database(DATABASE)
        if not await db.table_exists("evidence_pages"):  # a kb.db built before the evidence pages
            return ""
        rows = (await db.execute("select html from evidence_pages where page = ?", [page])).rows
        return Markup(rows[0][0].replace(BASE, datasette.urls.path("/"))) if rows else ""
    return render


@hookimpl
def extra_template_vars(view_name, datasette):
    if view_name in ("index", "page"):
        return {"evidence_page": evidence_page(datasette)}
    return None
