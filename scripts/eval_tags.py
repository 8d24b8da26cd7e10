"""Score the tagger on the labelled set and the result reader on Evidence Inference.

The tagger is scored against tests/eval/labelled.yml.

Prints precision, recall and F1 per tag kind and micro-averaged overall,
comparing (kind, value) pairs; doses compare on (min_mg_per_day,
max_mg_per_day), weight-based doses on their mg/kg range. Outcome direction is
scored separately, over outcomes found in both the labels and the output.

The texts marked `set: real_shaped` are also scored on their own.

The result reader (harvest/findings.py) is scored on the Evidence Inference
validation split in ../shared/evidence-inference/ (skipped, with a note, when
absent): 2-way accuracy (significant difference or not) and 3-way macro-F1,
beside the obvious learned alternative, TF-IDF + logistic regression on the
statement's words, trained on the train split in the same run.

Exits non-zero when design or dose F1 < 0.95 or outcome F1 < 0.85, or when
the reader scores below 0.90 (2-way) or 0.78 (3-way) or not above the baseline.
Run: .venv/bin/python scripts/eval_tags.py [--errors]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from harvest import findings  # noqa: E402
from harvest.tag import TAGGER_VERSION, paper_from_text, tag_paper  # noqa: E402
from train_findings import CORPUS, load_split  # noqa: E402

LABELLED = ROOT / "tests" / "eval" / "labelled.yml"
KINDS = ["design", "dose", "outcome", "adverse_event", "sample_size", "duration",
         "comparator", "population", "registry_id"]
THRESHOLDS = {"design": 0.95, "dose": 0.95, "outcome": 0.85}
READER_THRESHOLDS = {"2-way accuracy": 0.90, "3-way macro-F1": 0.78}


def load_items(path: Path = LABELLED) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["items"]


def paper_of(item: dict) -> dict:
    paper = paper_from_text(item["text"])
    paper["publication_types"] = item.get("publication_types", [])
    paper["mesh"] = item.get("mesh", [])
    return paper


def _mg(x) -> float | None:
    return None if x is None else round(float(x), 4)


def dose_key_of_tag(tag: dict) -> tuple:
    d = tag["detail"]
    if d.get("per_kg"):
        return ("per_kg", _mg(d["min_mg_per_kg"]), _mg(d["max_mg_per_kg"]))
    return (_mg(d["min_mg_per_day"]), _mg(d["max_mg_per_day"]))


def dose_key_of_label(label: dict) -> tuple:
    if "per_kg" in label:
        return ("per_kg", _mg(label["per_kg"][0]), _mg(label["per_kg"][1]))
    return (_mg(label["min"]), _mg(label["max"]))


def predicted_sets(tags: list[dict]) -> dict[str, set]:
    found = {kind: set() for kind in KINDS}
    for tag in tags:
        found[tag["kind"]].add(dose_key_of_tag(tag) if tag["kind"] == "dose" else tag["value"])
    return found


def expected_sets(expected: dict) -> dict[str, set]:
    sets = {kind: set() for kind in KINDS}
    for kind in KINDS:
        value = expected.get(kind)
        if value is None:
            continue
        if kind == "dose":
            sets[kind] = {dose_key_of_label(d) for d in value}
        elif kind == "outcome":
            sets[kind] = set(value)
        elif isinstance(value, list):
            sets[kind] = set(value)
        else:
            sets[kind] = {str(value)}
    return sets


def direction_scores(tags: list[dict], expected: dict, counts: Counter) -> list[str]:
    """Count direction agreement on outcomes present in both; return mismatches."""
    predicted = {t["value"]: t["detail"].get("direction") for t in tags if t["kind"] == "outcome"}
    errors = []
    for value, want in (expected.get("outcome") or {}).items():
        if value not in predicted:
            continue
        got = predicted[value]
        if want is None:
            counts["unlabelled"] += 1
            counts["asserted_unlabelled"] += got is not None
            continue
        counts["labelled"] += 1
        counts["correct"] += got == want
        if got != want:
            errors.append(f"direction {value}: expected {want}, got {got}")
    return errors


def evaluate(items: list[dict]) -> tuple[dict[str, Counter], Counter, dict[str, list[str]]]:
    scores = {kind: Counter() for kind in KINDS}
    directions: Counter = Counter()
    errors: dict[str, list[str]] = {}
    for item in items:
        tags = tag_paper(paper_of(item))
        got, want = predicted_sets(tags), expected_sets(item["expected"])
        item_errors = direction_scores(tags, item["expected"], directions)
        for kind in KINDS:
            tp, fp, fn = got[kind] & want[kind], got[kind] - want[kind], want[kind] - got[kind]
            scores[kind].update(tp=len(tp), fp=len(fp), fn=len(fn))
            item_errors += [f"{kind} false positive: {v}" for v in sorted(fp, key=str)]
            item_errors += [f"{kind} missed: {v}" for v in sorted(fn, key=str)]
        if item_errors:
            errors[item["id"]] = item_errors
    return scores, directions, errors


def prf(c: Counter) -> tuple[float, float, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def print_report(n_items: int, scores: dict[str, Counter], directions: Counter) -> dict[str, float]:
    print(f"tagger {TAGGER_VERSION} on {n_items} labelled items")
    print(f"{'kind':<14}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>8}{'F1':>7}")
    f1s, total = {}, Counter()
    for kind in KINDS:
        p, r, f = prf(scores[kind])
        f1s[kind] = f
        total.update(scores[kind])
        c = scores[kind]
        print(f"{kind:<14}{c['tp']:>5}{c['fp']:>5}{c['fn']:>5}{p:>11.3f}{r:>8.3f}{f:>7.3f}")
    p, r, f = prf(total)
    print(f"{'micro overall':<14}{total['tp']:>5}{total['fp']:>5}{total['fn']:>5}{p:>11.3f}{r:>8.3f}{f:>7.3f}")
    labelled = directions["labelled"]
    accuracy = directions["correct"] / labelled if labelled else 1.0
    print(f"outcome direction: {directions['correct']}/{labelled} correct ({accuracy:.3f}) on outcomes found "
          f"with a labelled direction; {directions['asserted_unlabelled']}/{directions['unlabelled']} found "
          f"outcomes labelled without direction were given one")
    return f1s


def reader_scores(gold: list[str], predicted: list[str | None]) -> dict[str, float]:
    """2-way accuracy (a significant difference or not; no answer counts as wrong) and 3-way macro-F1."""
    from sklearn.metrics import f1_score

    significant = [g != "no_significant_difference" for g in gold]
    said = [None if p is None else p != "no_significant_difference" for p in predicted]
    return {"2-way accuracy": sum(a == b for a, b in zip(significant, said)) / len(gold),
            "3-way macro-F1": f1_score(gold, [p or "none" for p in predicted], labels=list(findings.FINDINGS),
                                       average="macro")}


def baseline_predictions(train: list[dict], rows: list[dict]) -> list[str]:
    """TF-IDF (words and word pairs) + logistic regression on the statement alone."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    X = vectorizer.fit_transform([row["evidence"] for row in train])
    classifier = LogisticRegression(C=10, max_iter=5000).fit(X, [row["label"] for row in train])
    return list(classifier.predict(vectorizer.transform([row["evidence"] for row in rows])))


def evaluate_reader() -> list[str]:
    """Print the reader's and the baseline's scores on the validation split; return failures."""
    if not (CORPUS / "validation.jsonl").exists():
        print("\nresult reader: Evidence Inference corpus not found in ../shared/evidence-inference/; not measured")
        return []
    train, rows = load_split("train"), load_split("validation")
    gold = [row["label"] for row in rows]
    ours = reader_scores(gold, [findings.read(row["evidence"], row["intervention"], row["comparator"],
                                              row["outcome"]).finding for row in rows])
    baseline = reader_scores(gold, baseline_predictions(train, rows))
    print(f"\nresult reader on Evidence Inference 2.0 validation ({len(rows)} statements; "
          f"baseline trained on train, {len(train)} statements, in this run)")
    print(f"{'':<38}{'2-way accuracy':>15}{'3-way macro-F1':>16}")
    for name, scores in (("reader (rules + model)", ours), ("baseline TF-IDF + logistic regression", baseline)):
        print(f"{name:<38}{scores['2-way accuracy']:>15.3f}{scores['3-way macro-F1']:>16.3f}")
    failed = [f"reader {k} {ours[k]:.3f} < {bound}" for k, bound in READER_THRESHOLDS.items() if ours[k] < bound]
    failed += [f"reader {k} {ours[k]:.3f} not above baseline {baseline[k]:.3f}"
               for k in READER_THRESHOLDS if ours[k] <= baseline[k]]
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list every mismatch per item")
    args = parser.parse_args(argv)
    items = load_items()
    scores, directions, errors = evaluate(items)
    f1s = print_report(len(items), scores, directions)
    real_shaped = [item for item in items if item.get("set") == "real_shaped"]
    if real_shaped:
        print("\nof which real-shaped texts (set: real_shaped):")
        print_report(len(real_shaped), *evaluate(real_shaped)[:2])
    if args.errors:
        for item_id, item_errors in errors.items():
            print(f"\n{item_id}")
            for error in item_errors:
                print(f"  {error}")
    failed = [f"{kind} F1 {f1s[kind]:.3f} < {bound}" for kind, bound in THRESHOLDS.items() if f1s[kind] < bound]
    failed += evaluate_reader()
    for failure in failed:
        print(f"FAIL: {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
