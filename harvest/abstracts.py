"""A stored paper's abstract as sentences, for the readers that run after tagging
(primary_outcome.py, candidates.py): split into sections and sentences exactly as the tagger
splits them (harvest/sentences.py), each sentence knowing whether its section may state results.
"""

from . import store
from .sentences import LAYOUT, split_inline_sections


def sentences(sections):
    """The sentences of abstract sections [{"label", "text"}], inline labels split out, as the
    tagger lays them out (sentences.Sentence: section, text, background, results...)."""
    return LAYOUT.sentences({"sections": split_inline_sections(sections)})


def stored_sentences(db, key):
    """The sentences of a stored paper's abstract (none for a paper without one)."""
    return sentences(store.paper_text_for_tagging(db, key)["sections"])


def papers_with_abstracts(db, where="1"):
    """Keys of papers that have abstract sections and meet `where` (SQL on paper_facets f)."""
    return [row[0] for row in db.execute(
        f"select f.paper_id from paper_facets f where {where} "
        "and exists (select 1 from abstract_sections s where s.paper_id = f.paper_id) order by f.paper_id")]


def replace_rows(db, table, rows_by_paper, where="1"):
    """Make `table`'s rows (those matching `where`) per paper equal `rows_by_paper`, writing only
    papers whose rows changed, so a re-run rewrites nothing."""
    pk = store.TABLES[table][1]
    order = ", ".join(pk) if isinstance(pk, tuple) else pk
    current = {}
    for row in db.query(f"select * from {table} where {where} order by {order}"):
        current.setdefault(row["paper_id"], []).append(row)
    with db.conn:
        for key in current.keys() - rows_by_paper.keys():
            db.execute(f"delete from {table} where paper_id = ? and {where}", [key])
        for key, rows in rows_by_paper.items():
            if current.get(key) == rows:
                continue
            db.execute(f"delete from {table} where paper_id = ? and {where}", [key])
            if rows:
                db[table].insert_all(rows, pk=pk)
