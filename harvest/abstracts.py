"""A stored paper's abstract as sentences, for the readers that run after tagging
(primary_outcome.py, candidates.py): split into sections and sentences exactly as the tagger
splits them (harvest/tag.py), each sentence knowing whether its section may state results.
"""

from dataclasses import dataclass

from . import store, tag


@dataclass(frozen=True)
class AbstractSentence:
    section: str
    text: str
    background: bool  # earlier work, not this paper
    results: bool  # may state this paper's results (not background, aims or methods)


def sentences(sections):
    """The sentences of abstract sections [{"label", "text"}], inline labels split out."""
    found = []
    for section in tag.split_inline_sections(sections):
        label = section.get("label") or "abstract"
        key = label.upper()
        background = key in tag.RULES.background_labels
        results = not background and key not in tag.RULES.not_results_labels
        text = section.get("text") or ""
        found += [AbstractSentence(label, text[start:end], background, results)
                  for start, end in tag.split_sentences(text)]
    return found


def stored_sentences(db, key):
    """The sentences of a stored paper's abstract (none for a paper without one)."""
    return sentences(store.paper_text_for_tagging(db, key)["sections"])


def papers_with_abstracts(db, where="1"):
    """Keys of papers that have abstract sections and meet `where` (SQL on paper_facets f)."""
    return [row[0] for row in db.execute(
        f"select f.pmid from paper_facets f where {where} "
        "and exists (select 1 from abstract_sections s where s.pmid = f.pmid) order by f.pmid")]


def replace_rows(db, table, rows_by_paper, where="1"):
    """Make `table`'s rows (those matching `where`) per paper equal `rows_by_paper`, writing only
    papers whose rows changed, so a re-run rewrites nothing."""
    pk = store.TABLES[table][1]
    order = ", ".join(pk) if isinstance(pk, tuple) else pk
    current = {}
    for row in db.query(f"select * from {table} where {where} order by {order}"):
        current.setdefault(row["pmid"], []).append(row)
    with db.conn:
        for key in current.keys() - rows_by_paper.keys():
            db.execute(f"delete from {table} where pmid = ? and {where}", [key])
        for key, rows in rows_by_paper.items():
            if current.get(key) == rows:
                continue
            db.execute(f"delete from {table} where pmid = ? and {where}", [key])
            if rows:
                db[table].insert_all(rows, pk=pk)
