"""Train the result reader's model (harvest/findings_model.json) on the Evidence Inference train split.

The corpus (Evidence Inference 2.0, MIT licence) lives in ../shared/evidence-inference/
beside the project; only train.jsonl is used for training. Features are the
reader's own (harvest.findings): words and word pairs of the statement with
the arms and the outcome replaced by placeholders, plus the rules' readings;
sublinear TF-IDF, multinomial logistic regression. Deterministic: the same
corpus and vocabulary give the same file.

Run: .venv/bin/python scripts/train_findings.py [--out harvest/findings_model.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvest import findings  # noqa: E402

CORPUS = ROOT.parent / "shared" / "evidence-inference"
# Regularisation and pruning chosen on the train split by 5-fold cross-validation.
C = 10.0
MIN_DF = 2
DIGITS = 5


def load_split(name: str, corpus: Path = CORPUS) -> list[dict]:
    path = corpus / f"{name}.jsonl"
    if not path.exists():
        raise SystemExit(f"{path}: not found (the Evidence Inference corpus belongs in ../shared/evidence-inference/)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def reader_features(reader: findings.Reader, row: dict) -> list[str]:
    """The model's features of one corpus row, exactly as harvest.findings computes them."""
    tokens = reader.arm_tokens(row["evidence"], row["intervention"], row["comparator"], row["outcome"])
    counts = findings.features(tokens, reader.readings(row["evidence"], tokens) * 2)
    return list(counts.elements())


def train(rows: list[dict], reader: findings.Reader):
    """A fitted (vectorizer, classifier) pair."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=lambda row: reader_features(reader, row), sublinear_tf=True, min_df=MIN_DF)
    X = vectorizer.fit_transform(rows)
    classifier = LogisticRegression(C=C, max_iter=5000).fit(X, [row["label"] for row in rows])
    return vectorizer, classifier


def model_json(vectorizer, classifier, n_rows: int) -> dict:
    names = vectorizer.get_feature_names_out()
    coef = classifier.coef_.T
    return {
        "about": "harvest.findings model: TF-IDF + logistic regression, written by scripts/train_findings.py",
        "trained_on": f"Evidence Inference 2.0 train split ({n_rows} rows), MIT licence",
        "classes": list(classifier.classes_),
        "intercept": [round(float(b), DIGITS) for b in classifier.intercept_],
        "features": [[str(name), round(float(idf), DIGITS), [round(float(w), DIGITS) for w in weights]]
                     for name, idf, weights in zip(names, vectorizer.idf_, coef)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=findings.MODEL_PATH)
    args = parser.parse_args(argv)
    rows = load_split("train")
    reader = findings.Reader(findings.default_cues(), None)
    vectorizer, classifier = train(rows, reader)
    data = model_json(vectorizer, classifier, len(rows))
    args.out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{args.out.name}: {len(data['features'])} features from {len(rows)} rows, "
          f"{args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
