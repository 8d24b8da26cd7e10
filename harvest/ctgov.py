"""ClinicalTrials.gov (API v2): request building and parsing of study records.

Requests: one `/studies` call asks for up to STUDIES_BATCH NCT ids at once
(`filter.ids`), follows `nextPageToken`, and on a refresh adds
`filter.advanced` so only records updated since the last fetch come back.
Parsing turns one study's JSON into the facts the registration-vs-publication
checks use; nothing here touches the database or the network.
"""

import os

from . import tag
from .http import PoliteClient, expect_json

DEFAULT_CTGOV_URL = "https://clinicaltrials.gov/api/v2/"
STUDIES_BATCH = 100  # ids per request; the page size matches, so a batch is normally one page
PER_MINUTE = 40  # the service asks for about 50 requests per minute; stay under it


def make_client(base_url=None, per_second=PER_MINUTE / 60, **options):
    """The polite client for ClinicalTrials.gov, at $KB_CTGOV_URL (default the public API)."""
    base_url = base_url or os.environ.get("KB_CTGOV_URL") or DEFAULT_CTGOV_URL
    return PoliteClient("ClinicalTrials.gov", base_url, per_second, classify=expect_json, **options)


def studies_params(nct_ids, since=None, page_token=None):
    """Query parameters of one `/studies` request for these ids (updated on or after `since`)."""
    params = {"filter.ids": ",".join(nct_ids), "pageSize": STUDIES_BATCH, "format": "json"}
    if since:
        params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{since},MAX]"
    if page_token:
        params["pageToken"] = page_token
    return params


def fetch_studies(client, nct_ids, since=None):
    """Yield each study's JSON (a dict) for these ids: batched, every page followed."""
    for start in range(0, len(nct_ids), STUDIES_BATCH):
        batch, token = nct_ids[start : start + STUDIES_BATCH], None
        while True:
            page = client.request("studies", studies_params(batch, since, token)).json()
            yield from page.get("studies") or []
            token = page.get("nextPageToken")
            if not token:
                break


def nct_id(study):
    return _get(study, "protocolSection", "identificationModule", "nctId")


def last_update(study):
    """The record's last-update-posted date (YYYY-MM-DD), as the registry shows it."""
    return _get(study, "protocolSection", "statusModule", "lastUpdatePostDateStruct", "date")


def parse_study(study):
    """The facts of one study record: {"study": row, "outcomes": rows, "interventions": rows}.

    Date and enrolment types are lower-cased to the curated vocabulary (`actual`,
    `anticipated`: the API says ESTIMATED for the latter).
    """
    protocol = study.get("protocolSection") or {}
    status = protocol.get("statusModule") or {}
    design = protocol.get("designModule") or {}
    enrollment = design.get("enrollmentInfo") or {}
    registry_id = nct_id(study)
    row = {
        "registry_id": registry_id,
        "title": _get(protocol, "identificationModule", "briefTitle"),
        "overall_status": _lower(status.get("overallStatus")),
        "why_stopped": status.get("whyStopped"),
        "last_update": last_update(study),
        "has_results": int(bool(study.get("hasResults"))),
        "enrollment": enrollment.get("count"),
        "enrollment_type": _date_type(enrollment.get("type")),
    }
    for name, key in (("start", "startDateStruct"), ("primary_completion", "primaryCompletionDateStruct"),
                      ("completion", "completionDateStruct")):
        value = status.get(key) or {}
        row[f"{name}_date"] = value.get("date")
        row[f"{name}_date_type"] = _date_type(value.get("type"))
    outcomes = []
    registered = protocol.get("outcomesModule") or {}
    for kind, key in (("primary", "primaryOutcomes"), ("secondary", "secondaryOutcomes")):
        for position, outcome in enumerate(registered.get(key) or [], 1):
            outcomes.append({
                "registry_id": registry_id, "kind": kind, "position": position,
                "measure": outcome.get("measure"), "time_frame": outcome.get("timeFrame"),
                "outcome_values": outcome_values(outcome.get("measure"), outcome.get("description")),
                "posted_result": None,
            })
    posted = _get(study, "resultsSection", "outcomeMeasuresModule", "outcomeMeasures") or []
    for position, measure in enumerate((m for m in posted if m.get("type") == "PRIMARY"), 1):
        outcomes.append({
            "registry_id": registry_id, "kind": "posted_primary", "position": position,
            "measure": measure.get("title"), "time_frame": measure.get("timeFrame"),
            "outcome_values": outcome_values(measure.get("title"), measure.get("description")),
            "posted_result": posted_result(measure),
        })
    arms = protocol.get("armsInterventionsModule") or {}
    interventions = []
    for position, item in enumerate(arms.get("interventions") or [], 1):
        text = " ".join(p for p in (item.get("name"), item.get("description")) if p)
        doses = [t for t in tag.tag_text(text) if t["kind"] == "dose"]
        interventions.append({
            "registry_id": registry_id, "position": position, "type": _lower(item.get("type")),
            "name": item.get("name"), "description": item.get("description"),
            "arms": ", ".join(item.get("armGroupLabels") or []) or None,
            "dose_min_mg_per_day": min((d["detail"].get("min_mg_per_day") for d in doses
                                        if d["detail"].get("min_mg_per_day") is not None), default=None),
            "dose_max_mg_per_day": max((d["detail"].get("max_mg_per_day") for d in doses
                                        if d["detail"].get("max_mg_per_day") is not None), default=None),
        })
    return {"study": row, "outcomes": outcomes, "interventions": interventions}


def outcome_values(*texts):
    """The outcome vocabulary values our tagger finds in a registered outcome's wording."""
    text = " ".join(t for t in texts if t)
    if not text:
        return []
    return sorted({t["value"] for t in tag.tag_text(text) if t["kind"] == "outcome"})


def posted_result(measure):
    """A posted outcome measure as one readable line: per group value (spread), then analyses."""
    groups = {g.get("id"): g.get("title") for g in measure.get("groups") or []}
    unit = measure.get("unitOfMeasure") or ""
    parts = []
    for group_class in measure.get("classes") or []:
        for category in group_class.get("categories") or []:
            for value in category.get("measurements") or []:
                spread = f" ({value['spread']})" if value.get("spread") else ""
                parts.append(f"{groups.get(value.get('groupId'), value.get('groupId'))}: "
                             f"{value.get('value')}{spread} {unit}".strip())
    for analysis in measure.get("analyses") or []:
        if analysis.get("pValue"):
            parts.append(f"p={analysis['pValue']}")
    return "; ".join(parts) or None


def _date_type(value):
    return {"ACTUAL": "actual", "ESTIMATED": "anticipated", "ANTICIPATED": "anticipated"}.get(
        (value or "").upper())


def _lower(value):
    return value.lower() if isinstance(value, str) else None


def _get(data, *keys):
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
