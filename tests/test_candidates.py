"""Machine-read numbers for curators (issue 17, item 5): `effect_candidates` from results papers'
abstracts, compared with the curated `effects` rows of the trials that have both."""

import pytest
import sqlite_utils
import yaml

from conftest import FIXTURES, rebuilt_committed_kb
from harvest import abstracts, candidates, pipeline, store


def read(text, results=True):
    """The sentence's candidate rows, without their empty columns."""
    return [{k: v for k, v in row.items() if v is not None} for row in candidates.read_sentence(text, results)]


# ------------------------------------------------------------------ sentences


def test_an_estimate_with_its_ci_p_value_and_outcome():
    assert read("The mean difference in pain between naltrexone and placebo was −0.34 (95% CI −0.95 to 0.27; "
                "p = 0.27).") == [
        {"measure": "md", "estimate": -0.34, "ci_low": -0.95, "ci_high": 0.27, "p_value": 0.27,
         "outcome": "pain_intensity"}]
    assert read("The SMD for fatigue was -0.61 [95% CI -1.0, -0.2], favouring LDN.") == [
        {"measure": "smd", "estimate": -0.61, "ci_low": -1.0, "ci_high": -0.2, "outcome": "fatigue"}]
    assert read("More patients responded to LDN than to placebo (OR 2.1 (1.2-3.5), P < .001).")[0] == {
        "measure": "or", "estimate": 2.1, "ci_low": 1.2, "ci_high": 3.5, "p_value_text": "<.001"}
    # An interval that does not contain its estimate was not its CI.
    assert read("The risk ratio was 1.4 (95% CI 0.2 to 0.9).") == [{"measure": "rr", "estimate": 1.4}]


def test_arm_figures_go_to_the_arm_named_beside_them_or_in_order():
    assert read("Mean FIQR scores at week 12 were 45.2 ± 12.1 with LDN versus 50.3 ± 13.4 with placebo "
                "(p = 0.04).") == [
        {"p_value": 0.04, "outcome": "fiq", "mean_ldn": 45.2, "sd_ldn": 12.1, "mean_comparator": 50.3,
         "sd_comparator": 13.4}]
    assert read("Fatigue scores were 30.1 (SD 8.2) and 33.4 (SD 9.0) in the placebo and naltrexone groups, "
                "respectively.") == [
        {"outcome": "fatigue", "mean_ldn": 33.4, "sd_ldn": 9.0, "mean_comparator": 30.1, "sd_comparator": 8.2}]
    assert read("Adverse events occurred in 12/30 (40%) on naltrexone and 9/31 (29%) on placebo.") == [
        {"measure": "responders", "outcome": "adverse_events", "events_ldn": 12, "n_ldn": 30,
         "events_comparator": 9, "n_comparator": 31}]
    # Methods sentences give only the numbers allocated to each arm.
    assert read("Of 99 women randomised, 49 received naltrexone and 50 received placebo.", results=False) == [
        {"n_ldn": 49, "n_comparator": 50}]


def test_what_cannot_be_told_apart_is_left_out_not_guessed():
    # one arm named only: no between-group figures
    assert read("Pain fell by 2.1 points on naltrexone (p = 0.01).") == []
    # baseline-to-follow-up pairs, scale ranges, weeks, doses and percentages are no arm means
    assert read("Pain on the 0-10 scale fell from 6.1 to 4.0 on LDN and from 6.0 to 5.2 on placebo at "
                "week 12.") == []
    assert read("Pain fell by 28.8% with naltrexone 4.5 mg and 18.0% with placebo after 8 weeks.") == []
    # no number after the label: nothing; a threshold is not an estimate
    assert read("There was no difference between LDN and placebo in sleep (p = 0.4).") == []
    assert read("The minimal clinically important difference of 2 points was not reached.") == []


# ------------------------------------------------------------------ kb.db


def test_candidates_come_from_results_papers_and_a_rerun_writes_nothing(tmp_path):
    db = sqlite_utils.Database(tmp_path / "kb.db")
    store.ensure_db_shape(db)
    sentence = "Pain was lower with LDN than placebo (mean difference -1.2, 95% CI -2.0 to -0.4)."
    for key, title in (("1", "Low-dose naltrexone for fibromyalgia: a randomised controlled trial"),
                       ("2", "Low-dose naltrexone for fibromyalgia: a systematic review and meta-analysis")):
        store.save_paper(db, {"pmid": key, "title": title, "year": 2022, "authors": [],
                              "abstract_sections": [{"label": "RESULTS", "text": sentence}]})
    pipeline.tag_papers(db)
    rows = list(db.query("select candidate_id, paper_id, measure, estimate, ci_low, ci_high, sentence "
                         "from effect_candidates"))
    assert rows == [{"candidate_id": "1#1", "paper_id": "1", "measure": "md", "estimate": -1.2, "ci_low": -2.0,
                     "ci_high": -0.4, "sentence": sentence}]
    changes = db.conn.total_changes
    pipeline.tag_papers(db)
    assert db.conn.total_changes == changes


@pytest.fixture(scope="module")
def with_abstracts(tmp_path_factory):
    """The committed kb.db rebuilt, then given our paraphrased abstracts of FINAL and INNOVA."""
    db = rebuilt_committed_kb(tmp_path_factory.mktemp("candidates") / "kb.db")
    pooled_before = list(db.query("select * from pooled_estimates order by outcome, method"))
    for entry, sections in yaml.safe_load((FIXTURES / "abstracts_final_innova.yml").read_text()).items():
        (key,) = db.execute("select paper_id from curated_entries where key = ?", [entry]).fetchone()
        db["abstract_sections"].insert_all(
            [{"paper_id": key, "position": i, "label": s["label"], "text": s["text"]} for i, s in enumerate(sections, 1)],
            pk=("paper_id", "position"))
    pipeline.tag_papers(db)
    return db, pooled_before


def agreement(db):
    """(curated numbers a candidate states too, curated numbers, candidate numbers no curated row has).

    A curated number agrees when a candidate of the same paper gives it in the same column, for the
    same outcome or a sentence naming none (arm sizes), and, for an estimate, the same measure."""
    papers = [row[0] for row in db.execute(
        "select paper_id from curated_entries where key in ('bruun-2024-final', 'rodriguezfreire-2026-innova')")]
    marks = ", ".join("?" for _ in papers)
    curated = list(db.query(f"select * from effects where paper_id in ({marks})", papers))
    found = list(db.query(f"select * from effect_candidates where paper_id in ({marks})", papers))

    def same(candidate, effect, column):
        return (candidate["paper_id"] == effect["paper_id"] and candidate[column] is not None
                and effect[column] is not None and abs(candidate[column] - effect[column]) < 1e-9
                and candidate["outcome"] in (None, effect["outcome"])
                and (column not in ("estimate", "ci_low", "ci_high") or candidate["measure"] == effect["measure"]))

    columns = candidates.NUMBER_COLUMNS
    stated = [(e, c) for e in curated for c in columns if e[c] is not None]
    agreed = sum(any(same(f, e, c) for f in found) for e, c in stated)
    unmatched = sum(1 for f in found for c in columns if f[c] is not None and not any(same(f, e, c) for e in curated))
    return agreed, len(stated), unmatched


def test_machine_read_numbers_agree_with_the_curated_effects_of_final_and_innova(with_abstracts):
    db, _ = with_abstracts
    # Counted by hand from the curated rows and our fixture. FINAL, 24 curated numbers, 18 found:
    # pain 8 of 8 (estimate, CI, p, two arm means, two arm sizes from the methods); adverse events
    # 4 of 4; withdrawals 2 of 4 (arm sizes; "four ... and three ... stopped" states no figure the
    # reader takes); responders and serious adverse events 2 of 4 each (arm sizes; the abstract
    # gives neither count). INNOVA, 16 curated numbers, 8 found: pain 4 of 8 (estimate, p, two
    # arm means; the curated CI and the ITT arm sizes 47 and 49 are not in the abstract, which
    # gives 48 and 50 randomised); adverse events 4 of 4; responders 0 of 4. The one machine-read
    # number no curated row holds is FINAL's Cohen's d 0.23 (the curator keeps it as authors_smd).
    assert agreement(db) == (26, 40, 1)


def test_candidates_are_never_pooled(with_abstracts):
    db, pooled_before = with_abstracts
    assert db["effect_candidates"].count >= 7
    assert list(db.query("select * from pooled_estimates order by outcome, method")) == pooled_before


def test_abstract_sentences_are_split_as_the_tagger_splits_them():
    found = abstracts.sentences([{"label": None, "text": "BACKGROUND: Pain is common. RESULTS: Pain fell "
                                                         "(p = 0.01). It fell more on LDN vs. placebo."}])
    assert [(s.section, s.text, s.results) for s in found] == [
        ("BACKGROUND", "Pain is common.", False),
        ("RESULTS", "Pain fell (p = 0.01).", True),
        ("RESULTS", "It fell more on LDN vs. placebo.", True),
    ]
