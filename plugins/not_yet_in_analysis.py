"""The home page's "Not yet in the analysis" (templates/_not_yet_in_analysis.html): randomised
trials of LDN in fibromyalgia with results that kb.db holds and no effects row covers, newest
first, each with the date it was found (view not_yet_in_analysis, harvest/views.py).
"""

from datasette import hookimpl
from datasette.utils import tilde_encode

DATABASE = "kb"
VIEW = "not_yet_in_analysis"


async def not_yet_in_analysis(datasette):
    db = datasette.get_database(DATABASE)
    if VIEW not in await db.view_names():
        return {VIEW: None}
    result = await db.execute(
        f"select paper_id, citation, found, machine_read_numbers, curated from {VIEW} order by first_seen desc, paper_id")
    papers = [dict(row) for row in result.rows]
    for paper in papers:
        paper["href"] = datasette.urls.row(DATABASE, "papers", tilde_encode(paper["paper_id"]))
    # A curator who checked a trial and entered no effects found no usable numbers on public pages:
    # said apart from trials no curator has seen yet.
    return {VIEW: papers, "not_yet_checked": [p for p in papers if not p["curated"]],
            "checked_without_numbers": [p for p in papers if p["curated"]]}


@hookimpl
def extra_template_vars(view_name, datasette):
    if view_name == "index":
        return not_yet_in_analysis(datasette)
    return None
