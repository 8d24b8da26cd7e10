"""Search ranking: the column weights in harvest/search.py decide the order, not the lengths.

Four papers hold the searched word once each, in a different column, and differ in length by
one word: with equal weights the shortest ranks first, so only the weights can put the title
first. Six papers without the word give the word a positive idf.

FTS5's bm25 (sqlite.org/fts5.html, section 5.1.1; k1 = 1.2, b = 0.75) sums each column's
count times its weight into f, and normalises by the whole paper's length D over the average
avgdl: score = idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * D / avgdl)), rank = -score.
Here N = 10 papers, 4 with the word: idf = ln(6.5 / 4.5) = 0.3677; avgdl = (22 + 21 + 20 + 19
+ 6 * 20) / 10 = 20.2 words. By hand:

| word in   | D  | f with weights 10/5/3/1 | score  | f, equal weights | score  |
| title     | 22 | 10                      | 0.7172 | 1                | 0.3548 |
| summary   | 21 | 5                       | 0.6487 | 1                | 0.3619 |
| topics    | 20 | 3                       | 0.5791 | 1                | 0.3692 |
| abstract  | 19 | 1                       | 0.3769 | 1                | 0.3769 |
"""

import pytest

from harvest import search, store

WORD = "naltrexone"
LENGTHS = {"title": 22, "summary": 21, "topics": 20, "abstract": 19}


def paper(rowid, column, length):
    """A paper of `length` words: 5 in the title, 2 in topics, 4 in the summary, the rest in the
    abstract; WORD (when `column` is given) replaces one filler word of that column."""
    sizes = {"title": 5, "topics": 2, "summary": 4}
    sizes["abstract"] = length - sum(sizes.values())
    texts = {name: ["filler"] * size for name, size in sizes.items()}
    if column:
        texts[column][0] = WORD
    return {"paper_rowid": rowid, "paper_id": column or f"other-{rowid}", **{k: " ".join(v) for k, v in texts.items()}}


@pytest.fixture
def db(tmp_path):
    db = store.open_db(tmp_path / "kb.db")
    rows = [paper(i, column, length) for i, (column, length) in enumerate(LENGTHS.items(), 1)]
    rows += [paper(10 + i, None, 20) for i in range(6)]
    db[search.TABLE].insert_all(rows, pk="paper_rowid")
    return db


def ranked(db):
    return [(row["paper_id"], round(-row["rank"], 4)) for row in db.query(
        f"""select s.paper_id, {search.TABLE}_fts.rank as rank from {search.TABLE}_fts
        join {search.TABLE} s on s.paper_rowid = {search.TABLE}_fts.rowid
        where {search.TABLE}_fts match ? order by {search.TABLE}_fts.rank""", [WORD])]


def test_column_weights_rank_a_title_match_first(db):
    search.set_ranking(db)
    assert ranked(db) == [("title", 0.7172), ("summary", 0.6487), ("topics", 0.5791), ("abstract", 0.3769)]


def test_with_equal_weights_the_same_papers_rank_the_other_way(db, monkeypatch):
    """The fixture can tell: without the weights, the order is reversed."""
    monkeypatch.setattr(search, "WEIGHTS", dict.fromkeys(search.COLUMNS, 1.0))
    search.set_ranking(db)
    assert ranked(db) == [("abstract", 0.3769), ("topics", 0.3692), ("summary", 0.3619), ("title", 0.3548)]


def test_set_ranking_writes_only_when_the_weights_change(db):
    search.set_ranking(db)
    changes = db.conn.total_changes
    search.set_ranking(db)
    assert db.conn.total_changes == changes
