"""A small, representative kb.db for the publishing tests, and the Datasette that serves it.

Papers go in through harvest.store (save_paper, save_tags) like the harvest does; curated
evidence, trials, links and sources are inserted directly, in the shapes harvest/curate.py
stores, so these tests depend on no curated YAML.
The records are invented (PMIDs 9900000x) but shaped like real PubMed records, and cover
what the publishing layer shows: inline markup, a hostile title, an erratum pair, a
curated-only paper keyed by DOI, a trial with protocol and results papers, a review.
"""

from pathlib import Path

import yaml

from harvest import search, site
from harvest.store import open_db, save_paper, save_tags

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = site.settings()  # what `make serve` uses

# A query that never ends on its own: the SQL time limit must stop it.
RUNAWAY_SQL = "with recursive r(i) as (select 1 union all select i+1 from r) select count(*) from r"

RCT, ERRATUM, REVIEW, PROTOCOL, HOSTILE, OLD = (
    "99000001", "99000002", "99000003", "99000004", "99000005", "99000006",
)
CURATED_ONLY = "doi:10.3390/biomed99.1087"
NO_IDENTIFIER = "curated:early-2019-congress"  # curated, with neither PMID nor DOI
TRIAL = "NCT09990001"
LAST_RUN_STARTED = "2026-11-20T08:00:00Z"


def record(pmid, title, authors, year, journal, **extra):
    sections = extra.get("abstract_sections", [])
    return {
        "abstract": "\n".join(f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections) or None,
        "pmid": pmid,
        "title": title.replace("<i>", "").replace("</i>", ""),
        "title_html": title,
        "journal": journal,
        "journal_iso": journal,
        "year": year,
        "pub_date": str(year),
        "language": "eng",
        "authors": [
            {"position": i, "last_name": name.split()[0], "initials": name.split()[1]}
            for i, name in enumerate(authors, 1)
        ],
        **extra,
    }


def section(label, text):
    return {"label": label, "nlm_category": label.upper(), "text": text.replace("<sup>", "^").replace("</sup>", ""), "html": text}


PAPERS = [
    record(
        RCT, "Low-dose naltrexone for <i>fibromyalgia</i>: a randomized crossover trial",
        ["Younger J", "Noor N", "McCue R", "Mackey S"], 2013, "Arthritis Rheum",
        doi="10.1002/art.99001", pmcid="PMC9900001", volume="65", issue="2", pages="529-38",
        abstract_sections=[
            section("Objective", "To test whether low-dose naltrexone reduces fibromyalgia pain."),
            section("Methods", "Thirty-one women took 4.5 mg/day naltrexone or placebo; pain fell by 10<sup>2</sup> points."),
            section("Results", "Pain was reduced by 28.8% on LDN versus 18.0% on placebo (P = 0.016)."),
        ],
        registry_ids=[{"registry": "ClinicalTrials.gov", "accession": "NCT00568555"}],
        comments_corrections=[{"ref_type": "ErratumIn", "ref_pmid": ERRATUM, "ref_source": "Arthritis Rheum. 2013;65(6):1500"}],
        publication_types=[{"name": "Randomized Controlled Trial", "ui": "D016449"}],
    ),
    record(
        ERRATUM, "Erratum: Low-dose naltrexone for fibromyalgia", [], 2013, "Arthritis Rheum",
        volume="65", issue="6", pages="1500",
        comments_corrections=[{"ref_type": "ErratumFor", "ref_pmid": RCT, "ref_source": "Arthritis Rheum. 2013;65(2):529-38"}],
    ),
    record(
        REVIEW, "Naltrexone at low doses for chronic pain: a systematic review",
        ["Kim PS", "Fishman MA"], 2020, "Curr Pain Headache Rep", doi="10.1007/s11916-099-0003",
        abstract_sections=[section("", "A review of low-dose naltrexone trials in chronic pain.")],
    ),
    record(
        PROTOCOL, "Study protocol for a randomised placebo-controlled trial of low-dose naltrexone in fibromyalgia",
        ["Colomer-Carbonell A", "Luciano JV"], 2022, "BMJ Open", doi="10.1136/bmjopen-2099-0004",
        abstract_sections=[section("Introduction", "We describe a 12-week trial of 4.5 mg naltrexone.")],
    ),
    record(
        HOSTILE, "A title with <script>alert('x')</script> <sup>markup</sup>",
        ["Test A"], 2021, "J Test", abstract_sections=[section("", "Abstract <script>alert(1)</script> text.")],
    ),
    record(OLD, "Opioid antagonists in fibromyalgia: an early case report", ["Early B"], 2005, "Pain Med"),
]

AUTO_TAGS = {
    RCT: [
        {"kind": "design", "value": "rct", "evidence": "a randomized crossover trial", "section": "title"},
        {"kind": "design", "value": "crossover", "evidence": "a randomized crossover trial", "section": "title"},
        {"kind": "dose", "value": "4.5 mg/day", "section": "Methods",
         "detail": {"min_mg_per_day": 4.5, "max_mg_per_day": 4.5, "regimen": "fixed", "band": "low"},
         "evidence": "Thirty-one women took 4.5 mg/day naltrexone or placebo"},
        {"kind": "outcome", "value": "pain_intensity", "section": "Results", "detail": {"direction": "improved"},
         "evidence": "Pain was reduced by 28.8% on LDN"},
        {"kind": "sample_size", "value": "31", "section": "Methods", "evidence": "Thirty-one women"},
    ],
    REVIEW: [{"kind": "design", "value": "systematic_review", "evidence": "a systematic review", "section": "title"}],
    PROTOCOL: [
        {"kind": "design", "value": "protocol", "evidence": "Study protocol", "section": "title"},
        {"kind": "dose", "value": "4.5 mg", "detail": {"min_mg_per_day": 4.5, "max_mg_per_day": 4.5, "band": "low"},
         "evidence": "4.5 mg naltrexone", "section": "Introduction"},
    ],
    OLD: [
        {"kind": "design", "value": "case_report", "evidence": "an early case report", "section": "title"},
        {"kind": "adverse_event", "value": "Vivid dreams", "evidence": "vivid dreams were reported", "section": "abstract"},
        {"kind": "duration", "value": "6", "detail": {"as_written": "six weeks", "weeks": 6.0},
         "evidence": "treated for six weeks", "section": "abstract"},
    ],
}

# Curated facts as tags, as harvest/curate.py writes them (section 'curated', no evidence).
# The curator agrees with the tagger on rct, crossover, the dose, n and pain, and adds more.
CURATED_TAGS = {
    RCT: [
        *({"kind": "design", "value": v} for v in ("rct", "crossover", "double_blind", "placebo_controlled")),
        *({"kind": "outcome", "value": v} for v in ("pain_intensity", "satisfaction_with_life", "mood")),
        *({"kind": "adverse_event", "value": v} for v in ("vivid dreams", "headache")),
        {"kind": "dose", "value": "4.5 mg/day",
         "detail": {"min_mg_per_day": 4.5, "max_mg_per_day": 4.5, "regimen": "fixed", "band": "low"}},
        {"kind": "sample_size", "value": "31", "detail": {"randomized": 31, "analysed": 28}},
        {"kind": "duration", "value": "12", "detail": {"weeks": 12}},
        {"kind": "comparator", "value": "placebo"},
        {"kind": "registry_id", "value": "NCT00568555"},
    ],
    CURATED_ONLY: [
        {"kind": "design", "value": "observational"},
        {"kind": "design", "value": "retrospective"},
        {"kind": "outcome", "value": "pain_intensity"},
        {"kind": "dose", "value": "0.5-4.5 mg/day",
         "detail": {"min_mg_per_day": 0.5, "max_mg_per_day": 4.5, "regimen": "titrated", "band": "low"}},
        {"kind": "sample_size", "value": "436", "detail": {"enrolled": 436}},
        {"kind": "comparator", "value": "none"},
    ],
}

CURATED_ENTRIES = [
    {
        "key": "younger-2013-crossover", "paper_id": RCT, "type": "publication", "doi": "10.1002/art.99001",
        # A conflict with PubMed on purpose: the curated year says 2012.
        "title": "Low-dose naltrexone for fibromyalgia: a randomized crossover trial",
        "authors": "Younger J, Noor N, McCue R, Mackey S", "year": 2012, "journal": "Arthritis Rheum",
        "volume": "65", "issue": "2", "pages": "529-38",
        "design": ["rct", "crossover", "double_blind", "placebo_controlled"],
        "population": "women with fibromyalgia", "n_randomized": 31, "n_analysed": 28,
        "dose_text": "4.5 mg/day", "dose_min_mg_per_day": 4.5, "dose_max_mg_per_day": 4.5,
        "dose_regimen": "fixed", "duration_weeks": 12, "comparator": "placebo",
        "primary_outcome": "daily pain intensity (0-100 scale)",
        "outcomes": ["pain_intensity", "satisfaction_with_life", "mood"],
        "adverse_events": ["vivid dreams", "headache"],
        "result": "Pain fell 28.8% on LDN vs 18.0% on placebo.", "result_direction": "favours_ldn",
        "registry_ids": ["NCT00568555"], "checked": "2026-11-25",
    },
    {
        "key": "driver-2099-retrospective", "paper_id": CURATED_ONLY, "type": "publication",
        "doi": "10.3390/biomed99.1087",
        "title": "Efficacy of low-dose naltrexone in chronic pain: a retrospective analysis",
        "authors": "Driver CN, D'Souza RS", "year": 2023, "journal": "Biomedicines",
        "volume": "11", "issue": "4", "pages": "1087",
        "design": ["observational", "retrospective"], "population": "adults with fibromyalgia",
        "n_enrolled": 436, "dose_text": "0.5-4.5 mg/day", "dose_min_mg_per_day": 0.5,
        "dose_max_mg_per_day": 4.5, "dose_regimen": "titrated", "comparator": "none",
        # an unfilled list is stored as [] (as harvest/curate.py does): the tags fill in
        "outcomes": [], "result": "Most patients reported less pain.",
        "result_direction": "favours_ldn", "checked": "2026-11-25",
    },
    {
        "key": "test-2021-hostile", "paper_id": HOSTILE, "type": "publication", "design": [], "outcomes": [],
        "note": "Kept to check that <b>notes</b> are shown as text.", "checked": "2026-11-25",
    },
]

TRIALS = [
    {
        "registry_id": TRIAL, "key": "innova-trial", "registry": "ClinicalTrials.gov",
        "title": "Low-dose naltrexone in fibromyalgia (INNOVA)", "acronym": "INNOVA",
        "status": "completed", "country": "Spain", "start_year": 2022, "completion_year": 2025,
        "n_planned": 70, "design": "rct", "dose_text": "4.5 mg/day", "comparator": "placebo",
        "published": 1, "checked": "2026-11-25",
    },
    {
        "registry_id": "NCT00568555", "key": "stanford-ldn-trial", "registry": "ClinicalTrials.gov",
        "title": "Low-dose naltrexone for fibromyalgia (crossover)", "status": "completed",
        "country": "United States", "start_year": 2007, "n_enrolled": 31, "published": 1,
        "checked": "2026-11-25",
    },
]

LINKS = [
    {"from_key": ERRATUM, "relation": "correction_of", "to_key": RCT, "origin": "curated"},
    {"from_key": RCT, "relation": "included_in", "to_key": REVIEW, "origin": "curated"},
    {"from_key": PROTOCOL, "relation": "protocol_of", "to_key": TRIAL, "origin": "curated"},
    {"from_key": RCT, "relation": "reports_trial", "to_key": "NCT00568555", "origin": "curated"},
    # stands in for a letter that re-analyses a meta-analysis
    {"from_key": HOSTILE, "relation": "reanalysis_of", "to_key": REVIEW, "origin": "curated"},
]


def curated_record(key, title, authors, year, journal, **extra):
    """A paper PubMed does not hold, as the curation loader stores it: keyed, with no PMID."""
    return {**record(None, title, authors, year, journal, **extra), "paper_id": key}


def curated_only_record():
    """The citation the curation loader would store for a paper PubMed does not hold."""
    entry = CURATED_ENTRIES[1]
    return curated_record(
        CURATED_ONLY, entry["title"], entry["authors"].split(", "), entry["year"], entry["journal"],
        **{field: entry[field] for field in ("doi", "volume", "issue", "pages")},
    )


def build(path):
    """Write the test kb.db at `path` and return it as a sqlite_utils Database."""
    db = open_db(str(path))
    for paper in PAPERS:
        save_paper(db, paper)
    save_paper(db, curated_only_record(), source="curated")
    save_paper(
        db, curated_record(NO_IDENTIFIER, "Opioid blockade in fibromyalgia: a congress abstract", ["Early B"], 2019,
                           "Ann Rheum Dis"),
        source="curated",
    )
    # The hostile title as if it had slipped past parse-time sanitising: rendering must
    # still make it inert.
    db.execute(
        "update papers set title_html = ? where paper_id = ?",
        ["A title with <script>alert('x')</script> <sup>markup</sup>", HOSTILE],
    )
    db.execute("update abstract_sections set html = text || ' <script>alert(1)</script>' where paper_id = ?", [HOSTILE])
    db.execute("update papers set first_seen = '2026-01-05T10:00:00Z' where paper_id = ?", [OLD])
    db["harvest_runs"].insert(
        {"id": 1, "started_at": LAST_RUN_STARTED, "ended_at": "2026-11-20T08:05:00Z", "mode": "full",
         "dois_asked": 7, "found": 6, "unresolved": 1, "new_papers": 6, "status": "ok"},
        pk="id",
    )
    for key, tags in AUTO_TAGS.items():
        save_tags(db, key, tags, "auto", tagger_version="test")
    for key, tags in CURATED_TAGS.items():
        save_tags(db, key, [{**tag, "section": "curated"} for tag in tags], "curated")
    db["curated_entries"].insert_all(CURATED_ENTRIES, pk="key")
    db["trials"].insert_all(TRIALS, pk="registry_id")
    db["links"].insert_all(LINKS, pk=("from_key", "relation", "to_key"))
    db["sources"].insert_all(
        [
            {"key": "younger-2013-crossover", "url": "https://pubmed.ncbi.nlm.nih.gov/99000001/",
             "checked": "2026-11-25", "facts": "title; authors; dose; n", "kind": "pubmed", "position": 1},
            # a hostile source address must not become a link
            {"key": "test-2021-hostile", "url": "javascript:alert(2)", "checked": "2026-11-25",
             "facts": "nothing", "kind": "secondary", "position": 1},
        ],
        pk=("key", "url"),
    )
    search.refresh(db)
    db["unresolved_dois"].insert(
        {"doi": "10.9999/not-in-pubmed", "input": "doi:10.9999/NOT-in-PubMed", "line": 12,
         "reason": "no PubMed record", "first_seen": "2026-11-20T08:01:00Z"},
        pk="doi",
    )
    return db


def metadata():
    return yaml.safe_load((ROOT / "metadata.yml").read_text())


def plugin(name):
    """A module of plugins/, loaded by path as Datasette loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_datasette(path):
    """The Datasette `kb serve` runs in each worker, as an in-process object."""
    return site.datasette(path)


def serve_command(path, inspect_file, port):
    """The Makefile's serve command against `path`."""
    return site.serve_command(path, inspect_file, port=port)


def write_inspect_file(path, inspect_file):
    site.write_inspect_file(path, inspect_file)
