"""The result reader (harvest/findings.py): rules on statements we wrote, and
its measured accuracy on the Evidence Inference corpus when ../shared holds it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from harvest import findings
from harvest.findings import read

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "evidence-inference"
LDN, PLACEBO = "low-dose naltrexone (LDN)", "placebo"


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


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_corpus
def test_training_reproduces_the_shipped_model(tmp_path):
    out = tmp_path / "model.json"
    _script("train_findings").main(["--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(findings.MODEL_PATH.read_text())


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
