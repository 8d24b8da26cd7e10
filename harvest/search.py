"""Full-text search over what readers look for: titles and abstracts, and also the curated
summary (population, dose, primary outcome, result, public note) and the designs and outcomes
in words, so "4.5 mg" or "pain threshold" find curated papers that have no abstract.

`search_texts` (its shape in store.py) holds one row per paper keyed by the paper's rowid,
so views that carry `paper_rowid` can be searched; `search_texts_fts` indexes it. `refresh` rewrites only rows
whose text changed, so a re-run of `kb build` writes nothing.
"""

TABLE = "search_texts"
COLUMNS = ["title", "abstract", "summary", "topics"]
# bm25 weights per column: a word in the title or curated summary counts for more.
WEIGHTS = {"title": 10.0, "abstract": 1.0, "summary": 5.0, "topics": 3.0}

def labelled_values(vocabulary, array):
    return f"""(select group_concat(l.label, '; ') from json_each({array}) v
        join labels l on l.vocabulary = '{vocabulary}' and l.value = v.value)"""


SUMMARY_PARTS = ["population", "dose_text", "primary_outcome", "result", "note"]

PARTS = f"""
select
    p.rowid as paper_rowid, p.paper_id, p.title, p.abstract,
    {", ".join("c." + part for part in SUMMARY_PARTS)},
    {labelled_values('design', 'f.design')} as designs,
    {labelled_values('outcome', 'f.outcome')} as outcomes
from papers p
join paper_facets f on f.paper_id = p.paper_id
left join curated_entries c on c.paper_id = p.paper_id and c.type = 'publication'
"""


def joined(separator, parts):
    return separator.join(str(p) for p in parts if p) or None


def wanted_rows(db):
    for row in db.query(PARTS):
        yield {
            "paper_rowid": row["paper_rowid"], "paper_id": row["paper_id"], "title": row["title"],
            "abstract": row["abstract"],
            "summary": joined(" ", (row[part] for part in SUMMARY_PARTS)),
            "topics": joined("; ", (row["designs"], row["outcomes"])),
        }


def set_ranking(db):
    """Make `order by rank` on the index use WEIGHTS (FTS5 keeps this in the index's config)."""
    fts = TABLE + "_fts"
    wanted = f"bm25({', '.join(str(WEIGHTS[c]) for c in COLUMNS)})"
    current = db.execute(f"select v from {fts}_config where k = 'rank'").fetchone()
    if not current or current[0] != wanted:
        with db.conn:
            db.execute(f"insert into {fts}({fts}, rank) values ('rank', ?)", [wanted])


def refresh(db):
    """Bring search_texts in line with the papers; returns the number of rows written or removed."""
    wanted = {row["paper_rowid"]: row for row in wanted_rows(db)}
    current = {row["paper_rowid"]: row for row in db[TABLE].rows}
    stale = [key for key in current if key not in wanted]
    changed = [row for key, row in wanted.items() if current.get(key) != row]
    with db.conn:
        for key in stale:
            db[TABLE].delete(key)
        if changed:
            db[TABLE].upsert_all(changed, pk="paper_rowid")
    set_ranking(db)
    return len(stale) + len(changed)
