"""Train the result reader's model (harvest/findings_model.json) on the Evidence Inference train splits.

The corpus (Evidence Inference 2.0, MIT licence) lives in ../shared/evidence-inference/
beside the project (or where KB_EVIDENCE_INFERENCE points); only the train
splits are used: train.jsonl (result statements) and abstracts/train.jsonl
(whole abstracts with the annotated statement).

- The statement model: the reader's own features (harvest.findings): words and
  word pairs of the statement with the arms and the outcome replaced by
  placeholders, plus the rules' readings; sublinear TF-IDF, multinomial
  logistic regression; trained on the statements.
- The ranker: logistic regression over Reader.rank_features of every
  sentence of every train abstract, a sentence being positive when it overlaps
  the annotated statement.

Settings were chosen by 5-fold cross-validation on the train splits, folds
grouped by article (`--cross-validate` prints it again). Deterministic: the
same corpus and vocabulary give the same model, up to the last digits of
floating-point sums, which differ between CPUs and BLAS builds (the tests
compare within a tolerance).

Run: .venv/bin/python scripts/train_findings.py [--out harvest/findings_model.json] [--cross-validate]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvest import findings  # noqa: E402
from harvest.sentences import LAYOUT, paper_from_text  # noqa: E402

CORPUS = Path(os.environ.get("KB_EVIDENCE_INFERENCE") or ROOT.parent / "shared" / "evidence-inference")
# Statement model: regularisation and pruning; ranker: regularisation.
C = 10.0
MIN_DF = 2
RANKER_C = 0.1
DIGITS = 5
FOLDS = 5
_WORDS = re.compile(r"[a-z0-9]+")


def load_split(name: str, corpus: Path | None = None, level: str = "") -> list[dict]:
    """A split's rows; level "abstracts" for the abstract-level task."""
    path = (corpus or CORPUS) / level / f"{name}.jsonl"
    if not path.exists():
        raise SystemExit(f"{path}: not found (the Evidence Inference corpus belongs in ../shared/evidence-inference/"
                         " or where KB_EVIDENCE_INFERENCE points)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------- statement model

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


# ---------------------------------------------------------------------- ranker

def abstract_sentences(prompt: dict):
    return LAYOUT.sentences(paper_from_text(prompt["text"]))


def _normal(text: str) -> str:
    return " ".join(text.split())


def evidence_sentences(prompt: dict, sentences) -> set[int]:
    """Which sentences overlap the annotated statement: located verbatim (white
    space aside) in the sentences laid end to end; when it is not there
    verbatim (about 4% of prompts), the sentence sharing the most words with it."""
    spans, joined, at = [], [], 0
    for sentence in sentences:
        text = _normal(sentence.text)
        spans.append((at, at + len(text)))
        joined.append(text)
        at += len(text) + 1
    evidence = _normal(prompt["evidence"]).strip()
    start = " ".join(joined).find(evidence)
    if start >= 0:
        end = start + len(evidence)
        return {k for k, (s, e) in enumerate(spans) if s < end and e > start}
    wanted = set(_WORDS.findall(evidence.lower()))
    shared = [len(wanted & set(_WORDS.findall(s.text.lower()))) for s in sentences]
    return {shared.index(max(shared))} if shared else set()


def ranking_rows(prompts: list[dict], reader: findings.Reader):
    """(features, 1 when the sentence overlaps the annotated statement, article) per sentence."""
    X, y, groups = [], [], []
    for prompt in prompts:
        sentences = abstract_sentences(prompt)
        gold = evidence_sentences(prompt, sentences)
        found = reader.rank_features([findings.Candidate(s) for s in sentences], prompt["intervention"],
                                     prompt["comparator"], prompt["outcome"],
                                     findings.defined_abbreviations(prompt["text"]))
        X += found
        y += [int(k in gold) for k in range(len(sentences))]
        groups += [prompt["pmcid"]] * len(sentences)
    return X, y, groups


def train_ranker(prompts: list[dict], reader: findings.Reader, c: float = RANKER_C):
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    X, y, _ = ranking_rows(prompts, reader)
    vectorizer = DictVectorizer(sort=True)
    ranker = LogisticRegression(C=c, max_iter=5000).fit(vectorizer.fit_transform(X), y)
    return vectorizer, ranker


def model_json(vectorizer, classifier, ranker_vectorizer, ranker, n_rows: int, n_prompts: int) -> dict:
    names = vectorizer.get_feature_names_out()
    coef = classifier.coef_.T
    return {
        "about": "harvest.findings model: TF-IDF + logistic regression, and a sentence ranker, "
                 "written by scripts/train_findings.py",
        "trained_on": f"Evidence Inference 2.0 train splits ({n_rows} statements, {n_prompts} abstract prompts), "
                      "MIT licence",
        "classes": list(classifier.classes_),
        "intercept": [round(float(b), DIGITS) for b in classifier.intercept_],
        "features": [[str(name), round(float(idf), DIGITS), [round(float(w), DIGITS) for w in weights]]
                     for name, idf, weights in zip(names, vectorizer.idf_, coef)],
        "ranker": {
            "intercept": round(float(ranker.intercept_[0]), DIGITS),
            "weights": {str(name): round(float(w), DIGITS)
                        for name, w in zip(ranker_vectorizer.get_feature_names_out(), ranker.coef_[0])},
        },
    }


def fit(statements: list[dict], prompts: list[dict], ranker_c: float = RANKER_C) -> dict:
    """The model file's contents, learned from these rows."""
    reader = findings.Reader(findings.default_cues(), None)
    vectorizer, classifier = train(statements, reader)
    ranker_vectorizer, ranker = train_ranker(prompts, reader, ranker_c)
    return model_json(vectorizer, classifier, ranker_vectorizer, ranker, len(statements), len(prompts))


def shipped_reader(data: dict) -> findings.Reader:
    return findings.Reader(findings.default_cues(), findings.Model(data), findings.Ranker(data["ranker"]))


# ------------------------------------------------------------ cross-validation

def cross_validate(statements: list[dict], prompts: list[dict]) -> None:
    """Abstract-level macro-F1 and evidence found, 5 folds grouped by article, for a grid of settings."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    grid = [(c, top, temperature) for c in (0.1, 1.0) for top in (1, 3, 5) for temperature in (1.0, 3.0)]
    answers = {setting: [None] * len(prompts) for setting in grid}
    found = {setting: [0] * len(prompts) for setting in grid}
    folds = GroupKFold(FOLDS).split(prompts, groups=[p["pmcid"] for p in prompts])
    for fold, (train_at, test_at) in enumerate(folds):
        held = {prompts[i]["pmcid"] for i in test_at}
        for c in sorted({s[0] for s in grid}):
            reader = shipped_reader(fit([s for s in statements if s["pmcid"] not in held],
                                        [prompts[i] for i in train_at], c))
            for setting in [s for s in grid if s[0] == c]:
                findings.READ_TOP, findings.RANK_TEMPERATURE = setting[1:]
                for i in test_at:
                    answer, sentence = read_prompt(reader, prompts[i])
                    answers[setting][i] = answer
                    found[setting][i] = int(sentence in evidence_sentences(prompts[i], abstract_sentences(prompts[i])))
        print(f"fold {fold + 1} of {FOLDS} done", file=sys.stderr)
    gold = [p["label"] for p in prompts]
    print(f"{'ranker C':>9}{'read top':>9}{'temperature':>12}{'macro-F1':>9}{'found':>7}")
    for setting in grid:
        f1 = f1_score(gold, [a or "none" for a in answers[setting]], labels=list(findings.FINDINGS), average="macro")
        print(f"{setting[0]:>9g}{setting[1]:>9}{setting[2]:>12g}{f1:>9.3f}{sum(found[setting]) / len(prompts):>7.3f}")


def read_prompt(reader: findings.Reader, prompt: dict) -> tuple[str | None, int | None]:
    """The reader's finding for an abstract-level prompt and the index of the sentence it used."""
    sentences = abstract_sentences(prompt)
    candidates = [findings.Candidate(s) for s in sentences]
    reading, used = reader.read_candidates(candidates, prompt["intervention"], prompt["comparator"],
                                           prompt["outcome"], defined=findings.defined_abbreviations(prompt["text"]))
    return (reading.finding if reading else None), (candidates.index(used) if used else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=findings.MODEL_PATH)
    parser.add_argument("--cross-validate", action="store_true",
                        help="print cross-validated scores on the train splits for a grid of settings; write nothing")
    args = parser.parse_args(argv)
    statements, prompts = load_split("train"), load_split("train", level="abstracts")
    if args.cross_validate:
        cross_validate(statements, prompts)
        return 0
    data = fit(statements, prompts)
    args.out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{args.out.name}: {len(data['features'])} statement features from {len(statements)} statements, "
          f"{len(data['ranker']['weights'])} ranker features from {len(prompts)} abstract prompts, "
          f"{args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
