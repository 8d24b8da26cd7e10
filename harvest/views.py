"""SQL views over kb.db: the stable query surface that canned queries and users select from.

VIEWS maps a view name to (tables it needs, SELECT statement). `store.ensure_db_shape`
creates each view only where its tables exist, and replaces it when its SQL changes.

Conventions the views rely on:
- list-valued curated fields (design, outcomes, adverse_events, registry_ids) are JSON
  arrays; curated authors are one "Younger J, Mackey S" string, as in papers;
- a paper key is a PMID (digits only), doi:<doi>, or curated:<entry key>;
- for each paper and tag kind, curated tags replace auto tags (`effective_tags`), and a
  curated_entries field beats any tag;
- list-valued output columns are JSON arrays, so Datasette can facet on them.
"""

from .relations import CURATED_RELATIONS, PUBMED_RELATIONS

# Designs that make a paper a report of a clinical study (the evidence table's rows);
# reviews, protocols, letters, errata and animal work are evidence about studies, not studies.
NON_CLINICAL_DESIGNS = (
    "systematic_review", "meta_analysis", "narrative_review", "protocol", "preclinical",
    "letter", "erratum",
)

# Headline study type for charts and facets, first match wins: a paper tagged both
# rct and secondary_analysis counts once, as the stronger design it reports on.
STUDY_TYPES = [
    ("meta-analysis", ("meta_analysis",)),
    ("systematic review", ("systematic_review",)),
    ("randomised trial", ("rct",)),
    ("secondary analysis", ("secondary_analysis",)),
    ("non-randomised trial", ("nonrandomized", "single_arm", "pilot", "dose_finding", "open_label")),
    ("observational study", ("observational", "retrospective", "survey")),
    ("case report or series", ("case_report", "case_series")),
    ("protocol", ("protocol",)),
    ("preclinical", ("preclinical",)),
    ("narrative review", ("narrative_review",)),
    ("letter or erratum", ("letter", "erratum")),
]

# Relation codes (both vocabularies) that belong in the corrections-and-comments listing.
CORRECTION_AND_COMMENT_CODES = (
    "correction_of", "comment_on", "reply_to",
    "ErratumIn", "ErratumFor", "RetractionIn", "RetractionOf", "PartialRetractionIn",
    "PartialRetractionOf", "ExpressionOfConcernIn", "ExpressionOfConcernFor", "CommentIn",
    "CommentOn", "CorrectedandRepublishedIn", "CorrectedandRepublishedFrom",
)

# Curated citation field -> (curated expression, PubMed expression); compared after
# normalising case, surrounding space and a trailing full stop, which PubMed adds to titles.
CONFLICT_FIELDS = {
    "title": ("c.title", "p.title"),
    "year": ("c.year", "p.year"),
    "journal": ("c.journal", "p.journal_iso"),
    "volume": ("c.volume", "p.volume"),
    "issue": ("c.issue", "p.issue"),
    "pages": ("c.pages", "p.pages"),
    "doi": ("c.doi", "p.doi"),
    "first_author": (
        "case when instr(c.authors, ', ') > 0 then substr(c.authors, 1, instr(c.authors, ', ') - 1) else c.authors end",
        "p.first_author",
    ),
}


def quoted(values):
    return ", ".join(f"'{v}'" for v in values)


def values_table(rows):
    """A VALUES list (SQLite names its columns column1, column2...)."""
    return "values " + ", ".join("(" + quoted(row) + ")" for row in rows)


def registry_url(column):
    """Public page of a trial registration, by the shape of its id."""
    return f"""case
        when {column} like 'NCT%' then 'https://clinicaltrials.gov/study/' || {column}
        when {column} like 'ISRCTN%' then 'https://www.isrctn.com/' || {column}
        when {column} like 'ACTRN%' then 'https://www.anzctr.org.au/TrialSearch.aspx?searchTxt=' || {column}
        when {column} glob '[12][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9][0-9][0-9]-[0-9][0-9]'
            then 'https://www.clinicaltrialsregister.eu/ctr-search/search?query=' || {column}
    end"""


def normalised(expression):
    return f"rtrim(lower(trim(cast({expression} as text))), '.')"


# Per paper and kind: curated tags when the paper has any of that kind, otherwise auto tags.
EFFECTIVE_TAGS = """
select t.pmid, t.kind, t.value, t.detail, t.evidence, t.section, t.source
from tags t
where t.source = 'curated'
   or not exists (
       select 1 from tags c
       where c.pmid = t.pmid and c.kind = t.kind and c.source = 'curated'
   )
"""

PAPER_URLS = """
select
    pmid,
    case when pmid not glob '*[^0-9]*' then 'https://pubmed.ncbi.nlm.nih.gov/' || pmid || '/' end as pubmed_url,
    case when doi is not null then 'https://doi.org/' || doi end as doi_url,
    case when pmcid is not null then 'https://pmc.ncbi.nlm.nih.gov/articles/' || pmcid || '/' end as pmc_url
from papers
"""

# Every trial registration a paper names: in its PubMed record, its curated entry, or a
# curated link to a registered trial.
PAPER_REGISTRY_IDS = f"""
select pmid, registry_id, {registry_url('registry_id')} as registry_url
from (
    select pmid, registry_id from registry_ids
    union
    select c.pmid, r.value from curated_entries c, json_each(coalesce(c.registry_ids, '[]')) r
    where c.pmid is not null
    union
    select from_key, to_key from links where relation in ('reports_trial', 'protocol_of')
        and to_key not in (select pmid from papers)
)
"""


def curated_field(column):
    """A paper's curated publication field, as a scalar subquery: a LEFT JOIN here would hit
    an SQLite 3.40 planner bug that empties Datasette's array facets (json_each over a
    flattened view with an outer join)."""
    return (
        f"(select c.{column} from curated_entries c "
        "where c.pmid = p.pmid and c.type = 'publication')"
    )


def curated_or_tagged(field, kind):
    """A JSON array of values: the curated list when there is one, else the paper's tags of `kind`."""
    return f"""coalesce(
        nullif({curated_field(field)}, '[]'),
        (select json_group_array(distinct value) from effective_tags e
         where e.pmid = p.pmid and e.kind = '{kind}'),
        '[]'
    )"""


# One row per paper with its facet values, as JSON arrays for Datasette's array facets.
PAPER_FACET_VALUES = f"""
select
    p.pmid,
    p.title,
    p.authors,
    p.year,
    coalesce(p.journal_iso, p.journal) as journal,
    p.doi,
    {curated_or_tagged('design', 'design')} as design,
    (select json_group_array(distinct e.detail ->> '$.band') from effective_tags e
     where e.pmid = p.pmid and e.kind = 'dose' and e.detail ->> '$.band' is not null) as dose_band,
    {curated_or_tagged('outcomes', 'outcome')} as outcome,
    {curated_field('result_direction')} as result_direction,
    {curated_field('key')} is not null as curated,
    p.source,
    p.rowid as paper_rowid
from papers p
"""


def study_type(design_array):
    """SQL CASE naming a paper's headline study type from its JSON design array."""
    whens = "\n".join(
        f"        when exists (select 1 from json_each({design_array}) where value in ({quoted(designs)})) then '{label}'"
        for label, designs in STUDY_TYPES
    )
    return f"case\n{whens}\n        else 'other or untagged'\n    end"


# paper_rowid lets the papers_fts index (keyed by papers.rowid) search this view.
PAPER_FACETS = f"""
select
    pmid, title, authors, year, journal, doi, {study_type('design')} as study_type, design,
    dose_band, outcome, result_direction, curated, source, paper_rowid
from ({PAPER_FACET_VALUES})
"""


def tag_text(kind, shown="e.value"):
    """A paper's values of one tag kind as readable text, for papers no curator has checked.

    A curated entry's empty field means "not reported on the pages checked", so it is
    never filled from automatic tags.
    """
    return (
        f"(select group_concat({shown}, '; ') from effective_tags e "
        f"where c.key is null and e.pmid = p.pmid and e.kind = '{kind}')"
    )


EVIDENCE_TABLE = f"""
select
    p.pmid,
    p.citation,
    p.title,
    p.title_html,
    coalesce(p.authors, c.authors) as authors,
    coalesce(p.year, c.year) as year,
    coalesce(p.journal_iso, c.journal, p.journal) as journal,
    coalesce(p.volume, c.volume) as volume,
    coalesce(p.issue, c.issue) as issue,
    coalesce(p.pages, c.pages) as pages,
    coalesce(p.doi, c.doi) as doi,
    f.design,
    c.population,
    coalesce(c.n_randomized, c.n_enrolled, {tag_text('sample_size')}) as n,
    c.n_analysed,
    coalesce(c.dose_text, {tag_text('dose')}) as dose,
    c.dose_min_mg_per_day,
    c.dose_max_mg_per_day,
    c.dose_regimen,
    f.dose_band,
    coalesce(
        case when c.duration_weeks is not null then printf('%g weeks', c.duration_weeks) end,
        {tag_text('duration', "e.value || ' weeks'")}  -- duration tags count weeks
    ) as duration,
    coalesce(
        c.duration_weeks,
        (select max(e.detail ->> '$.weeks') from effective_tags e
         where c.key is null and e.pmid = p.pmid and e.kind = 'duration')
    ) as duration_weeks,
    coalesce(c.comparator, {tag_text('comparator')}) as comparator,
    c.primary_outcome,
    f.outcome as outcomes,
    c.result,
    c.result_direction,
    (select json_group_array(registry_id) from paper_registry_ids r where r.pmid = p.pmid) as registry_ids,
    u.pubmed_url,
    u.doi_url,
    u.pmc_url,
    case when c.key is not null then 'curated' else 'auto tags' end as evidence_from,
    c.checked
from papers p
join paper_facets f on f.pmid = p.pmid
join paper_urls u on u.pmid = p.pmid
left join curated_entries c on c.pmid = p.pmid and c.type = 'publication'
where exists (
    select 1 from json_each(f.design) d
    where d.value not in ({quoted(NON_CLINICAL_DESIGNS)})
)
"""

# Curated dose tags (harvest/curate.py writes one per curated dose, with its band)
# replace the tagger's for the same paper.
DOSES_STUDIED = """
select
    v.pmid, v.citation, v.year, v.design, v.n,
    e.value as dose,
    e.detail ->> '$.min_mg_per_day' as min_mg_per_day,
    e.detail ->> '$.max_mg_per_day' as max_mg_per_day,
    e.detail ->> '$.regimen' as regimen,
    e.detail ->> '$.band' as band,
    e.source,
    e.evidence
from evidence_table v
join effective_tags e on e.pmid = v.pmid and e.kind = 'dose'
"""

OUTCOMES_BY_DESIGN = """
select
    o.value as outcome,
    d.value as design,
    count(*) as papers,
    sum(f.result_direction = 'favours_ldn') as favours_ldn,
    sum(f.result_direction = 'no_difference') as no_difference,
    sum(f.result_direction = 'mixed') as mixed,
    sum(f.result_direction = 'favours_comparator') as favours_comparator,
    json_group_array(f.pmid) as pmids
from paper_facets f, json_each(f.outcome) o, json_each(f.design) d
group by o.value, d.value
"""

ADVERSE_EVENTS_REPORTED = """
select distinct lower(trim(e.value)) as adverse_event, p.pmid, p.citation, f.design, e.source,
       e.evidence
from effective_tags e
join papers p on p.pmid = e.pmid
join paper_facets f on f.pmid = p.pmid
where e.kind = 'adverse_event'
"""

TRIAL_PUBLICATIONS = f"""
with curated as (
    select to_key as registry_id, from_key as pmid,
           case relation when 'protocol_of' then 'protocol' else 'reports the trial' end as role
    from links where relation in ('reports_trial', 'protocol_of')
),
published as (
    -- A curated link says what the paper is to the trial; a registry id in the paper only
    -- says that it names the trial.
    select registry_id, pmid, max(role) as role, group_concat(linked_by, '; ') as linked_by
    from (
        select registry_id, pmid, role, 'curated link' as linked_by from curated
        union
        select registry_id, pmid, null, 'registry id in ' || coalesce(origin, 'record') from registry_ids
    )
    group by registry_id, pmid
)
select
    t.registry_id,
    {registry_url('t.registry_id')} as registry_url,
    t.acronym,
    t.title as trial_title,
    t.status,
    t.country,
    t.start_year,
    t.completion_year,
    t.n_planned,
    t.n_enrolled,
    coalesce(b.role, case when b.pmid is not null then 'names the trial' end) as role,
    b.pmid,
    p.citation,
    p.year,
    b.linked_by
from trials t
left join published b on b.registry_id = t.registry_id
left join papers p on p.pmid = b.pmid
"""

RELATED_PAPERS = f"""
with curated_names(relation, forward, reverse) as (
    {values_table((code, *labels) for code, labels in CURATED_RELATIONS.items())}
),
pubmed_names(ref_type, label, reverse_type) as (
    {values_table((code, *labels) for code, labels in PUBMED_RELATIONS.items())}
),
pairs as (
    select l.from_key as pmid, n.forward as relation, l.relation as relation_code,
           l.to_key as other_key, 'curated' as origin, null as ref_source
    from links l join curated_names n on n.relation = l.relation
    union
    select l.to_key, n.reverse, l.relation, l.from_key, 'curated', null
    from links l join curated_names n on n.relation = l.relation
    union
    select c.pmid, n.label, c.ref_type, c.ref_pmid, 'PubMed', c.ref_source
    from comments_corrections c join pubmed_names n on n.ref_type = c.ref_type
    union
    select c.ref_pmid, r.label, r.ref_type, c.pmid, 'PubMed', null
    from comments_corrections c
    join pubmed_names n on n.ref_type = c.ref_type
    join pubmed_names r on r.ref_type = n.reverse_type
    where c.ref_pmid is not null
)
select
    pairs.pmid,
    pairs.relation,
    pairs.relation_code,
    pairs.other_key,
    coalesce(o.citation, t.title, max(pairs.ref_source)) as other_citation,
    o.pmid is not null as other_in_kb,
    pairs.origin
from pairs
join papers p on p.pmid = pairs.pmid
left join papers o on o.pmid = pairs.other_key
left join trials t on t.registry_id = pairs.other_key
where pairs.other_key is not null
group by pairs.pmid, pairs.relation, pairs.relation_code, pairs.other_key, pairs.origin
"""

CORRECTIONS_AND_COMMENTS = f"""
select r.pmid, p.citation, p.year, r.relation, r.other_key, r.other_citation, r.origin
from related_papers r
join papers p on p.pmid = r.pmid
where r.relation_code in ({quoted(CORRECTION_AND_COMMENT_CODES)})
"""

NEW_SINCE_LAST_HARVEST = """
select p.pmid, p.citation, p.title, p.year, coalesce(p.journal_iso, p.journal) as journal,
       p.first_seen, p.source, u.pubmed_url, u.doi_url
from papers p
join paper_urls u on u.pmid = p.pmid
where p.first_seen >= coalesce((select max(started_at) from harvest_runs), '')
"""

# datasette-atom's column contract: atom_id, atom_title, atom_updated (+ atom_link, ...).
PAPER_FEED = """
select
    'tag:ldn-evidence-base,2026:paper/' || p.pmid as atom_id,
    p.title as atom_title,
    coalesce(p.updated_at, p.first_seen) as atom_updated,
    -- A paper known only to the curator (curated:<slug>) has no outside page: link to its
    -- page here, relative to the feed (slugs need no URL escaping).
    coalesce(u.pubmed_url, u.doi_url, u.pmc_url, '/kb/papers/' || p.pmid) as atom_link,
    p.citation || char(10) || char(10) || coalesce(p.abstract, '') as atom_content,
    p.first_author as atom_author_name,
    p.first_seen
from papers p
join paper_urls u on u.pmid = p.pmid
"""

CONFLICTS = " union all ".join(
    f"""select c.pmid, c.key, '{field}' as field, cast({ours} as text) as curated_value,
        cast({theirs} as text) as pubmed_value
    from curated_entries c join papers p on p.pmid = c.pmid
    where p.source = 'pubmed' and {ours} is not null
      and {normalised(ours)} is not {normalised(theirs)}"""
    for field, (ours, theirs) in CONFLICT_FIELDS.items()
)

TAG_DISAGREEMENTS = """
with compared as (
    select pmid, kind, value,
           max(source = 'auto') as in_auto,
           max(source = 'curated') as in_curated,
           max(case when source = 'auto' then evidence end) as auto_evidence
    from tags
    group by pmid, kind, value
)
select c.pmid, p.citation, c.kind, c.value, c.in_auto, c.in_curated, c.auto_evidence
from compared c
join papers p on p.pmid = c.pmid
where c.in_auto != c.in_curated
  -- only kinds a curator filled in: an empty curated kind means "not verified", not "absent"
  and exists (select 1 from tags t where t.pmid = c.pmid and t.kind = c.kind and t.source = 'curated')
"""

VIEWS = {
    "effective_tags": (["tags"], EFFECTIVE_TAGS),
    "paper_urls": (["papers"], PAPER_URLS),
    "paper_registry_ids": (["papers", "registry_ids", "curated_entries", "links"], PAPER_REGISTRY_IDS),
    "paper_facets": (["papers", "curated_entries", "tags"], PAPER_FACETS),
    "evidence_table": (["papers", "curated_entries", "tags", "registry_ids", "links"], EVIDENCE_TABLE),
    "doses_studied": (["papers", "curated_entries", "tags", "registry_ids", "links"], DOSES_STUDIED),
    "outcomes_by_design": (["papers", "curated_entries", "tags"], OUTCOMES_BY_DESIGN),
    "adverse_events_reported": (["papers", "curated_entries", "tags"], ADVERSE_EVENTS_REPORTED),
    "trial_publications": (["trials", "links", "registry_ids", "papers"], TRIAL_PUBLICATIONS),
    "related_papers": (["papers", "links", "comments_corrections", "trials"], RELATED_PAPERS),
    "corrections_and_comments": (["papers", "links", "comments_corrections", "trials"], CORRECTIONS_AND_COMMENTS),
    "new_since_last_harvest": (["papers", "harvest_runs"], NEW_SINCE_LAST_HARVEST),
    "paper_feed": (["papers"], PAPER_FEED),
    "conflicts": (["papers", "curated_entries"], CONFLICTS),
    "tag_disagreements": (["papers", "tags"], TAG_DISAGREEMENTS),
}

# Published pooled estimates beside ours as trials accrued (evidence.py writes both tables).
POOLED_OVER_TIME = """
select m.year, 'published' as kind, m.key, c.citation as label, m.outcome, m.measure, m.k,
       m.estimate, m.ci_low, m.ci_high, m.source
from meta_analyses m
left join papers c on c.pmid = m.pmid
where m.estimate is not null
union all
select c.year, 'kb.db cumulative' as kind, c.added_effect_id as key,
       'our REML pool after adding ' || c.added as label, c.outcome, 'smd' as measure, c.k,
       c.estimate, c.ci_low, c.ci_high, null as source
from pooled_cumulative c
where c.method = 'REML'
order by 1, 2
"""

VIEWS["pooled_over_time"] = (["meta_analyses", "pooled_cumulative", "papers"], POOLED_OVER_TIME)
