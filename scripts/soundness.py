"""After `make build`: check that kb.db holds what a user expects, or exit non-zero saying what is missing."""

import sqlite3
import sys

import sqlite_utils

CHECKS = {
    "papers present": "select count(*) > 0 from papers",
    "every paper tagged": "select count(*) = 0 from papers where paper_id not in (select paper_id from tags)",
    # a PMID, and only a PMID, in pmid: the paper's own key when it is one
    "papers.pmid holds PubMed IDs only": (
        "select count(*) = 0 from papers where pmid glob '*[^0-9]*' or pmid = '' "
        "or pmid is not (case when paper_id glob '*[^0-9]*' then null else paper_id end)"
    ),
    "every auto tag has evidence": (
        "select count(*) = 0 from tags where source = 'auto' and evidence is null"
    ),
    "full-text search answers": "select count(*) > 0 from papers_fts where papers_fts match 'naltrexone'",
    "curated entries loaded": "select count(*) > 0 from curated_entries",
    "search covers every paper": "select (select count(*) from search_texts) = (select count(*) from papers)",
    "search answers": "select count(*) > 0 from search_texts_fts where search_texts_fts match 'naltrexone'",
    "labels view present": "select count(*) > 0 from labels",
    "every effect has its source page": "select count(*) = 0 from effects where coalesce(source, '') = ''",
    "every pooled trial traces to an effects row": (
        "select count(*) = 0 from pooled_studies s left join effects e on e.effect_id = s.effect_id "
        "where e.effect_id is null"
    ),
}


def passes(db, sql):
    try:
        return bool(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # a missing table fails its check
        return False


def main(path):
    db = sqlite_utils.Database(path)
    failed = [name for name, sql in CHECKS.items() if not passes(db, sql)]
    for name in failed:
        print(f"soundness check failed for {path}: {name}", file=sys.stderr)
    if not failed:
        print(f"{path}: {len(CHECKS)} soundness checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "kb.db"))
