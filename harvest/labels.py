"""Words people read for the vocabulary values stored in kb.db.

The data and the JSON keep the values (`placebo_controlled`, `favours_ldn`); pages show these
labels (plugins/markup.py), and SQL users join the `labels` view (vocabulary, value, label),
made from this one mapping.
"""

from .source_kinds import KINDS as SOURCE_KINDS

# What a publication is, first match wins: a protocol or a secondary analysis of an RCT is not
# "an RCT" (that means a trial with results), nor is a letter about one, nor a notice.
# (role, designs, PubMed publication types, title patterns: SQL LIKE on the lower-case title).
# A curated design decides alone; for a paper no curator has checked, its design tags, its
# publication types and its title each can, so a harvested protocol never counts as results.
PUBLICATION_ROLES = [
    ("erratum", ("erratum",),
     ("Published Erratum", "Retraction of Publication", "Expression of Concern"),
     ("erratum%", "%erratum:%", "corrigendum%", "correction to %", "correction:%", "retraction note%",
      "notice of retraction%", "retraction:%", "expression of concern%")),
    ("letter", ("letter",), ("Letter", "Comment", "Editorial"),
     ("comment on %", "reply to %", "in reply%", "letter to the editor%")),
    ("protocol", ("protocol",), ("Clinical Trial Protocol",),
     ("%study protocol%", "%trial protocol%", "%protocol for %", "%protocol of %", "%: a protocol%",
      "%: protocol%")),
    ("secondary_analysis", ("secondary_analysis",), (),
     ("%secondary analys%", "%post hoc%", "%post-hoc%", "%exploratory analys%", "%exploratory outcome%",
      "%ancillary stud%", "%sub-analys%", "%subanalys%", "%subgroup analys%")),
    ("meta_analysis", ("meta_analysis",), ("Meta-Analysis", "Network Meta-Analysis"),
     ("%meta-analys%", "%meta analys%", "%metaanalys%")),
    ("review", ("systematic_review", "narrative_review"), ("Systematic Review", "Review", "Scoping Review"),
     ("%systematic review%", "%scoping review%", "%narrative review%", "%literature review%",
      "%umbrella review%", "%: a review%", "a review of %")),
    ("preclinical", ("preclinical",), (), ()),
]
RESULTS_ROLE = "results"  # any other tagged design: the paper reports a study's results
UNKNOWN_ROLE = "unknown"  # no design known

LABELS = {
    "design": {
        "rct": "randomised controlled trial", "crossover": "crossover", "parallel": "parallel groups",
        "placebo_controlled": "placebo-controlled", "double_blind": "double-blind",
        "single_blind": "single-blind", "open_label": "open-label", "nonrandomized": "non-randomised",
        "single_arm": "single-arm", "pilot": "pilot", "dose_finding": "dose-finding",
        "observational": "observational", "retrospective": "retrospective", "case_report": "case report",
        "case_series": "case series", "survey": "survey", "systematic_review": "systematic review",
        "meta_analysis": "meta-analysis", "narrative_review": "narrative review", "protocol": "protocol",
        "secondary_analysis": "secondary analysis", "preclinical": "preclinical", "letter": "letter",
        "erratum": "erratum",
    },
    "outcome": {
        "pain_intensity": "pain intensity", "fiq": "FIQ (fibromyalgia impact)", "pain_threshold": "pain threshold",
        "conditioned_pain_modulation": "conditioned pain modulation", "temporal_summation": "temporal summation",
        "fatigue": "fatigue", "sleep": "sleep", "mood": "mood", "quality_of_life": "quality of life",
        "global_impression": "global impression of change", "satisfaction_with_life": "satisfaction with life",
        "cognition": "cognition", "physical_function": "physical function",
        "inflammatory_markers": "inflammatory markers", "adverse_events": "adverse events",
        "pain_responders": "pain responders", "adverse_event_withdrawals": "withdrawals due to adverse events",
        "serious_adverse_events": "serious adverse events", "named_adverse_event": "a named adverse event",
    },
    "direction": {
        "favours_ldn": "favours LDN", "no_difference": "no difference",
        "favours_comparator": "favours comparator", "mixed": "mixed", "not_applicable": "not applicable",
    },
    "comparator": {"placebo": "placebo", "active": "active treatment", "none": "no comparator"},
    "dose_band": {
        "ultra_low": "ultra-low (< 0.1 mg)", "very_low": "very low (0.1-1 mg)", "low": "low (1-10 mg)",
        "intermediate": "intermediate (10-25 mg)", "standard": "standard (25 mg and up)",
    },
    "regimen": {"fixed": "fixed", "titrated": "titrated", "individualised": "individualised"},
    "publication_role": {
        "results": "study results", "protocol": "protocol", "secondary_analysis": "secondary analysis",
        "meta_analysis": "meta-analysis", "review": "review", "preclinical": "preclinical study",
        "letter": "letter or comment", "erratum": "erratum or retraction notice", "unknown": "not known",
    },
    "tag_kind": {
        "design": "design", "dose": "dose", "outcome": "outcome", "adverse_event": "adverse event",
        "sample_size": "sample size", "duration": "duration (weeks)", "comparator": "comparator",
        "population": "population", "registry_id": "registry id",
    },
    "source_kind": SOURCE_KINDS,
    "measure": {
        "md": "mean difference", "smd": "standardised mean difference",
        "median_difference": "median difference", "percent_change_difference": "difference in % change",
        "rr": "risk ratio", "or": "odds ratio", "rd": "risk difference", "irr": "incidence rate ratio",
        "responders": "proportions of patients",
    },
    "analysis_population": {
        "itt": "intention to treat", "per_protocol": "per protocol", "complete_case": "complete cases",
    },
    "favours": {"ldn": "favours LDN", "comparator": "favours comparator", "neither": "no clear difference"},
    "rob_domain": {
        "randomisation": "randomisation process", "deviations": "deviations from intended interventions",
        "missing_data": "missing outcome data", "measurement": "measurement of the outcome",
        "reporting": "selection of the reported result", "overall": "overall",
    },
    "rob_judgement": {"low": "low risk", "some_concerns": "some concerns", "high": "high risk",
                      "not assessed": "not assessed"},
    "search_route": {
        "harvest": "PubMed harvest", "registry": "trial registry records", "crossref": "Crossref notices",
        "citation_chasing": "citation chasing", "curation": "hand curation (searches not logged)",
        "sweep": "systematic sweep of stored public copies",
    },
    "certainty_domain": {
        "risk_of_bias": "risk of bias", "inconsistency": "inconsistency", "indirectness": "indirectness",
        "imprecision": "imprecision", "publication_bias": "publication bias", "overall": "overall",
    },
}

# Which vocabulary a column's values come from, wherever the column appears...
COLUMN_VOCABULARIES = {
    "design": "design", "outcome": "outcome", "outcomes": "outcome", "result_direction": "direction",
    "direction": "direction", "comparator": "comparator", "dose_band": "dose_band", "band": "dose_band", "regimen": "regimen",
    "dose_regimen": "regimen", "publication_role": "publication_role", "measure": "measure",
    "favours": "favours",
}
# ...and in particular tables, where a column name means something else elsewhere.
TABLE_COLUMN_VOCABULARIES = {
    ("sources", "kind"): "source_kind", ("tags", "kind"): "tag_kind", ("effective_tags", "kind"): "tag_kind",
    ("effects", "population"): "analysis_population", ("risk_of_bias", "domain"): "rob_domain",
    ("risk_of_bias", "judgement"): "rob_judgement", ("certainty", "domain"): "certainty_domain",
    ("searches", "route"): "search_route", ("screening", "source"): "search_route",
}


# A tag's value is in the vocabulary of its kind (for the kinds that have one).
TAG_KIND_VOCABULARIES = {"design": "design", "outcome": "outcome", "comparator": "comparator"}
TAG_TABLES = {"tags", "effective_tags", "tag_disagreements"}


def vocabulary_of(column, table=None):
    return TABLE_COLUMN_VOCABULARIES.get((table, column)) or COLUMN_VOCABULARIES.get(column)


def tag_value_label(value, kind):
    """A tag's value in words when its kind has a vocabulary (design, outcome, comparator)."""
    vocabulary = TAG_KIND_VOCABULARIES.get(kind)
    return label(vocabulary, value) if vocabulary else value


def label(vocabulary, value):
    """The words for a value; a value with no label shows as itself, underscores as spaces."""
    return LABELS.get(vocabulary, {}).get(value) or str(value).replace("_", " ")


def labels_rows():
    return [(vocabulary, value, text) for vocabulary, values in LABELS.items() for value, text in values.items()]
