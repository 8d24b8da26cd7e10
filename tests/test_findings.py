"""The result reader (harvest/findings.py): rules on statements and abstracts we
wrote, and its measured accuracy on the Evidence Inference corpus when
../shared holds it (or KB_EVIDENCE_INFERENCE points to it)."""

from __future__ import annotations

import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from harvest import findings
from harvest.findings import read

ROOT = Path(__file__).resolve().parent.parent
LDN, PLACEBO = "low-dose naltrexone (LDN)", "placebo"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CORPUS = _script("train_findings").CORPUS


def _finding(text, **fields):
    return read(text, **{"intervention": LDN, "comparator": PLACEBO, **fields}).finding


@pytest.mark.parametrize("text, expected", [
    ("Pain was lower with LDN than with placebo (p = 0.004).", "significantly_decreased"),
    ("Pain scores were higher in the placebo group than in the LDN group (p = 0.02).", "significantly_decreased"),
    ("Sleep time was longer with LDN than with placebo (p < 0.001).", "significantly_increased"),
    ("Compared with placebo, LDN gave a significantly greater reduction in pain (p = 0.01).",
     "significantly_decreased"),
    ("Pain did not differ between LDN and placebo (p = 0.41).", "no_significant_difference"),
    ("There was no difference in pain between the groups (mean difference -0.3; 95% CI -1.1 to 0.5).",
     "no_significant_difference"),
    ("Responders were more frequent with LDN (odds ratio 1.65; 95% CI 0.72 to 3.79).", "no_significant_difference"),
    ("Compared with placebo, LDN was not effective for pain (p = 0.61).", "no_significant_difference"),
])
def test_reads_between_group_statements(text, expected):
    assert _finding(text) == expected


def test_which_arm_a_comparative_refers_to():
    reader = findings.Reader(findings.default_cues(), None)
    def sign(text):
        return reader.direction(reader.arm_tokens(text, LDN, PLACEBO, "pain"))
    assert sign("Pain was lower with LDN than with placebo.") == -1
    assert sign("Pain was lower with placebo than with LDN.") == 1
    assert sign("Compared with LDN, placebo gave higher pain scores.") == -1
    assert sign("LDN gave a greater reduction in pain than placebo.") == -1


def test_polarity_turns_improved_into_a_direction():
    reader = findings.Reader(findings.default_cues(), None)
    tokens = reader.arm_tokens("Pain improved more with LDN than with placebo.", LDN, PLACEBO, "pain")
    assert reader.direction(tokens, "lower_better") == -1
    assert reader.direction(tokens, "higher_better") == 1


def test_p_values_and_intervals():
    reader = findings.Reader(findings.default_cues(), None)
    def significance(text):
        return reader.significance(text, reader.p_values(text))
    assert significance("lower (p < 0.001)") == ["P_SIG"]
    assert significance("similar (P > 0.05)") == ["P_NS", "NULL_CUE"]
    assert significance("difference 2.3 (95% CI [−1.5% to +3.1%])") == ["CI_NULL"]
    assert significance("hazard ratio 0.75 (95% CI 0.57 to 0.98)") == ["CI_SIG"]
    assert read("Pain fell (p = 0.03).").p_value == "= 0.03"


def test_comparison_between_or_within():
    assert read("Pain fell from 6.8 at baseline to 5.1 (p < 0.001).", LDN, PLACEBO).comparison == "within_group"
    assert read("Pain fell more with LDN than with placebo (p = 0.01).", LDN, PLACEBO).comparison == "between_groups"
    assert read("There was no significant between-group difference in pain.").comparison == "between_groups"


def test_a_statement_without_a_result_gets_no_finding():
    assert read("Fibromyalgia is a disorder of widespread pain.", LDN, PLACEBO).finding is None


def test_read_json_line_contract_and_errors():
    answer = findings.read_json_line(json.dumps({"text": "Pain was lower with LDN than placebo (p = 0.01).",
                                                 "intervention": "LDN"}))
    assert set(answer) == {"finding", "comparison", "p_value", "evidence"}
    assert answer["finding"] == "significantly_decreased"
    for bad, message in (("{", "not JSON"), ('{"texts": "x"}', '"text" string'),
                         ('{"text": "x", "outcome": 3}', '"outcome" must be')):
        with pytest.raises(ValueError, match=message):
            findings.read_json_line(bad)


# ------------------------------------------------ on the Evidence Inference corpus

needs_corpus = pytest.mark.skipif(not (CORPUS / "train.jsonl").exists(),
                                  reason="Evidence Inference corpus not in ../shared/evidence-inference/")


# Floating-point sums differ in their last digits between CPUs and BLAS builds:
# weights are compared within this, predictions exactly.
WEIGHT_TOLERANCE = 1e-3


@needs_corpus
def test_training_reproduces_the_shipped_model(tmp_path):
    train = _script("train_findings")
    out = tmp_path / "model.json"
    train.main(["--out", str(out)])
    retrained, shipped = json.loads(out.read_text()), json.loads(findings.MODEL_PATH.read_text())
    assert retrained["classes"] == shipped["classes"]
    assert retrained["intercept"] == pytest.approx(shipped["intercept"], abs=WEIGHT_TOLERANCE)
    features = {name: (idf, weights) for name, idf, weights in shipped["features"]}
    assert [name for name, _, _ in retrained["features"]] == list(features)
    for name, idf, weights in retrained["features"]:
        assert [idf, *weights] == pytest.approx([features[name][0], *features[name][1]], abs=WEIGHT_TOLERANCE), name
    assert retrained["ranker"]["weights"].keys() == shipped["ranker"]["weights"].keys()
    assert retrained["ranker"]["weights"] == pytest.approx(shipped["ranker"]["weights"], abs=WEIGHT_TOLERANCE)
    assert retrained["ranker"]["intercept"] == pytest.approx(shipped["ranker"]["intercept"], abs=WEIGHT_TOLERANCE)
    # what matters: the same answers on a fixed set (the validation statements and abstracts)
    mine, theirs = (train.shipped_reader(data) for data in (retrained, shipped))
    statements = train.load_split("validation")
    args = [(r["evidence"], r["intervention"], r["comparator"], r["outcome"]) for r in statements]
    assert [mine.read(*a).finding for a in args] == [theirs.read(*a).finding for a in args]
    prompts = train.load_split("validation", level="abstracts")
    assert [train.read_prompt(mine, p) for p in prompts] == [train.read_prompt(theirs, p) for p in prompts]


@needs_corpus
def test_reader_meets_its_targets_on_the_validation_split():
    evaluate = _script("eval_tags")
    rows = evaluate.load_split("validation")
    scores = evaluate.reader_scores([r["label"] for r in rows], [
        read(r["evidence"], r["intervention"], r["comparator"], r["outcome"]).finding for r in rows])
    assert scores["2-way accuracy"] >= 0.90 and scores["3-way macro-F1"] >= 0.78, scores


# ---------------------------------------------------------------- kb read-finding

def test_kb_read_finding_answers_each_line_in_order():
    from click.testing import CliRunner

    from harvest.cli import cli
    lines = [{"text": "Fatigue did not differ between LDN and placebo (p = 0.52).", "intervention": "LDN"},
             {"text": "Pain was lower with LDN than with placebo (p = 0.003).", "intervention": "LDN",
              "comparator": "placebo", "outcome": "pain"},
             {"text": "Fibromyalgia affects many adults."}]
    result = CliRunner().invoke(cli, ["read-finding"], input="\n".join(json.dumps(x) for x in lines) + "\n")
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert [a["evidence"] for a in answers] == [x["text"] for x in lines]
    assert [a["finding"] for a in answers] == ["no_significant_difference", "significantly_decreased", None]


def test_kb_read_finding_names_the_bad_line():
    from click.testing import CliRunner

    from harvest.cli import cli
    result = CliRunner().invoke(cli, ["read-finding"], input='{"text": "Pain fell."}\n[1, 2]\n')
    assert result.exit_code == 2
    assert "stdin line 2" in result.output


def test_superior_and_inferior_refer_to_the_arm_after_to():
    reader = findings.Reader(findings.default_cues(), None)
    tokens = reader.arm_tokens("For pain, LDN was inferior to duloxetine (p = 0.01).", LDN, "duloxetine", "pain")
    assert reader.direction(tokens, "lower_better") == 1   # more pain than with duloxetine
    tokens = reader.arm_tokens("For pain, duloxetine was inferior to LDN (p = 0.01).", LDN, "duloxetine", "pain")
    assert reader.direction(tokens, "lower_better") == -1


@needs_corpus
def test_whole_abstract_reading_meets_its_targets_on_the_validation_split():
    evaluate = _script("eval_tags")
    prompts = evaluate.load_split("validation", level="abstracts")
    reader = findings.reader()
    scores = evaluate.abstract_scores(prompts, *zip(*(evaluate.read_prompt(reader, p) for p in prompts)))
    assert scores["3-way macro-F1"] >= 0.72 and scores["evidence found"] >= 0.80, scores


# ------------------------------------------------------------ significance at alpha

@pytest.mark.parametrize("p, expected", [
    ("p = 0.049", "significantly_decreased"),
    ("p < 0.05", "significantly_decreased"),
    ("p ≤ 0.05", "significantly_decreased"),
    ("p = 0.05", "no_significant_difference"),    # not below alpha
    ("P = .050", "no_significant_difference"),
    ("p = 0.051", "no_significant_difference"),
    ("p >= 0.05", "no_significant_difference"),
])
def test_p_exactly_at_alpha_is_not_significant(p, expected):
    assert _finding(f"Pain was lower with LDN than with placebo ({p}).", outcome="pain") == expected


def test_p_at_alpha_called_significant_by_the_authors_is_read_as_they_say():
    text = "Pain was significantly lower with LDN than with placebo (p = 0.05)."
    assert _finding(text, outcome="pain") == "significantly_decreased"


def test_only_evidence_of_no_difference_reads_no_difference():
    text = "More patients responded with LDN (31% versus 18%; odds ratio 2.05, 95% CI 0.94 to 4.47)."
    assert _finding(text, outcome="responded") == "no_significant_difference"


# ------------------------------------------------------------- the model's weighting

def test_the_model_weighs_terms_by_sublinear_tf_idf_normalised_to_unit_length():
    """Hand-computed: a count of 1 weighs idf, a count of n weighs (1 + ln n) * idf; the vector
    of known terms is scaled to length 1; each class scores intercept + weights · vector.
    Terms the model does not know count for nothing, not even in the length."""
    model = findings.Model({"classes": list(findings.FINDINGS), "intercept": [0.1, -0.2, 0.0],
                            "features": [["alpha", 2.0, [1.0, 0.0, 0.0]], ["beta", 1.0, [0.0, 1.0, -1.0]]]})
    beta = 1 + math.log(3)  # beta counted three times, idf 1
    length = math.sqrt(2.0 ** 2 + beta ** 2)
    scores = model.scores(Counter({"alpha": 1, "beta": 3, "unknown": 5}))
    assert scores == pytest.approx([0.1 + 2.0 / length, -0.2 + beta / length, -beta / length])
    probabilities = model.probabilities(Counter({"alpha": 1, "beta": 3}))
    exps = [math.exp(s) for s in scores]
    assert [probabilities[c] for c in findings.FINDINGS] == pytest.approx([e / sum(exps) for e in exps])


def test_the_ranker_adds_its_weights():
    ranker = findings.Ranker({"intercept": -1.0, "weights": {"outcome": 2.0, "P_SIG": 0.5}})
    assert ranker.score({"outcome": 0.5, "P_SIG": 1.0, "unknown": 3.0}) == pytest.approx(-1.0 + 1.0 + 0.5)


# ------------------------------------------------------------------ whole abstracts

ABSTRACT = """Low-dose naltrexone for fibromyalgia: a randomised, double-blind, placebo-controlled crossover trial
Background: Fibromyalgia causes widespread pain, and small studies suggest that low-dose naltrexone may lower it.
Methods: Thirty women took LDN 4.5 mg and placebo for 10 weeks each, in random order. Pain was rated daily on a \
0-10 scale; fatigue and sleep were secondary outcomes.
Results: Twenty-eight women completed both periods. Daily pain was lower during LDN than during placebo (mean \
difference -0.9; 95% CI -1.5 to -0.3; p = 0.004). Fatigue did not differ between the periods (p = 0.47). Vivid \
dreams were more common with LDN.
Conclusions: In this trial LDN reduced pain more than placebo did."""


def test_an_abstract_is_answered_from_the_sentence_reporting_the_outcome():
    pain = read(ABSTRACT, "LDN", "placebo", "daily pain")
    assert pain.finding == "significantly_decreased" and pain.comparison == "between_groups"
    assert pain.evidence.startswith("Daily pain was lower during LDN") and pain.p_value == "= 0.004"
    fatigue = read(ABSTRACT, "LDN", "placebo", "fatigue")
    assert fatigue.finding == "no_significant_difference"
    assert fatigue.evidence == "Fatigue did not differ between the periods (p = 0.47)."


def test_an_abstract_in_the_corpus_layout_reads_the_same():
    """Evidence Inference prints a label alone on its line ("Results::") before the section's text."""
    corpus_layout = ABSTRACT.replace("Results: ", "\n\nResults::\n").replace("Methods: ", "\n\nMethods::\n")
    assert read(corpus_layout, "LDN", "placebo", "daily pain") == read(ABSTRACT, "LDN", "placebo", "daily pain")


def test_between_group_sentences_answer_before_within_group_ones():
    text = ("LDN in fibromyalgia: a randomised trial\nResults: Fatigue fell from 6.1 at baseline to 4.9 with LDN "
            "(p = 0.002). Fatigue did not differ between LDN and placebo at week 12 (p = 0.31).")
    reading = read(text, "LDN", "placebo", "fatigue")
    assert (reading.finding, reading.comparison) == ("no_significant_difference", "between_groups")


def test_abbreviations_defined_in_an_abstract_stand_for_their_long_form():
    assert findings.defined_abbreviations("Patients on continuous lateral rotation (CLR) were studied.") == {
        "clr": frozenset({"conti", "later", "rotat"})}


def test_an_arm_named_inside_a_hyphenated_word_is_the_arm():
    reader = findings.Reader(findings.default_cues(), None)
    tokens = reader.arm_tokens("Both duloxetine-treated groups improved more than placebo.", "duloxetine", "placebo",
                               "pain")
    assert tokens[:2] == ["both", findings.INTERVENTION] and findings.COMPARATOR in tokens


# ------------------------------------------------------- statements that compare nothing

@pytest.mark.parametrize("text, outcome", [
    ("The effect of LDN on pain was independent of its effect on mood (p = 0.03).", "mood"),
    ("Improvement in pain was associated with better sleep (r = 0.4, p = 0.01).", "sleep"),
    ("Pain scores were similar at baseline in the two groups (p = 0.70).", "pain"),
])
def test_a_statement_comparing_no_arms_gives_no_finding(text, outcome):
    assert read(text, LDN, PLACEBO, outcome).finding is None


def test_an_association_that_compares_the_arms_still_reads():
    text = "LDN was associated with lower pain than placebo (p = 0.01)."
    assert read(text, "LDN", PLACEBO, "pain").finding == "significantly_decreased"


def test_kb_read_finding_reads_a_whole_abstract():
    from click.testing import CliRunner

    from harvest.cli import cli
    line = json.dumps({"text": ABSTRACT, "intervention": "LDN", "comparator": "placebo", "outcome": "daily pain"})
    result = CliRunner().invoke(cli, ["read-finding"], input=line + "\n")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["finding"] == "significantly_decreased"
    assert answer["evidence"] != ABSTRACT and answer["evidence"] in ABSTRACT


def test_a_statement_of_two_sentences_is_still_read_as_one_statement():
    text = "Pain fell with LDN. It was lower than with placebo (p = 0.01)."
    reading = read(text, "LDN", PLACEBO, "pain")
    assert (reading.finding, reading.evidence) == ("significantly_decreased", text)
