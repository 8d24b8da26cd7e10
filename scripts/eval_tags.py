"""Score the tagger on the labelled set and the result reader on Evidence Inference.

The tagger is scored against tests/eval/labelled.yml, twice: as the texts are
laid out (labelled sections on their own lines) and with each abstract run
into one paragraph, as MEDLINE prints it (labels inline).

Prints precision, recall and F1 per tag kind and micro-averaged overall,
comparing (kind, value) pairs; doses compare on (min_mg_per_day,
max_mg_per_day), weight-based doses on their mg/kg range. Outcome direction is
scored separately, over outcomes found in both the labels and the output: the
direction and its comparison (between_groups, or within_group in uncontrolled
studies) must both match.

The texts marked `set: real_shaped` are also scored on their own.

The result reader (harvest/findings.py) is scored on the Evidence Inference
validation splits in ../shared/evidence-inference/ (skipped, with a note, when
absent), each beside the obvious learned alternative trained on the train
splits in the same run:
- whole abstracts (abstracts/validation.jsonl): accuracy and 3-way macro-F1 of
  the finding, and how often the evidence was found, i.e. the sentence the
  reader answered from overlaps the annotated evidence span (located in the
  abstract verbatim, white space aside; for the few spans not there verbatim,
  the abstract sentence sharing most words with it). The alternative retrieves
  the sentence most like the outcome (TF-IDF cosine) and classifies it with
  TF-IDF + logistic regression;
- result statements (validation.jsonl): 2-way accuracy (significant
  difference or not) and 3-way macro-F1; the alternative is TF-IDF + logistic
  regression on the statement's words.

Exits non-zero when design or dose F1 < 0.95 or outcome F1 < 0.85, or when
the reader scores below its bounds (READER_THRESHOLDS, ABSTRACT_THRESHOLDS)
or not above its alternative.
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
from train_findings import (CORPUS, abstract_sentences, evidence_sentences, load_split,  # noqa: E402
                             read_prompt)

LABELLED = ROOT / "tests" / "eval" / "labelled.yml"
KINDS = ["design", "dose", "outcome", "adverse_event", "sample_size", "duration",
         "comparator", "population", "registry_id"]
THRESHOLDS = {"design": 0.95, "dose": 0.95, "outcome": 0.85}
READER_THRESHOLDS = {"2-way accuracy": 0.90, "3-way macro-F1": 0.78}
ABSTRACT_THRESHOLDS = {"3-way macro-F1": 0.72, "evidence found": 0.80}
# How far the reader must stand above the retrieve-then-classify alternative on abstracts.
ABSTRACT_MARGIN = 0.05


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


def _direction_label(label) -> tuple | None:
    """(direction, comparison) of a labelled direction: a plain value compares the groups."""
    if label is None:
        return None
    if isinstance(label, dict):
        return label["direction"], label["comparison"]
    return label, "between_groups"


def direction_scores(tags: list[dict], expected: dict, counts: Counter) -> list[str]:
    """Count direction agreement on outcomes present in both; return mismatches."""
    predicted = {t["value"]: (t["detail"]["direction"], t["detail"]["comparison"]) if t["detail"].get("direction")
                 else None for t in tags if t["kind"] == "outcome"}
    errors = []
    for value, label in (expected.get("outcome") or {}).items():
        if value not in predicted:
            continue
        got, want = predicted[value], _direction_label(label)
        if want is None:
            counts["unlabelled"] += 1
            counts["asserted_unlabelled"] += got is not None
            continue
        counts["labelled"] += 1
        counts["correct"] += got == want
        if got != want:
            errors.append(f"direction {value}: expected {want}, got {got}")
    return errors


def as_one_paragraph(item: dict) -> dict:
    """The item with its abstract run into one paragraph, section labels inline."""
    title, *lines = item["text"].strip("\n").split("\n")
    return {**item, "text": title + "\n" + " ".join(line.strip() for line in lines if line.strip())}


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


def print_report(n_items: int, scores: dict[str, Counter], directions: Counter, layout: str) -> dict[str, float]:
    print(f"tagger {TAGGER_VERSION} on {n_items} labelled items, {layout}")
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
    print(f"outcome direction and comparison: {directions['correct']}/{labelled} correct ({accuracy:.3f}) on "
          f"outcomes found with a labelled direction; {directions['asserted_unlabelled']}/{directions['unlabelled']} "
          f"found outcomes labelled without direction were given one")
    return f1s


def reader_scores(gold: list[str], predicted: list[str | None]) -> dict[str, float]:
    """2-way accuracy (a significant difference or not; no answer counts as wrong) and 3-way macro-F1."""
    from sklearn.metrics import f1_score

    significant = [g != "no_significant_difference" for g in gold]
    said = [None if p is None else p != "no_significant_difference" for p in predicted]
    return {"2-way accuracy": sum(a == b for a, b in zip(significant, said)) / len(gold),
            "3-way macro-F1": f1_score(gold, [p or "none" for p in predicted], labels=list(findings.FINDINGS),
                                       average="macro")}


def baseline_classifier(train: list[dict]):
    """TF-IDF (words and word pairs) + logistic regression on the statement alone: (vectorizer, classifier)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    X = vectorizer.fit_transform([row["evidence"] for row in train])
    return vectorizer, LogisticRegression(C=10, max_iter=5000).fit(X, [row["label"] for row in train])


def baseline_predictions(train: list[dict], rows: list[dict]) -> list[str]:
    vectorizer, classifier = baseline_classifier(train)
    return list(classifier.predict(vectorizer.transform([row["evidence"] for row in rows])))


def baseline_abstract_predictions(train: list[dict], train_prompts: list[dict],
                                  prompts: list[dict]) -> tuple[list[str], list[int]]:
    """Retrieve then classify: the sentence most like the outcome (TF-IDF cosine, fitted on the
    train abstracts' sentences), classified by baseline_classifier. (finding, sentence index) per prompt."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    seen, texts = set(), []
    for prompt in train_prompts:
        if prompt["pmcid"] not in seen:
            seen.add(prompt["pmcid"])
            texts += [s.text for s in abstract_sentences(prompt)]
    retriever = TfidfVectorizer(sublinear_tf=True).fit(texts)
    vectorizer, classifier = baseline_classifier(train)
    answers, used = [], []
    for prompt in prompts:
        sentences = [s.text for s in abstract_sentences(prompt)]
        similarity = (retriever.transform(sentences) @ retriever.transform([prompt["outcome"]]).T).toarray().ravel()
        best = int(similarity.argmax())
        answers.append(classifier.predict(vectorizer.transform([sentences[best]]))[0])
        used.append(best)
    return answers, used


def abstract_scores(prompts: list[dict], answers: list[str | None], used: list[int | None]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    gold = [p["label"] for p in prompts]
    found = [u is not None and u in evidence_sentences(p, abstract_sentences(p)) for p, u in zip(prompts, used)]
    return {"accuracy": sum(a == g for a, g in zip(answers, gold)) / len(gold),
            "3-way macro-F1": f1_score(gold, [a or "none" for a in answers], labels=list(findings.FINDINGS),
                                       average="macro"),
            "evidence found": sum(found) / len(found)}


def evaluate_abstracts(train: list[dict]) -> list[str]:
    """Print the reader's and the retrieve-then-classify baseline's scores on whole abstracts; return failures."""
    train_prompts, prompts = load_split("train", level="abstracts"), load_split("validation", level="abstracts")
    reader = findings.reader()
    ours = abstract_scores(prompts, *zip(*(read_prompt(reader, p) for p in prompts)))
    baseline = abstract_scores(prompts, *baseline_abstract_predictions(train, train_prompts, prompts))
    print(f"\nresult reader on whole abstracts: Evidence Inference 2.0 abstracts/validation ({len(prompts)} prompts, "
          f"{len({p['pmcid'] for p in prompts})} abstracts; baseline trained on the train splits in this run)")
    print(f"{'':<46}{'accuracy':>9}{'3-way macro-F1':>16}{'evidence found':>16}")
    for name, scores in (("reader (ranked sentences, rules + model)", ours),
                         ("baseline TF-IDF retrieval + TF-IDF/LR", baseline)):
        print(f"{name:<46}{scores['accuracy']:>9.3f}{scores['3-way macro-F1']:>16.3f}{scores['evidence found']:>16.3f}")
    print("evidence found: the sentence answered from overlaps the annotated evidence span")
    failed = [f"abstract {k} {ours[k]:.3f} < {bound}" for k, bound in ABSTRACT_THRESHOLDS.items() if ours[k] < bound]
    failed += [f"abstract {k} {ours[k]:.3f} not {ABSTRACT_MARGIN} above baseline {baseline[k]:.3f}"
               for k in ABSTRACT_THRESHOLDS if ours[k] < baseline[k] + ABSTRACT_MARGIN]
    return failed


def evaluate_reader() -> list[str]:
    """Print the reader's and the baselines' scores on the validation splits; return failures."""
    if not (CORPUS / "validation.jsonl").exists():
        print("\nresult reader: Evidence Inference corpus not found in ../shared/evidence-inference/; not measured")
        return []
    train, rows = load_split("train"), load_split("validation")
    failed = evaluate_abstracts(train)
    gold = [row["label"] for row in rows]
    ours = reader_scores(gold, [findings.read(row["evidence"], row["intervention"], row["comparator"],
                                              row["outcome"]).finding for row in rows])
    baseline = reader_scores(gold, baseline_predictions(train, rows))
    print(f"\nresult reader on result statements: Evidence Inference 2.0 validation ({len(rows)} statements; "
          f"baseline trained on train, {len(train)} statements, in this run)")
    print(f"{'':<38}{'2-way accuracy':>15}{'3-way macro-F1':>16}")
    for name, scores in (("reader (rules + model)", ours), ("baseline TF-IDF + logistic regression", baseline)):
        print(f"{name:<38}{scores['2-way accuracy']:>15.3f}{scores['3-way macro-F1']:>16.3f}")
    failed += [f"reader {k} {ours[k]:.3f} < {bound}" for k, bound in READER_THRESHOLDS.items() if ours[k] < bound]
    failed += [f"reader {k} {ours[k]:.3f} not above baseline {baseline[k]:.3f}"
               for k in READER_THRESHOLDS if ours[k] <= baseline[k]]
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list every mismatch per item")
    args = parser.parse_args(argv)
    failed = []
    for layout, items in (("as laid out (sections on their own lines)", load_items()),
                          ("each abstract run into one paragraph", [as_one_paragraph(i) for i in load_items()])):
        scores, directions, errors = evaluate(items)
        f1s = print_report(len(items), scores, directions, layout)
        real_shaped = [item for item in items if item.get("set") == "real_shaped"]
        if real_shaped:
            print("of which real-shaped texts (set: real_shaped):")
            print_report(len(real_shaped), *evaluate(real_shaped)[:2], layout)
        if args.errors:
            for item_id, item_errors in errors.items():
                print(f"\n{item_id}")
                for error in item_errors:
                    print(f"  {error}")
        failed += [f"{kind} F1 {f1s[kind]:.3f} < {bound} ({layout})"
                   for kind, bound in THRESHOLDS.items() if f1s[kind] < bound]
        print()
    failed += evaluate_reader()
    for failure in failed:
        print(f"FAIL: {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
