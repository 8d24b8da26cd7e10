"""What the home page, query pages and the paper page (templates/index.html, query-kb-*.html,
row-kb-papers.html) show beyond Datasette's own context: the last harvest, and a paper's
full record: its tags (each once, with who found it), related papers, and its effect sizes,
risk of bias and published pooled results.

Everything is read through the views in harvest/views.py, so the page and the
published views never disagree.
"""

from datasette import hookimpl
from datasette.utils import tilde_decode, tilde_encode

DATABASE = "kb"  # the serve command serves kb.db, which Datasette names kb
PAPERS_TABLE = "papers"
# Shown under the home page's search box; a test checks each finds papers in kb.db.
SEARCH_EXAMPLES = ["4.5 mg", "pain threshold", "crossover", "sleep"]


async def rows(db, sql, params=()):
    return [dict(row) for row in (await db.execute(sql, params)).rows]


async def first(db, sql, params=()):
    found = await rows(db, sql, params)
    return found[0] if found else None


async def last_harvest(db):
    return await first(db, "select started_at, ended_at, status from harvest_runs order by started_at desc limit 1")


async def query_page(datasette):
    return {"last_harvest": await last_harvest(datasette.get_database(DATABASE))}


async def home_page(datasette):
    db = datasette.get_database(DATABASE)
    last = await last_harvest(db)
    counts = await first(
        db,
        """select (select count(*) from papers) as papers,
                  (select count(*) from evidence_table) as clinical_studies,
                  (select count(*) from curated_entries where type = 'publication') as curated,
                  (select count(*) from trials) as trials""",
    )
    return {"last_harvest": last, "kb_counts": counts, "search_examples": SEARCH_EXAMPLES}


def paper_href(datasette, key):
    return datasette.urls.row(DATABASE, PAPERS_TABLE, tilde_encode(key))


# Who found a tag or a link, in words (tags.source, related_papers.origin).
FOUND_BY = {"auto": "automatic tagging", "curated": "a curator", "PubMed": "PubMed"}
ROB_ORDER = ["randomisation", "deviations", "missing_data", "measurement", "reporting", "overall"]


def found_by(source):
    return FOUND_BY.get(source, source)


def tags_once(tags):
    """One row per kind and value, however many sources gave it: who found it, and the sentence
    (with the section it is in) that supports it, when automatic tagging quoted one."""
    merged = {}
    for tag in tags:
        row = merged.setdefault((tag["kind"], tag["value"]), {**tag, "found_by": []})
        if found_by(tag["source"]) not in row["found_by"]:
            row["found_by"].append(found_by(tag["source"]))
        if tag["evidence"] and not row["evidence"]:
            row.update(evidence=tag["evidence"], section=tag["section"])
    return list(merged.values())


async def paper_results(datasette, db, key):
    """The paper's effect sizes, risk of bias and published pooled results, when kb.db has them."""
    present = set(await db.table_names())
    found = {"paper_effects": [], "paper_rob": [], "paper_pooled": []}
    if "effects" in present:
        found["paper_effects"] = await rows(
            db, "select * from effects where paper_id = ? order by is_primary desc, outcome, timepoint_weeks, effect_id", [key])
        for effect in found["paper_effects"]:
            effect["href"] = datasette.urls.row(DATABASE, "effects", tilde_encode(effect["effect_id"]))
    if "risk_of_bias" in present:
        judged = await rows(db, "select * from risk_of_bias where paper_id = ?", [key])
        found["paper_rob"] = sorted(judged, key=lambda r: ROB_ORDER.index(r["domain"]) if r["domain"] in ROB_ORDER else 99)
        for judgement in found["paper_rob"]:
            judgement["href"] = datasette.urls.row(DATABASE, "risk_of_bias", tilde_encode(judgement["key"]) + "," + tilde_encode(judgement["domain"]))
    if "meta_analyses" in present:
        found["paper_pooled"] = await rows(db, "select * from meta_analyses where paper_id = ? order by position", [key])
        for pooled in found["paper_pooled"]:
            pooled["href"] = datasette.urls.row(DATABASE, "meta_analyses", tilde_encode(pooled["key"]) + "," + str(pooled["position"]))
    return found


async def paper_record(datasette, key):
    db = datasette.get_database(DATABASE)
    one = "where paper_id = ?"
    urls = await first(db, f"select pubmed_url, doi_url, pmc_url from paper_urls {one}", [key])
    related = await rows(db, f"select * from related_papers {one} order by origin, relation, other_key", [key])
    for link in related:
        link["href"] = paper_href(datasette, link["other_key"]) if link["other_in_kb"] else None
        link["found_by"] = found_by(link["origin"])
    curated = await first(db, "select * from curated_entries where paper_id = ? and type = 'publication'", [key])
    return {
        "paper_urls": urls or {},
        "paper_sections": await rows(db, f"select label, html from abstract_sections {one} order by position", [key]),
        "paper_registries": await rows(db, f"select registry_id, registry_url from paper_registry_ids {one} order by registry_id", [key]),
        "paper_tags": tags_once(await rows(
            db,
            f"select kind, value, source, evidence, section from tags {one} order by kind, value, source",
            [key],
        )),
        "paper_facts": await first(db, f"select * from evidence_table {one}", [key]),
        "paper_curated": curated,
        "paper_sources": await rows(
            db, "select url, checked, facts, kind from sources where key = ? order by position", [curated["key"]]
        ) if curated else [],
        "paper_trials": await rows(
            db,
            f"select registry_id, registry_url, acronym, trial_title, status, role from trial_publications {one}",
            [key],
        ),
        "paper_related": related,
        "paper_types": [r["name"] for r in await rows(db, f"select name from publication_types {one} order by position", [key])],
        "paper_mesh": [r["descriptor"] for r in await rows(db, f"select descriptor from mesh_headings {one} order by position", [key])],
        **await paper_results(datasette, db, key),
    }


@hookimpl
def extra_template_vars(view_name, database, table, request, datasette):
    if view_name == "index":
        return home_page(datasette)
    if view_name == "table" and database == DATABASE and table is None:  # a canned query page
        return query_page(datasette)
    if view_name == "row" and database == DATABASE and table == PAPERS_TABLE:
        return paper_record(datasette, tilde_decode(request.url_vars["pks"]))
    return None
