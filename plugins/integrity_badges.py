"""Integrity on the site: a badge for a paper's notices (retracted, corrected...) and, on a
paper page, the registration-vs-publication checks of the trials it reports.

Reads the views `integrity_status` and `registration_vs_publication` (harvest/views.py);
templates/_integrity_badge.html and _registration_checks.html show them.
"""

import json

from datasette import hookimpl
from datasette.utils import tilde_decode
from markupsafe import Markup

DATABASE = "kb"
BADGE_COLUMN = "integrity"  # a column of this name (e.g. in clinical_evidence) shows as a badge
CHECKS = (
    ("flag_unpublished", "completed over 12 months ago, no results paper and no posted results"),
    ("flag_enrollment_differs", "published enrolment differs from the registered by more than 10%"),
    ("flag_outcome_switch", "the registered primary outcome is not the published primary outcome"),
    ("flag_dose_differs", "published dose differs from the registered dose"),
)


# Where a notice or a registry fact was found, in words (integrity_notices.sources,
# registration_vs_publication.registry_facts_from).
FOUND_IN = {"curated": "a curator's check of the public pages"}


def found_in(sources):
    """'PubMed, curated' -> 'PubMed and a curator's check of the public pages'."""
    parts = [FOUND_IN.get(part.strip(), part.strip()) for part in str(sources or "").split(",") if part.strip()]
    return " and ".join(parts)


def badge(status):
    """The badge for an integrity status; nothing for 'none'."""
    if not status or status == "none":
        return Markup("")
    return Markup('<span class="kb-badge kb-badge-{}">{}</span>').format(status.replace(" ", "-"), status)


async def paper_integrity(datasette, key):
    db = datasette.get_database(DATABASE)
    found = (await db.execute("select status, notices from integrity_status where paper_id = ?", [key])).rows
    trials = (await db.execute(
        "select v.* from registration_vs_publication v where v.registry_id in "
        "(select registry_id from trial_results_papers where paper_id = ? "
        " union select registry_id from paper_registry_ids where paper_id = ?) order by v.registry_id",
        [key, key])).rows
    status, notices = (found[0]["status"], json.loads(found[0]["notices"])) if found else ("none", [])
    for notice in notices:
        notice["found_in"] = found_in(notice.get("source"))
    return {
        "integrity_badge": badge(status),
        "integrity_notices": notices,
        "registration_checks": [
            {**dict(row), "raised": [text for flag, text in CHECKS if row[flag]],
             "facts_from": found_in(row["registry_facts_from"])} for row in trials
        ],
    }


@hookimpl
def extra_template_vars(view_name, database, table, request, datasette):
    if view_name == "row" and database == DATABASE and table == "papers":
        return paper_integrity(datasette, tilde_decode(request.url_vars["pks"]))
    return None


@hookimpl
def render_cell(value, column):
    if column == BADGE_COLUMN and value is not None:
        return badge(str(value)) or Markup("&nbsp;")
    return None
