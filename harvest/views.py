"""SQL views over kb.db: the stable query surface that canned queries and users select from.

VIEWS maps a view name to (tables it needs, SELECT statement). `store.ensure_db_shape`
creates each view only where its tables exist, and replaces it when its SQL changes.

Conventions the views rely on:
- list-valued curated fields (design, outcomes, adverse_events, registry_ids) are JSON
  arrays; curated authors are one "Younger J, Mackey S" string, as in papers;
- a paper's key, `paper_id`, is its PMID (digits only), doi:<doi>, or curated:<entry key>;
  `pmid` holds a PubMed ID or nothing, so a view that shows papers to readers carries both
  (`paper_id` for links, `pmid` for export to PubMed);
- for each paper and tag kind, curated tags replace auto tags (`effective_tags`), and a
  curated_entries field beats any tag;
- list-valued output columns are JSON arrays, so Datasette can facet on them.
"""

from .labels import PUBLICATION_ROLES, RESULTS_ROLE, UNKNOWN_ROLE, labels_rows
from .relations import CURATED_RELATIONS, PUBMED_RELATIONS

# Designs that make a paper a report of a clinical study (the evidence table's rows);
# reviews, protocols, letters, errata and animal work are evidence about studies, not studies.
NON_CLINICAL_DESIGNS = (
    "systematic_review", "meta_analysis", "narrative_review", "protocol", "preclinical",
    "letter", "erratum",
)

# Headline study type for charts and facets, first match wins: a protocol or a secondary
# analysis of an RCT counts as what it is, so "randomised trial" means a trial's results.
STUDY_TYPES = [
    ("meta-analysis", ("meta_analysis",)),
    ("systematic review", ("systematic_review",)),
    ("protocol", ("protocol",)),
    ("secondary analysis", ("secondary_analysis",)),
    ("letter or erratum", ("letter", "erratum")),
    ("randomised trial", ("rct",)),
    ("non-randomised trial", ("nonrandomized", "single_arm", "pilot", "dose_finding", "open_label")),
    ("observational study", ("observational", "retrospective", "survey")),
    ("case report or series", ("case_report", "case_series")),
    ("preclinical", ("preclinical",)),
    ("narrative review", ("narrative_review",)),
]

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
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


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
select t.paper_id, t.kind, t.value, t.detail, t.evidence, t.section, t.source
from tags t
where t.source = 'curated'
   or not exists (
       select 1 from tags c
       where c.paper_id = t.paper_id and c.kind = t.kind and c.source = 'curated'
   )
"""

PAPER_URLS = """
select
    paper_id,
    pmid,
    case when pmid is not null then 'https://pubmed.ncbi.nlm.nih.gov/' || pmid || '/' end as pubmed_url,
    case when doi is not null then 'https://doi.org/' || doi end as doi_url,
    case when pmcid is not null then 'https://pmc.ncbi.nlm.nih.gov/articles/' || pmcid || '/' end as pmc_url
from papers
"""

# Every trial registration a paper names: in its PubMed record, its curated entry, or a
# curated link to a registered trial.
PAPER_REGISTRY_IDS = f"""
select paper_id, registry_id, {registry_url('registry_id')} as registry_url
from (
    select paper_id, registry_id from registry_ids
    union
    select c.paper_id, r.value from curated_entries c, json_each(coalesce(c.registry_ids, '[]')) r
    where c.paper_id is not null
    union
    select from_key, to_key from links where relation in ('reports_trial', 'protocol_of')
        and to_key not in (select paper_id from papers)
)
"""


def curated_field(column):
    """A paper's curated publication field, as a scalar subquery: a LEFT JOIN here would hit
    an SQLite 3.40 planner bug that empties Datasette's array facets (json_each over a
    flattened view with an outer join)."""
    return (
        f"(select c.{column} from curated_entries c "
        "where c.paper_id = p.paper_id and c.type = 'publication')"
    )


def curated_or_tagged(field, kind):
    """A JSON array of values: the curated list when there is one, else the paper's tags of `kind`."""
    return f"""coalesce(
        nullif({curated_field(field)}, '[]'),
        (select json_group_array(distinct value) from effective_tags e
         where e.paper_id = p.paper_id and e.kind = '{kind}'),
        '[]'
    )"""


# One row per paper with its facet values, as JSON arrays for Datasette's array facets.
PAPER_FACET_VALUES = f"""
select
    p.paper_id,
    p.title,
    p.authors,
    p.year,
    coalesce(p.journal_iso, p.journal) as journal,
    p.doi,
    {curated_or_tagged('design', 'design')} as design,
    (select json_group_array(distinct e.detail ->> '$.band') from effective_tags e
     where e.paper_id = p.paper_id and e.kind = 'dose' and e.detail ->> '$.band' is not null) as dose_band,
    {curated_or_tagged('outcomes', 'outcome')} as outcome,
    {curated_field('result_direction')} as result_direction,
    {curated_field('key')} is not null as curated,
    p.source,
    p.rowid as paper_rowid,
    nullif({curated_field('design')}, '[]') is not null as design_curated
from papers p
"""


def study_type(design_array):
    """SQL CASE naming a paper's headline study type from its JSON design array."""
    whens = "\n".join(
        f"        when exists (select 1 from json_each({design_array}) where value in ({quoted(designs)})) then '{label}'"
        for label, designs in STUDY_TYPES
    )
    return f"case\n{whens}\n        else 'other or untagged'\n    end"


def publication_role(design_array, machine_read, title, paper_id):
    """SQL CASE naming what a paper is (harvest/labels.py's PUBLICATION_ROLES): by its designs,
    and, where `machine_read` (no curated design), also by its PubMed publication types and title."""
    def matches(designs, types, titles):
        tests = [f"exists (select 1 from json_each({design_array}) where value in ({quoted(designs)}))"]
        read = []
        if types:
            read.append(f"exists (select 1 from publication_types t where t.paper_id = {paper_id} "
                        f"and t.name in ({quoted(types)}))")
        read += [f"lower({title}) like '{pattern}'" for pattern in titles]
        if read:
            tests.append(f"({machine_read} and ({' or '.join(read)}))")
        return " or ".join(tests)

    whens = "\n".join(
        f"        when {matches(designs, types, titles)} then '{role}'"
        for role, designs, types, titles in PUBLICATION_ROLES
    )
    return f"case\n{whens}\n        when json_array_length({design_array}) > 0 then '{RESULTS_ROLE}'\n        else '{UNKNOWN_ROLE}'\n    end"


LABELS = f"""
select column1 as vocabulary, column2 as value, column3 as label
from ({values_table(labels_rows())})
"""

# The headline study type of a paper whose role says it reports no study's results of its own.
ROLE_STUDY_TYPES = {
    "protocol": "protocol", "secondary_analysis": "secondary analysis", "meta_analysis": "meta-analysis",
    "letter": "letter or erratum", "erratum": "letter or erratum",
}


def role_study_type(role, design_array, title):
    """SQL: the headline study type, from the role when the role says what the paper is."""
    whens = "".join(f"        when '{r}' then '{label}'\n" for r, label in ROLE_STUDY_TYPES.items())
    designed = study_type(design_array)
    return f"""case {role}
{whens}        when 'review' then case when {designed} = 'narrative review'
                                and lower({title}) not like '%systematic review%' then 'narrative review'
                                else 'systematic review' end
        else {designed}
    end"""


# paper_rowid lets the search_texts_fts index (keyed by papers.rowid) search this view.
PAPER_FACETS = f"""
select
    paper_id, title, authors, year, journal, doi, {role_study_type('publication_role', 'design', 'title')} as study_type,
    publication_role, design, dose_band, outcome, result_direction, curated, source, paper_rowid
from (
    select v.*, {publication_role('v.design', 'not v.design_curated', 'v.title', 'v.paper_id')} as publication_role
    from ({PAPER_FACET_VALUES}) v
)
"""


def tag_text(kind, shown="e.value"):
    """A paper's values of one tag kind as readable text, for papers no curator has checked.

    A curated entry's empty field means "not reported on the pages checked", so it is
    never filled from automatic tags.
    """
    return (
        f"(select group_concat({shown}, '; ') from effective_tags e "
        f"where c.key is null and e.paper_id = p.paper_id and e.kind = '{kind}')"
    )


EVIDENCE_TABLE = f"""
select
    p.paper_id,
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
    f.publication_role,
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
         where c.key is null and e.paper_id = p.paper_id and e.kind = 'duration')
    ) as duration_weeks,
    coalesce(c.comparator, {tag_text('comparator')}) as comparator,
    c.primary_outcome,
    f.outcome as outcomes,
    c.result,
    c.result_direction,
    (select json_group_array(registry_id) from paper_registry_ids r where r.paper_id = p.paper_id) as registry_ids,
    u.pubmed_url,
    u.doi_url,
    u.pmc_url,
    case when c.key is not null then 'curated' else 'auto tags' end as evidence_from,
    c.checked
from papers p
join paper_facets f on f.paper_id = p.paper_id
join paper_urls u on u.paper_id = p.paper_id
left join curated_entries c on c.paper_id = p.paper_id and c.type = 'publication'
where exists (
    select 1 from json_each(f.design) d
    where d.value not in ({quoted(NON_CLINICAL_DESIGNS)})
)
"""

# Curated dose tags (harvest/curate.py writes one per curated dose, with its band)
# replace the tagger's for the same paper.
DOSES_STUDIED = """
select
    v.paper_id, v.citation, v.year, v.design, v.n,
    e.value as dose,
    e.detail ->> '$.min_mg_per_day' as min_mg_per_day,
    e.detail ->> '$.max_mg_per_day' as max_mg_per_day,
    e.detail ->> '$.regimen' as regimen,
    e.detail ->> '$.band' as band,
    e.source,
    e.evidence
from evidence_table v
join effective_tags e on e.paper_id = v.paper_id and e.kind = 'dose'
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
    json_group_array(f.paper_id) as paper_ids
from paper_facets f, json_each(f.outcome) o, json_each(f.design) d
group by o.value, d.value
"""

ADVERSE_EVENTS_REPORTED = """
select distinct lower(trim(e.value)) as adverse_event, p.paper_id, p.citation, f.design, e.source,
       e.evidence
from effective_tags e
join papers p on p.paper_id = e.paper_id
join paper_facets f on f.paper_id = p.paper_id
where e.kind = 'adverse_event'
"""

TRIAL_PUBLICATIONS = f"""
with curated as (
    select to_key as registry_id, from_key as paper_id,
           case relation when 'protocol_of' then 'protocol' else 'reports the trial' end as role
    from links where relation in ('reports_trial', 'protocol_of')
),
published as (
    -- A curated link says what the paper is to the trial; a registry id in the paper only
    -- says that it names the trial.
    select registry_id, paper_id, max(role) as role, group_concat(linked_by, '; ') as linked_by
    from (
        select registry_id, paper_id, role, 'curated link' as linked_by from curated
        union
        select registry_id, paper_id, null, 'registry id in ' || coalesce(origin, 'record') from registry_ids
    )
    group by registry_id, paper_id
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
    coalesce(b.role, case when b.paper_id is not null then 'names the trial' end) as role,
    b.paper_id,
    p.citation,
    p.year,
    b.linked_by
from trials t
left join published b on b.registry_id = t.registry_id
left join papers p on p.paper_id = b.paper_id
"""

RELATED_PAPERS = f"""
with curated_names(relation, forward, reverse) as (
    {values_table((code, *labels) for code, labels in CURATED_RELATIONS.items())}
),
pubmed_names(ref_type, label, reverse_type) as (
    {values_table((code, *labels) for code, labels in PUBMED_RELATIONS.items())}
),
pairs as (
    select l.from_key as paper_id, n.forward as relation, l.relation as relation_code,
           l.to_key as other_key, 'curated' as origin, null as ref_source
    from links l join curated_names n on n.relation = l.relation
    union
    select l.to_key, n.reverse, l.relation, l.from_key, 'curated', null
    from links l join curated_names n on n.relation = l.relation
    union
    select c.paper_id, n.label, c.ref_type, c.ref_pmid, 'PubMed', c.ref_source
    from comments_corrections c join pubmed_names n on n.ref_type = c.ref_type
    union
    select c.ref_pmid, r.label, r.ref_type, c.paper_id, 'PubMed', null
    from comments_corrections c
    join pubmed_names n on n.ref_type = c.ref_type
    join pubmed_names r on r.ref_type = n.reverse_type
    where c.ref_pmid is not null
)
select
    pairs.paper_id,
    pairs.relation,
    pairs.relation_code,
    pairs.other_key,
    coalesce(o.citation, t.title, max(pairs.ref_source)) as other_citation,
    o.paper_id is not null as other_in_kb,
    pairs.origin
from pairs
join papers p on p.paper_id = pairs.paper_id
left join papers o on o.paper_id = pairs.other_key
left join trials t on t.registry_id = pairs.other_key
where pairs.other_key is not null
group by pairs.paper_id, pairs.relation, pairs.relation_code, pairs.other_key, pairs.origin
"""

NEW_SINCE_LAST_HARVEST = """
select p.paper_id, p.pmid, p.citation, p.title, p.year, coalesce(p.journal_iso, p.journal) as journal,
       p.first_seen, p.source, u.pubmed_url, u.doi_url
from papers p
join paper_urls u on u.paper_id = p.paper_id
where p.first_seen >= coalesce((select max(started_at) from harvest_runs), '')
"""

# datasette-atom's column contract: atom_id, atom_title, atom_updated (+ atom_link, ...).
PAPER_FEED = """
select
    'tag:ldn-evidence-base,2026:paper/' || p.paper_id as atom_id,
    p.title as atom_title,
    coalesce(p.updated_at, p.first_seen) as atom_updated,
    -- A paper known only to the curator (curated:<slug>) has no outside page: link to its
    -- page here, relative to the feed (slugs need no URL escaping).
    coalesce(u.pubmed_url, u.doi_url, u.pmc_url, '/kb/papers/' || p.paper_id) as atom_link,
    p.citation || char(10) || char(10) || coalesce(p.abstract, '') as atom_content,
    p.first_author as atom_author_name,
    p.first_seen
from papers p
join paper_urls u on u.paper_id = p.paper_id
"""

CONFLICTS = " union all ".join(
    f"""select c.paper_id, c.key, '{field}' as field, cast({ours} as text) as curated_value,
        cast({theirs} as text) as pubmed_value
    from curated_entries c join papers p on p.paper_id = c.paper_id
    where p.source = 'pubmed' and {ours} is not null
      and {normalised(ours)} is not {normalised(theirs)}"""
    for field, (ours, theirs) in CONFLICT_FIELDS.items()
)

TAG_DISAGREEMENTS = """
with compared as (
    select paper_id, kind, value,
           max(source = 'auto') as in_auto,
           max(source = 'curated') as in_curated,
           max(case when source = 'auto' then evidence end) as auto_evidence
    from tags
    group by paper_id, kind, value
)
select c.paper_id, p.citation, c.kind, c.value, c.in_auto, c.in_curated, c.auto_evidence
from compared c
join papers p on p.paper_id = c.paper_id
where c.in_auto != c.in_curated
  -- only kinds a curator filled in: an empty curated kind means "not verified", not "absent"
  and exists (select 1 from tags t where t.paper_id = c.paper_id and t.kind = c.kind and t.source = 'curated')
"""

VIEWS = {
    "labels": ([], LABELS),
    "effective_tags": (["tags"], EFFECTIVE_TAGS),
    "paper_urls": (["papers"], PAPER_URLS),
    "paper_registry_ids": (["papers", "registry_ids", "curated_entries", "links"], PAPER_REGISTRY_IDS),
    "paper_facets": (["papers", "curated_entries", "tags", "publication_types"], PAPER_FACETS),
    "evidence_table": (["papers", "curated_entries", "tags", "registry_ids", "links"], EVIDENCE_TABLE),
    "doses_studied": (["papers", "curated_entries", "tags", "registry_ids", "links"], DOSES_STUDIED),
    "outcomes_by_design": (["papers", "curated_entries", "tags"], OUTCOMES_BY_DESIGN),
    "adverse_events_reported": (["papers", "curated_entries", "tags"], ADVERSE_EVENTS_REPORTED),
    "trial_publications": (["trials", "links", "registry_ids", "papers"], TRIAL_PUBLICATIONS),
    "related_papers": (["papers", "links", "comments_corrections", "trials"], RELATED_PAPERS),
    "new_since_last_harvest": (["papers", "harvest_runs"], NEW_SINCE_LAST_HARVEST),
    "paper_feed": (["papers"], PAPER_FEED),
    "conflicts": (["papers", "curated_entries"], CONFLICTS),
    "tag_disagreements": (["papers", "tags"], TAG_DISAGREEMENTS),
}


# ---- Integrity: notices about papers, and registered trials against their publications ----

# What a notice makes of the paper it is about, worst first: (status, flag column, how
# PubMed's record of the paper names the notice, how the notice's record names the
# paper, our relation from the notice to the paper).
INTEGRITY_STATUSES = [
    ("retracted", "retracted", ("RetractionIn", "PartialRetractionIn"), ("RetractionOf", "PartialRetractionOf"),
     ("retraction_of",)),
    ("expression of concern", "expression_of_concern", ("ExpressionOfConcernIn",), ("ExpressionOfConcernFor",),
     ("expression_of_concern_for",)),
    ("corrected", "corrected", ("ErratumIn", "CorrectedandRepublishedIn"), ("ErratumFor", "CorrectedandRepublishedFrom"),
     ("correction_of",)),
    ("re-analysed", "reanalysed", (), (), ("reanalysis_of",)),
    ("commented", "commented", ("CommentIn",), ("CommentOn",), ("comment_on",)),
]

# One row per paper and notice about it, from PubMed's links (either record), curated
# links and Crossref's notices (links whose origin names Crossref and its source).
INTEGRITY_NOTICES = f"""
with kinds(status, rank, code, side) as (
    {values_table(
        (status, str(rank), code, side)
        for rank, (status, _, own, notice, ours) in enumerate(INTEGRITY_STATUSES)
        for side, codes in (("own", own), ("notice", notice), ("link", ours))
        for code in codes
    )}
),
found as (
    select c.paper_id, k.status, k.rank, c.ref_pmid as notice_key, c.ref_source as notice_text,
           'PubMed' as source
    from comments_corrections c join kinds k on k.side = 'own' and k.code = c.ref_type
    where c.ref_pmid is not null or c.ref_source is not null
    union
    select c.ref_pmid, k.status, k.rank, c.paper_id, null, 'PubMed'
    from comments_corrections c join kinds k on k.side = 'notice' and k.code = c.ref_type
    where c.ref_pmid is not null
    union
    select l.to_key, k.status, k.rank, l.from_key, null, l.origin
    from links l join kinds k on k.side = 'link' and k.code = l.relation
)
select
    f.paper_id,
    f.status,
    cast(f.rank as integer) as rank,
    f.notice_key,
    coalesce(n.citation, max(f.notice_text)) as notice_citation,
    case when n.pmid is not null then 'https://pubmed.ncbi.nlm.nih.gov/' || n.pmid || '/'
         when n.doi is not null then 'https://doi.org/' || n.doi end as notice_url,
    replace(group_concat(distinct f.source), ',', ', ') as sources,
    coalesce(n.first_seen, '') as first_seen
from found f
join papers p on p.paper_id = f.paper_id
left join papers n on n.paper_id = f.notice_key
group by f.paper_id, f.status, f.notice_key
"""

INTEGRITY_STATUS = f"""
select
    p.paper_id,
    p.citation,
    coalesce((select i.status from integrity_notices i where i.paper_id = p.paper_id order by i.rank limit 1),
             'none') as status,
    {", ".join(
        f"exists (select 1 from integrity_notices i where i.paper_id = p.paper_id and i.status = '{status}') as {flag}"
        for status, flag, *_ in INTEGRITY_STATUSES
    )},
    (select json_group_array(json_object('status', i.status, 'notice', i.notice_key,
                                         'citation', i.notice_citation, 'url', i.notice_url,
                                         'source', i.sources))
     from integrity_notices i where i.paper_id = p.paper_id) as notices,
    (select group_concat(i.sources, '; ') from integrity_notices i where i.paper_id = p.paper_id) as sources
from papers p
"""

# One row per notice and the paper it concerns (a correction, retraction, expression of concern,
# comment, reply or re-analysis), however many records name the pair: curated and Crossref links
# go from the notice to the paper; PubMed names the pair from either record. A letter or erratum
# linked to no paper yet is listed too, with `concerns` empty, so it is never silently missing.
NOTICE_KINDS = [
    (CURATED_RELATIONS[ours[0]][0], code, side)
    for _, _, own, notice, ours in INTEGRITY_STATUSES
    for side, codes in (("own", own), ("notice", notice), ("link", ours))
    for code in codes
] + [(CURATED_RELATIONS["reply_to"][0], "reply_to", "link")]

CORRECTIONS_AND_COMMENTS = f"""
with kinds(relation, code, side) as (
    {values_table(NOTICE_KINDS)}
),
pairs as (
    select l.from_key as notice, k.relation, l.to_key as concerns, l.origin, null as cited
    from links l join kinds k on k.side = 'link' and k.code = l.relation
    union
    select c.ref_pmid, k.relation, c.paper_id, 'PubMed', c.ref_source
    from comments_corrections c join kinds k on k.side = 'own' and k.code = c.ref_type
    union
    select c.paper_id, k.relation, c.ref_pmid, 'PubMed', c.ref_source
    from comments_corrections c join kinds k on k.side = 'notice' and k.code = c.ref_type
)
select
    pairs.notice,
    coalesce(n.citation, case when pairs.concerns in (select paper_id from papers) then max(pairs.cited) end) as notice_citation,
    coalesce(n.year, c.year) as year,
    replace(group_concat(distinct pairs.relation), ',', '; ') as relation,
    pairs.concerns,
    coalesce(c.citation, case when pairs.notice in (select paper_id from papers) then max(pairs.cited) end) as concerns_citation,
    replace(group_concat(distinct pairs.origin), ',', ', ') as origin
from pairs
left join papers n on n.paper_id = pairs.notice
left join papers c on c.paper_id = pairs.concerns
where n.paper_id is not null or c.paper_id is not null
group by pairs.notice, pairs.concerns
union all
select f.paper_id, p.citation, p.year, f.publication_role, null, null, p.source
from paper_facets f join papers p on p.paper_id = f.paper_id
where f.publication_role in ('letter', 'erratum')
  and not exists (select 1 from links l join kinds k on k.side = 'link' and k.code = l.relation
                  where l.from_key = f.paper_id)
  and not exists (select 1 from comments_corrections c join kinds k on k.code = c.ref_type
                  where (k.side = 'notice' and c.paper_id = f.paper_id) or (k.side = 'own' and c.ref_pmid = f.paper_id))
"""

# datasette-atom's column contract, one entry per notice about a kb.db paper.
NOTICE_FEED = """
select
    'tag:ldn-evidence-base,2026:notice/' || i.paper_id || '/' || i.notice_key as atom_id,
    i.status || ': ' || coalesce(p.title, p.citation) as atom_title,
    coalesce(nullif(i.first_seen, ''), p.first_seen) as atom_updated,
    coalesce(i.notice_url, '/kb/papers/' || i.paper_id) as atom_link,
    'Notice: ' || coalesce(i.notice_citation, i.notice_key) || char(10) || 'About: ' || p.citation
        || char(10) || 'Found through: ' || i.sources as atom_content,
    i.paper_id,
    i.status,
    i.notice_key,
    i.sources
from integrity_notices i
join papers p on p.paper_id = i.paper_id
"""


def as_date(column):
    """A registry date ('2019', '2019-05' or '2019-05-14') as its last possible day, for comparisons."""
    return f"""case
        when {column} is null then null
        when length({column}) = 4 then {column} || '-12-31'
        when length({column}) = 7 then date({column} || '-01', '+1 month', '-1 day')
        else date({column})
    end"""


# Papers naming a registered trial: a curated link, a registry id in the PubMed record or the
# curated entry, or one the tagger read in the abstract ("Trial registration: NCT...").
PAPERS_NAMING_TRIALS = """
select registry_id, paper_id, max(by_curator) as by_curator, max(protocol_link) as protocol_link
from (
    select to_key as registry_id, from_key as paper_id, 1 as by_curator, relation = 'protocol_of' as protocol_link
    from links where relation in ('reports_trial', 'protocol_of')
    union all
    select registry_id, paper_id, origin = 'curated', 0 from registry_ids
    union all
    select upper(value), paper_id, source = 'curated', 0 from effective_tags where kind = 'registry_id'
)
group by registry_id, paper_id
"""

PAPERS_NAMING_TRIALS_WITH_ROLES = f"""
select n.registry_id, n.paper_id, n.by_curator, n.protocol_link, f.publication_role, f.curated
from ({PAPERS_NAMING_TRIALS}) n
join paper_facets f on f.paper_id = n.paper_id
"""
# A trial's results papers, among the papers naming it: those whose publication role is results
# (a curated link may also name a paper of unknown design). A protocol, a secondary analysis, a
# letter or a review naming the trial is never its results paper. `found_by`: curated when a
# curator linked the paper and gave its design, else machine-read (registry id and role read
# from the record).
IS_RESULTS_PAPER = (f"(not protocol_link and (publication_role = '{RESULTS_ROLE}' "
                    f"or (by_curator and publication_role = '{UNKNOWN_ROLE}')))")
FOUND_BY = "case when by_curator and curated then 'curated' else 'machine-read' end"
TRIAL_RESULTS_PAPERS = f"""
select registry_id, paper_id, {FOUND_BY} as found_by
from ({PAPERS_NAMING_TRIALS_WITH_ROLES})
where {IS_RESULTS_PAPER}
"""


def facts_from(column):
    """SQL aggregate: 'curated', 'machine-read', or both, over a group's `column` values."""
    return f"""case when min({column}) = max({column}) then min({column})
                when max({column}) is not null then 'curated and machine-read' end"""


def json_sets_differ(a, b):
    """SQL: the JSON arrays a and b do not hold the same set of values."""
    return f"""(exists (select value from json_each({a}) except select value from json_each({b}))
            or exists (select value from json_each({b}) except select value from json_each({a})))"""


def differs_by_more_than(a, b, share):
    return f"(abs({a} - {b}) > {share} * {b})"


# One row per registered trial: the registry's facts (the live ClinicalTrials.gov record when
# fetched, else the curated ones) beside what its results papers report, with 0/1 flags.
REGISTRATION_VS_PUBLICATION = f"""
with registered as (
    select registry_id from trials union select registry_id from ctgov_studies
),
facts as (
    select
        g.registry_id,
        coalesce(s.title, t.title) as title,
        t.acronym,
        coalesce(s.overall_status, t.status) as status,
        coalesce(s.why_stopped, f.why_stopped) as why_stopped,
        case when s.registry_id is not null
             then 'ClinicalTrials.gov record updated ' || s.last_update
             when t.registry_id is not null then 'curated' end as registry_facts_from,
        coalesce(s.primary_completion_date, f.primary_completion_date) as primary_completion_date,
        coalesce(s.completion_date, f.completion_date, cast(t.completion_year as text)) as completion_date,
        case when s.registry_id is not null then s.completion_date_type else f.completion_date_type end
            as completion_date_type,
        coalesce(s.has_results, f.results_posted) as results_posted,
        (select group_concat(o.measure || ': ' || o.posted_result, ' | ') from registry_outcomes o
         where o.registry_id = g.registry_id and o.kind = 'posted_primary') as posted_primary_results,
        coalesce(s.enrollment, t.n_enrolled, t.n_planned) as registered_enrollment,
        case when s.registry_id is not null then s.enrollment_type
             when t.n_enrolled is not null then f.enrollment_type
             when t.n_planned is not null then 'anticipated' end as registered_enrollment_type,
        coalesce(
            (select group_concat(o.measure || coalesce(' [' || o.time_frame || ']', ''), '; ')
             from registry_outcomes o where o.registry_id = g.registry_id and o.kind = 'primary'),
            t.primary_outcome) as registered_primary_outcome,
        coalesce(
            (select nullif(json_group_array(distinct j.value), '[]')
             from registry_outcomes o, json_each(o.outcome_values) j
             where o.registry_id = g.registry_id and o.kind = 'primary'),
            f.primary_outcome_values) as registered_primary_outcome_values,
        coalesce(
            (select group_concat(i.name, '; ') from registry_interventions i
             where i.registry_id = g.registry_id and i.dose_max_mg_per_day is not null),
            t.dose_text) as registered_dose,
        coalesce(
            (select max(i.dose_max_mg_per_day) from registry_interventions i
             where i.registry_id = g.registry_id),
            t.dose_max_mg_per_day) as registered_dose_max_mg_per_day
    from registered g
    left join trials t on t.registry_id = g.registry_id
    left join ctgov_studies s on s.registry_id = g.registry_id
    left join registry_facts f on f.registry_id = g.registry_id
),
naming as materialized ({PAPERS_NAMING_TRIALS_WITH_ROLES}),
results_papers as materialized (
    -- trial_results_papers, computed once for the whole view
    select registry_id, paper_id, {FOUND_BY} as found_by from naming where {IS_RESULTS_PAPER}
),
outcomes as materialized (
    select r.registry_id, o.paper_id, o.primary_outcome_values, o.source, o.evidence
    from results_papers r join published_outcomes o on o.paper_id = r.paper_id
),
reported as (
    -- What each results paper reports: a curated entry's fields, else (for a paper no curator
    -- has checked: an empty curated field means "not reported") what the tagger read.
    select
        r.registry_id, r.paper_id, r.found_by,
        coalesce(c.n_randomized, c.n_enrolled) as curated_n,
        case when c.key is null then
            (select max(cast(e.detail ->> '$.randomized' as integer)) from effective_tags e
             where e.paper_id = r.paper_id and e.kind = 'sample_size') end as read_n,
        c.primary_outcome, c.dose_text, c.dose_max_mg_per_day
    from results_papers r
    left join curated_entries c on c.paper_id = r.paper_id and c.type = 'publication'
),
published as (
    select
        r.registry_id,
        json_group_array(distinct r.paper_id) as results_papers,
        {facts_from('r.found_by')} as results_papers_from,
        coalesce(max(r.curated_n), max(r.read_n)) as published_enrollment,
        case when max(r.curated_n) is not null then 'curated'
             when max(r.read_n) is not null then 'machine-read' end as published_enrollment_from,
        coalesce(group_concat(distinct r.primary_outcome),
                 (select group_concat(o.evidence, ' | ') from outcomes o
                  where o.registry_id = r.registry_id and o.source = 'machine-read')) as published_primary_outcome,
        (select nullif(json_group_array(distinct j.value), '[]')
         from outcomes o, json_each(o.primary_outcome_values) j
         where o.registry_id = r.registry_id) as published_primary_outcome_values,
        (select {facts_from('o.source')} from outcomes o
         where o.registry_id = r.registry_id) as published_primary_outcome_from,
        group_concat(distinct r.dose_text) as published_dose,
        max(r.dose_max_mg_per_day) as published_dose_max_mg_per_day
    from reported r
    group by r.registry_id
),
others as (
    -- Papers naming the trial that are not its results papers, with their role.
    select registry_id, json_group_array(json_object('paper_id', paper_id, 'role', publication_role)) as other_papers
    from naming where not {IS_RESULTS_PAPER}
    group by registry_id
)
select
    f.registry_id,
    {registry_url('f.registry_id')} as registry_url,
    f.title,
    f.acronym,
    f.status,
    f.why_stopped,
    f.registry_facts_from,
    f.primary_completion_date,
    f.completion_date,
    f.completion_date_type,
    coalesce(b.results_papers, '[]') as results_papers,
    b.results_papers_from,
    coalesce(o.other_papers, '[]') as other_papers,
    b.registry_id is not null as published,
    f.results_posted,
    f.posted_primary_results,
    coalesce({as_date('coalesce(f.primary_completion_date, f.completion_date)')} < date('now', '-12 months'), 0)
        as completion_over_12_months_ago,
    -- a withdrawn trial never enrolled anyone: there is nothing to publish
    coalesce(b.registry_id is null and coalesce(f.results_posted, 0) = 0 and f.status is not 'withdrawn'
             and {as_date('coalesce(f.primary_completion_date, f.completion_date)')} < date('now', '-12 months'), 0)
        as flag_unpublished,
    f.registered_enrollment,
    f.registered_enrollment_type,
    b.published_enrollment,
    b.published_enrollment_from,
    coalesce({differs_by_more_than('b.published_enrollment', 'f.registered_enrollment', 0.1)}, 0)
        as flag_enrollment_differs,
    f.registered_primary_outcome,
    b.published_primary_outcome,
    f.registered_primary_outcome_values,
    b.published_primary_outcome_values,
    b.published_primary_outcome_from,
    coalesce(
        f.registered_primary_outcome_values is not null
        and exists (select 1 from outcomes o where o.registry_id = f.registry_id)
        and not exists (
            select 1 from outcomes o
            where o.registry_id = f.registry_id
              and not {json_sets_differ('o.primary_outcome_values', 'f.registered_primary_outcome_values')}),
        0) as flag_outcome_switch,
    f.registered_dose,
    f.registered_dose_max_mg_per_day,
    b.published_dose,
    b.published_dose_max_mg_per_day,
    coalesce(f.registered_dose_max_mg_per_day != b.published_dose_max_mg_per_day, 0) as flag_dose_differs
from facts f
left join published b on b.registry_id = f.registry_id
left join others o on o.registry_id = f.registry_id
"""

VIEWS.update({
    "integrity_notices": (["papers", "links", "comments_corrections"], INTEGRITY_NOTICES),
    "integrity_status": (["papers", "links", "comments_corrections"], INTEGRITY_STATUS),
    "notice_feed": (["papers", "links", "comments_corrections"], NOTICE_FEED),
    "corrections_and_comments": (["papers", "links", "comments_corrections", "curated_entries", "tags"],
                                 CORRECTIONS_AND_COMMENTS),
    "trial_results_papers": (
        ["links", "registry_ids", "papers", "curated_entries", "tags", "publication_types"], TRIAL_RESULTS_PAPERS),
    "registration_vs_publication": (
        ["trials", "ctgov_studies", "registry_outcomes", "registry_interventions", "registry_facts",
         "published_outcomes", "links", "registry_ids", "papers", "curated_entries", "tags", "publication_types"],
        REGISTRATION_VS_PUBLICATION,
    ),
})
# Published pooled estimates beside ours as trials accrued (evidence.py writes both tables).
POOLED_OVER_TIME = """
select m.year, 'published' as kind, m.key, c.citation as label, m.outcome, m.measure, m.k,
       m.estimate, m.ci_low, m.ci_high, m.source
from meta_analyses m
left join papers c on c.paper_id = m.paper_id
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

# The PRISMA 2020 flow, counted from `screening` (harvest/screening.py): records identified (in all
# and by route, a record found twice counting twice), duplicates removed, records screened (each
# once), excluded (in all and by reason) and included (publications and trial registrations).
PRISMA_FLOW = """
with counts as (
    select count(*) as identified, count(distinct record) as screened,
           count(distinct case when decision = 'excluded' then record end) as excluded,
           count(distinct case when decision = 'included' then record end) as included
    from screening
),
steps(position, stage, detail, count) as (
    select 1, 'identified', null, identified from counts
    union all
    select 2, 'identified', coalesce(l.label, s.source), count(*)
    from screening s left join labels l on l.vocabulary = 'search_route' and l.value = s.source
    group by s.source
    union all
    select 3, 'duplicates removed', null, identified - screened from counts
    union all
    select 4, 'screened', null, screened from counts
    union all
    select 5, 'excluded', null, excluded from counts
    union all
    select 6, 'excluded', reason, count(distinct record) from screening where decision = 'excluded' group by reason
    union all
    select 7, 'included', null, included from counts
    union all
    select 8, 'included', 'publications', count(distinct record) from screening
    where decision = 'included' and record in (select paper_id from papers)
    union all
    select 8, 'included', 'trial registrations', count(distinct record) from screening
    where decision = 'included' and record not in (select paper_id from papers)
)
select position, stage, detail, count from steps order by position, count desc, detail
"""

VIEWS["prisma_flow"] = (["screening", "papers"], PRISMA_FLOW)


# ---- New evidence: randomised trials of LDN found by a harvest that the analysis lacks ----

# Dose bands that make a naltrexone dose low-dose (a single 50 mg dose is not LDN).
LDN_BANDS = ("ultra_low", "very_low", "low")


def names_ldn(text):
    """SQL: a text names low-dose naltrexone ("low-dose naltrexone", or LDN in capitals)."""
    return f"""(lower({text}) like '%low-dose naltrexone%' or lower({text}) like '%low dose naltrexone%'
            or ' ' || {text} || ' ' glob '*[^A-Za-z]LDN[^A-Za-z]*')"""


# A paper its tags and publication role mark as a randomised trial of LDN in fibromyalgia with
# results, that no `effects` row covers (neither the paper nor the trial it names): the pooled
# answer on the home page does not include it yet. `found` is when it entered kb.db. LDN: a
# low-band naltrexone dose tag, or, when no dose was read, the words; fibromyalgia: the
# population tag (text or MeSH) or the words.
NOT_YET_IN_ANALYSIS = f"""
with covered as materialized (
    select paper_id from effects
    union
    select n.paper_id from effects x join ({PAPERS_NAMING_TRIALS}) n on n.registry_id = x.trial_key
)
select
    f.paper_id,
    p.pmid,
    p.citation,
    p.title,
    f.year,
    f.journal,
    f.design,
    substr(p.first_seen, 1, 10) as found,
    p.first_seen,
    (select group_concat(e.value, '; ') from effective_tags e where e.paper_id = f.paper_id and e.kind = 'dose') as dose,
    (select max(cast(e.value as integer)) from effective_tags e
     where e.paper_id = f.paper_id and e.kind = 'sample_size') as n,
    (select json_group_array(distinct n.registry_id) from ({PAPERS_NAMING_TRIALS}) n where n.paper_id = f.paper_id)
        as registry_ids,
    (select count(*) from effect_candidates c where c.paper_id = f.paper_id) as machine_read_numbers,
    f.curated,
    u.pubmed_url,
    u.doi_url
from paper_facets f
join papers p on p.paper_id = f.paper_id
join paper_urls u on u.paper_id = f.paper_id
where f.publication_role = '{RESULTS_ROLE}'
  and exists (select 1 from json_each(f.design) where value = 'rct')
  and (exists (select 1 from effective_tags e where e.paper_id = f.paper_id and e.kind = 'dose'
               and e.detail ->> '$.band' in ({quoted(LDN_BANDS)}))
       or (not exists (select 1 from effective_tags e where e.paper_id = f.paper_id and e.kind = 'dose'
                       and e.detail ->> '$.band' is not null)
           and ({names_ldn('p.title')} or {names_ldn("coalesce(p.abstract, '')")})))
  and (exists (select 1 from effective_tags e where e.paper_id = f.paper_id and e.kind = 'population'
               and e.value = 'fibromyalgia')
       or lower(coalesce(p.title, '') || ' ' || coalesce(p.abstract, '')) like '%fibromyalg%')
  and f.paper_id not in (select paper_id from covered)
"""

VIEWS["not_yet_in_analysis"] = (
    ["papers", "tags", "curated_entries", "publication_types", "registry_ids", "links", "effects",
     "effect_candidates"],
    NOT_YET_IN_ANALYSIS,
)
