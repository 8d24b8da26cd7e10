"""Curated evidence: load `harvest/curated/*.yml`, validate it, and store it in kb.db.

A curated publication becomes a paper (its `paper_id` as `paper_key` says) when
no PubMed record has been harvested for it; where one has, PubMed's fields win
and the curated facts stay in `curated_entries`, where the `conflicts` view
compares them. Curated facts also become tags with source 'curated'.

An entry's `note` is public and shown on pages; its `curation_log` is the curators' own
record and is never loaded. The old `notes` key (public and internal text mixed) is refused.
Sources get their kind (source_kinds.py) and are stored canonical pages first.
"""

import json
import re
from pathlib import Path

import yaml

from . import evidence, store
from .dois import DOI_PATTERN
from .parse import safe_html
from .relations import CURATED_RELATIONS
from .source_kinds import KINDS, ordered

CURATED_DIR = Path(__file__).parent / "curated"
DIRECTIONS = {"favours_ldn", "no_difference", "favours_comparator", "mixed", "not_applicable"}
PMID_PATTERN = re.compile(r"^[1-9]\d{0,8}$")
PMCID_PATTERN = re.compile(r"^PMC\d+$")
REGISTRY_PATTERNS = [
    re.compile(r"^NCT\d{8}$"),
    re.compile(r"^\d{4}-\d{6}-\d{2}$"),  # EudraCT
    re.compile(r"^\d{4}-\d{6}-\d{2}-\d{2}$"),  # EU CT (CTIS)
    re.compile(r"^ACTRN\d{14}$"),
    re.compile(r"^ISRCTN\d{8}$"),
    re.compile(r"^DRKS\d{8}$"),
    re.compile(r"^ChiCTR[-\w]+$"),
    re.compile(r"^IRCT\w+$"),
    re.compile(r"^CTRI/\d{4}/\d+/\d+$"),
    re.compile(r"^RBR-\w+$"),  # ReBEC (Brazil)
]
# The curated folder's search log (harvest/screening.py reads them): not lists of entries.
SEARCH_LOG_FILES = ("searches.yml", "screening.yml")
# A conference abstract or a journal item with no DOI or PMID is identified by its citation.
CITATION_FIELDS = ("journal", "year", "pages")


class CurationError(ValueError):
    """The curated files have problems; `problems` lists each, naming file and key."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in curated data: {problems[0]}")


def load_curated(directory=CURATED_DIR):
    """All entries of every YAML file in `directory`, each with its `_file`."""
    entries = []
    for path in sorted(p for p in Path(directory).glob("*.yml") if p.name not in SEARCH_LOG_FILES):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as error:
            raise CurationError([f"{path.name}: not valid YAML: {error}"]) from None
        if not isinstance(data, list):
            raise CurationError([f"{path.name}: expected a list of entries"])
        for entry in data:
            entries.append({**entry, "_file": path.name})
    return entries


def is_registry_id(value):
    return any(p.match(str(value)) for p in REGISTRY_PATTERNS)


def validate(entries, vocabulary):
    """Problems found in the curated entries, as readable lines (empty when valid)."""
    problems = []
    keys = {}
    seen_ids = {}
    for entry in entries:
        where = f"{entry.get('_file')}: {entry.get('key', '(no key)')}"
        key = entry.get("key")
        if not key:
            problems.append(f"{where}: missing key")
            continue
        if key in keys:
            problems.append(f"{where}: duplicate key (also in {keys[key]})")
        keys[key] = entry["_file"]
        kind = entry.get("type")
        if kind not in ("publication", "trial"):
            problems.append(f"{where}: type must be publication or trial, not {kind!r}")
        if not (entry.get("pmid") or entry.get("doi") or _registry_ids(entry)
                or all(entry.get(name) for name in CITATION_FIELDS)):
            problems.append(f"{where}: needs a DOI, PMID or registry id, or a citation ({', '.join(CITATION_FIELDS)})")
        if entry.get("pmid") and not PMID_PATTERN.match(str(entry["pmid"])):
            problems.append(f"{where}: malformed PMID {entry['pmid']!r}")
        if entry.get("doi") and not DOI_PATTERN.match(str(entry["doi"])):
            problems.append(f"{where}: malformed DOI {entry['doi']!r}")
        if entry.get("pmcid") and not PMCID_PATTERN.match(str(entry["pmcid"])):
            problems.append(f"{where}: malformed PMCID {entry['pmcid']!r}")
        for registry_id in _registry_ids(entry):
            if not is_registry_id(registry_id):
                problems.append(f"{where}: malformed registry id {registry_id!r}")
        for label, value in (("pmid", entry.get("pmid")), ("doi", str(entry.get("doi") or "").lower())):
            if value:
                if (label, value) in seen_ids:
                    problems.append(f"{where}: {label} {value} also in {seen_ids[(label, value)]}")
                seen_ids[(label, value)] = key
        sources = entry.get("sources") or []
        if not sources or not all(isinstance(s, dict) and s.get("url") for s in sources):
            problems.append(f"{where}: every entry needs sources with a url")
        for source in sources:
            if isinstance(source, dict) and source.get("kind") and source["kind"] not in KINDS:
                problems.append(f"{where}: unknown source kind {source['kind']!r} (one of {', '.join(KINDS)})")
        for value in entry.get("design") or []:
            if value not in vocabulary["design"]:
                problems.append(f"{where}: unknown design value {value!r}")
        for value in entry.get("outcomes") or []:
            if value not in vocabulary["outcome"]:
                problems.append(f"{where}: unknown outcome value {value!r}")
        if "notes" in entry:
            problems.append(f"{where}: 'notes' is no longer read: split it into note (public) and curation_log (internal)")
        direction = entry.get("result_direction")
        if direction and direction not in DIRECTIONS:
            problems.append(f"{where}: unknown result_direction {direction!r}")
        problems += evidence.validate_entry(entry, vocabulary)
    for entry in entries:
        where = f"{entry.get('_file')}: {entry.get('key')}"
        for link in entry.get("related") or []:
            if link.get("relation") not in CURATED_RELATIONS:
                problems.append(f"{where}: unknown relation {link.get('relation')!r}")
            if link.get("key") not in keys:
                problems.append(f"{where}: related key {link.get('key')!r} does not exist")
        for included in entry.get("includes") or []:
            if included not in keys:
                problems.append(f"{where}: included key {included!r} does not exist")
    return problems + registry_fact_problems(entries, vocabulary) + evidence.validate_links(entries)


def _registry_ids(entry):
    ids = list(entry.get("registry_ids") or [])
    if entry.get("registry_id"):
        ids.append(entry["registry_id"])
    return [str(i) for i in ids]


def paper_key(entry):
    """The paper key of a curated publication: its PMID, else `doi:` + lower-case DOI,
    else `curated:` + its key (a result known only through its trial registration)."""
    if entry.get("pmid"):
        return str(entry["pmid"])
    if entry.get("doi"):
        return "doi:" + str(entry["doi"]).lower()
    return "curated:" + entry["key"]


def entry_key(entry):
    """What `links` calls an entry: a paper key, or a trial's registry id."""
    return str(entry["registry_id"]) if entry["type"] == "trial" else paper_key(entry)


def save_curated(db, entries):
    """Replace all curated rows with these entries (publications, trials, links, sources, tags)."""
    by_key = {entry["key"]: entry for entry in entries}
    with db.conn:
        for table in ("curated_entries", "trials", "sources"):
            db.execute(f"delete from {table}")
        db.execute("delete from links where origin = 'curated'")
        db.execute("delete from registry_ids where origin = 'curated'")
        harvested = {row[0] for row in db.execute("select paper_id from papers where source = 'pubmed'")}
        stale = [
            row[0] for row in db.execute("select paper_id from papers where source = 'curated'")
        ]
        wanted = {paper_key(e) for e in entries if e["type"] == "publication"}
        for key in stale:
            if key not in wanted or key in harvested:
                _delete_paper(db, key)
    for entry in entries:
        if entry["type"] == "trial":
            db["trials"].insert(_trial_row(entry), pk="registry_id")
        else:
            key = paper_key(entry)
            if key not in harvested:
                store.save_paper(db, _paper_record(entry), source="curated")
            db["curated_entries"].insert(_entry_row(entry, key), pk="key")
            store.save_tags(db, key, curated_tags(entry), "curated")
            for registry_id in _registry_ids(entry):
                db["registry_ids"].upsert(
                    {"paper_id": key, "registry_id": registry_id, "registry": _registry_name(registry_id),
                     "origin": "curated"},
                    pk=("paper_id", "registry_id"),
                )
        db["sources"].insert_all(
            [
                {"key": entry["key"], "url": s["url"], "checked": str(s.get("checked") or ""),
                 "facts": s.get("facts"), "kind": s["kind"], "position": position}
                for position, s in enumerate(ordered(entry.get("sources") or []), 1)
            ],
            pk=("key", "url"),
            replace=True,
        )
        for link in entry.get("related") or []:
            _save_link(db, entry_key(entry), link["relation"], entry_key(by_key[link["key"]]))
        for included in entry.get("includes") or []:
            _save_link(db, entry_key(by_key[included]), "included_in", entry_key(entry))


def _save_link(db, from_key, relation, to_key):
    db["links"].upsert(
        {"from_key": from_key, "relation": relation, "to_key": to_key, "origin": "curated"},
        pk=("from_key", "relation", "to_key"),
    )


def _delete_paper(db, key):
    for table in store.CHILD_TABLES + ["tags", "tag_state", "registry_ids"]:
        db.execute(f"delete from {table} where paper_id = ?", [key])
    db.execute("delete from papers where paper_id = ?", [key])


def _paper_record(entry):
    """A curated publication in the parsed-record shape `store.save_paper` takes."""
    return {
        "paper_id": paper_key(entry),
        "pmid": str(entry["pmid"]) if entry.get("pmid") else None,
        "doi": str(entry["doi"]).lower() if entry.get("doi") else None,
        "pmcid": entry.get("pmcid"),
        "title": entry.get("title"),
        "title_html": safe_html(entry["title"]) if entry.get("title") else None,
        "abstract": None,
        "journal": entry.get("journal"),
        "journal_iso": entry.get("journal"),
        "volume": _text(entry.get("volume")),
        "issue": _text(entry.get("issue")),
        "pages": _text(entry.get("pages")),
        "year": entry.get("year"),
        "authors": [
            {"position": i, **_split_author(name)} for i, name in enumerate(entry.get("authors") or [], 1)
        ],
        "publication_types": [],
        "mesh": [],
    }


def _split_author(name):
    """'Younger J' -> last name and initials; a group name stays whole."""
    parts = str(name).rsplit(" ", 1)
    if len(parts) == 2 and parts[1].isupper() and len(parts[1]) <= 4:
        return {"last_name": parts[0], "initials": parts[1]}
    return {"collective_name": str(name)}


def _text(value):
    return None if value is None else str(value)


def _entry_row(entry, key):
    dose = entry.get("dose") or {}
    return {
        "key": entry["key"], "paper_id": key, "type": entry["type"],
        "doi": str(entry["doi"]).lower() if entry.get("doi") else None,
        "pmcid": entry.get("pmcid"), "title": entry.get("title"),
        "authors": ", ".join(entry.get("authors") or []) or None, "year": entry.get("year"),
        "journal": entry.get("journal"), "volume": _text(entry.get("volume")),
        "issue": _text(entry.get("issue")), "pages": _text(entry.get("pages")),
        "design": json.dumps(entry.get("design") or []), "population": entry.get("population"),
        "n_randomized": entry.get("n_randomized"), "n_enrolled": entry.get("n_enrolled"),
        "n_analysed": entry.get("n_analysed"), "dose_text": dose.get("text"),
        "dose_min_mg_per_day": dose.get("min_mg_per_day"),
        "dose_max_mg_per_day": dose.get("max_mg_per_day"), "dose_regimen": dose.get("regimen"),
        "duration_weeks": entry.get("duration_weeks"), "comparator": entry.get("comparator"),
        "primary_outcome": entry.get("primary_outcome"),
        "outcomes": json.dumps(entry.get("outcomes") or []),
        "adverse_events": json.dumps(entry.get("adverse_events") or []),
        "result": entry.get("result"), "result_direction": entry.get("result_direction"),
        "registry_ids": json.dumps(_registry_ids(entry)), "note": entry.get("note"),
        "checked": latest_check(entry),
    }


def _trial_row(entry):
    dose = entry.get("dose") or {}
    return {
        "registry_id": str(entry["registry_id"]), "key": entry["key"],
        "registry": entry.get("registry") or _registry_name(entry["registry_id"]),
        "other_ids": json.dumps(entry.get("other_ids") or []), "title": entry.get("title"),
        "acronym": entry.get("acronym"), "status": entry.get("status"),
        "sponsor": entry.get("sponsor"), "country": entry.get("country"),
        "start_year": entry.get("start_year"), "completion_year": entry.get("completion_year"),
        "n_planned": entry.get("n_planned"), "n_enrolled": entry.get("n_enrolled"),
        "design": json.dumps(entry.get("design") or []), "dose_text": dose.get("text"),
        "dose_min_mg_per_day": dose.get("min_mg_per_day"),
        "dose_max_mg_per_day": dose.get("max_mg_per_day"), "dose_regimen": dose.get("regimen"),
        "duration_weeks": entry.get("duration_weeks"), "comparator": entry.get("comparator"),
        "population": entry.get("population"), "primary_outcome": entry.get("primary_outcome"),
        "published": None if entry.get("published") is None else int(bool(entry["published"])),
        "note": entry.get("note"), "checked": latest_check(entry),
    }


def latest_check(entry):
    dates = [str(s.get("checked")) for s in entry.get("sources") or [] if s.get("checked")]
    return max(dates) if dates else None


def _registry_name(registry_id):
    registry_id = str(registry_id)
    for prefix, name in (("NCT", "ClinicalTrials.gov"), ("ACTRN", "ANZCTR"), ("ISRCTN", "ISRCTN"),
                         ("DRKS", "DRKS"), ("ChiCTR", "ChiCTR"), ("IRCT", "IRCT"), ("CTRI", "CTRI"),
                         ("RBR-", "ReBEC")):
        if registry_id.startswith(prefix):
            return name
    return "EU CTR" if re.match(r"^\d{4}-\d{6}-\d{2}", registry_id) else None


def curated_tags(entry):
    """The curated facts of a publication as tags (source 'curated'), in the tagger's kinds."""
    from .tag import dose_band

    tags = [{"kind": "design", "value": v} for v in entry.get("design") or []]
    tags += [{"kind": "outcome", "value": v} for v in entry.get("outcomes") or []]
    tags += [{"kind": "adverse_event", "value": v} for v in entry.get("adverse_events") or []]
    dose = entry.get("dose") or {}
    if dose.get("text") or dose.get("max_mg_per_day") is not None:
        top = dose.get("max_mg_per_day")
        tags.append({
            "kind": "dose", "value": dose.get("text") or f"{top} mg/day",
            "detail": {"min_mg_per_day": dose.get("min_mg_per_day"), "max_mg_per_day": top,
                       "regimen": dose.get("regimen"),
                       "band": dose_band(top) if top is not None else None},
        })
    counts = {k: entry.get(f"n_{k}") for k in ("randomized", "enrolled", "analysed")}
    size = counts["randomized"] or counts["enrolled"]
    if size:
        tags.append({"kind": "sample_size", "value": str(size),
                     "detail": {k: v for k, v in counts.items() if v is not None}})
    if entry.get("duration_weeks") is not None:
        tags.append({"kind": "duration", "value": _number(entry["duration_weeks"]),
                     "detail": {"weeks": entry["duration_weeks"]}})
    if entry.get("comparator"):
        tags.append({"kind": "comparator", "value": entry["comparator"]})
    tags += [{"kind": "registry_id", "value": r} for r in _registry_ids(entry)]
    for tag in tags:
        tag.setdefault("evidence", None)
        tag["section"] = "curated"
    return tags


def _number(value):
    return str(int(value)) if float(value).is_integer() else str(value)


def summary_sections(db, key):
    """For a paper with no abstract, our own-words curated summary is what the tagger reads."""
    row = db.execute(
        "select primary_outcome, result from curated_entries where paper_id = ?", [key]
    ).fetchone()
    if not row:
        return []
    text = " ".join(part.strip() for part in row if part)
    return [{"label": "Curated summary", "text": text}] if text else []


# ---- Registry facts (README "Fields of a registered trial") and published primary outcomes,
# compared by the registration_vs_publication view.

DATE_TYPES = {"actual", "anticipated"}
REGISTRY_DATE = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")
REGISTRY_DATE_FIELDS = ("primary_completion_date", "completion_date")


def registry_fact_problems(entries, vocabulary):
    """Problems in the registry facts of trials and the primary_outcome_values of any entry."""
    problems = []
    for entry in entries:
        where = f"{entry.get('_file')}: {entry.get('key')}"
        for name in REGISTRY_DATE_FIELDS:
            if entry.get(name) is not None and not REGISTRY_DATE.match(str(entry[name])):
                problems.append(f"{where}: {name} must be YYYY-MM or YYYY-MM-DD, not {entry[name]!r}")
        for name in ("completion_date_type", "enrollment_type"):
            if entry.get(name) is not None and entry[name] not in DATE_TYPES:
                problems.append(f"{where}: {name} must be actual or anticipated, not {entry[name]!r}")
        if entry.get("results_posted") is not None and not isinstance(entry["results_posted"], bool):
            problems.append(f"{where}: results_posted must be true or false")
        for value in entry.get("primary_outcome_values") or []:
            if value not in vocabulary["outcome"]:
                problems.append(f"{where}: unknown primary_outcome_values value {value!r}")
    return problems


def save_registry_facts(db, entries):
    """Replace the curated registry facts of trials and the published primary outcomes."""
    with db.conn:
        db.execute("delete from registry_facts")
        db.execute("delete from published_outcomes")
    db["registry_facts"].insert_all([
        {
            "registry_id": str(e["registry_id"]),
            **{name: _text(e.get(name)) for name in (
                *REGISTRY_DATE_FIELDS, "completion_date_type", "enrollment_type", "why_stopped")},
            "primary_outcome_values": json.dumps(e["primary_outcome_values"])
            if e.get("primary_outcome_values") else None,
            "results_posted": None if e.get("results_posted") is None else int(e["results_posted"]),
        }
        for e in entries if e["type"] == "trial"
    ], pk="registry_id")
    db["published_outcomes"].insert_all([
        {"paper_id": paper_key(e), "key": e["key"],
         "primary_outcome_values": json.dumps(e["primary_outcome_values"]), "source": "curated"}
        for e in entries if e["type"] == "publication" and e.get("primary_outcome_values")
    ], pk="paper_id")
