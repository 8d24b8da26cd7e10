"""The result reader: what a paper says about an intervention's effect on an outcome.

Given a statement ("Pain was lower with LDN than with placebo (p = 0.004)") or a
whole title and abstract, and the intervention, comparator and outcome it is
about, the reader answers as the Evidence Inference corpus is labelled: the
intervention `significantly_increased` or `significantly_decreased` the
outcome relative to the comparator, or made `no_significant_difference`; or
None when the text states no result. It also says whether the statement used
compares the arms (`between_groups`) or reports change within one
(`within_group`), and which sentence it read (`evidence`).

Three layers, all shipped in findings_model.json and applied here in plain
Python (no network, no scikit-learn):
- rules (cues in vocabulary.yml, section `findings`) read p values,
  confidence intervals, negations and which arm a comparative refers to;
- a linear model, trained on the Evidence Inference sentence-level train split,
  weighs the words of a statement together with the rules' readings;
- a linear ranker, trained on the abstract-level train split, scores each
  sentence of an abstract as the one reporting the outcome's comparison (the
  outcome's and the arms' words in it, its section, p values, comparisons).
  The best-ranked sentences are read and their readings pooled, between-group
  statements before within-group ones.
scripts/train_findings.py learns both from the train splits only.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from .caseless import Caseless, words
from .sentences import LAYOUT, Sentence, paper_from_text
from .vocabulary import VOCABULARY

MODEL_PATH = Path(__file__).with_name("findings_model.json")
FINDINGS = ("significantly_increased", "significantly_decreased", "no_significant_difference")
BETWEEN, WITHIN = "between_groups", "within_group"
# Whole-abstract reading: how many of the best-ranked sentences are read, and
# how fast a lower rank loses weight when their readings are pooled (chosen by
# 5-fold cross-validation on the abstract-level train split, see train_findings.py).
READ_TOP = 3
RANK_TEMPERATURE = 1.0
# Sentences (of four words or more) that make a text an abstract, not one statement: every
# abstract of the corpus's train split has five, 10 of its 3,582 annotated statements do.
ABSTRACT_SENTENCES = 5

# Placeholders for the words naming the arms and the outcome.
INTERVENTION, COMPARATOR, OUTCOME = "INTV", "COMP", "OUTC"
_FIGURES = re.compile(r"\d+(?:[.·]\d+)?")
_WORD = re.compile(r"[a-z0-9α-ω]+(?:[-'][a-z0-9]+)*")
# Words too common in arm and outcome names to identify either.
_COMMON = frozenset("the a an of and or in on with to for at by from group groups arm arms patients "
                    "treatment therapy plus vs versus than mg dose daily who were was".split())
# "continuous lateral rotation (CLR)": an abbreviation defined in the text stands for its long form.
_DEFINED = re.compile(r"([A-Za-z][\w ,/-]{2,80}?)\s*\(([A-Za-z][\w/-]{1,12})\)")
_STEM = 5  # words compared on their first letters, so "infection" meets "infections", "infected"
# Where the phrase after a cue ends: "independent of the effect on mood, ..."
_PHRASE_END = re.compile(r"[,;:.()\[\]]")
_OPERATORS = {"&lt;": "<", "&gt;": ">", "<=": "≤", ">=": "≥"}
_BEFORE_AFTER = ("pre-", "post-")
_MEMO_SIZE = 64  # texts whose analysis is kept: more than one abstract's sentences and clauses
# Words that join a comparative to the outcome it qualifies: "reduction in pain", "better sleep".
_LINKS = frozenset(("of", "in", "the", "on"))
# Readings that are statistics: significance stated by a test, an interval or the authors.
_STATISTICS = frozenset(("P_SIG", "P_NS", "P_AT_ALPHA", "CI_SIG", "CI_NULL", "SIG_CUE"))


@dataclass
class Reading:
    finding: str | None
    comparison: str | None
    p_value: str | None
    evidence: str


def statistic(text: str) -> float:
    """A reported number; "·" (Lancet style) is a decimal point, "−" a minus."""
    return float(text.replace("·", ".").replace("−", "-"))


class Cues:
    """The vocabulary's `findings` section and significance rules, compiled once."""

    def __init__(self, vocab: dict) -> None:
        f, d = vocab["findings"], vocab["direction"]
        self.up, self.down = frozenset(f["up"]), frozenset(f["down"])
        self.better, self.worse = frozenset(f["better"]), frozenset(f["worse_words"])
        self.down_nouns = frozenset(f["down_nouns"])
        self.comparatives = self.up | self.down | self.better | self.worse
        self.reference = frozenset(f["reference"])
        self.comparator_words = frozenset(f["comparator_words"])
        self.arm_words = frozenset(f["arm_words"])
        self.null = words(f["no_difference"])
        self.significant = words(f["significant"])
        self.between = words(f["between"])
        self.within = words(f["within"])
        self.between_unless_within = words(f["between_unless_within"])
        self.covariate_before = words(f["covariate_before"])
        self.association = words(f["association"])
        self.baseline = words(f["baseline"])
        # one scan tells whether a statement needs the three above (most do not)
        self.any_no_comparison = words(f["covariate_before"] + f["association"] + f["baseline"])
        self.later_time = words(f["later_time"])
        # A clause whose p values all exceed alpha reports no difference; so
        # does one whose 95% CI spans no effect: zero, or one for a ratio.
        self.alpha = d["alpha"]
        # Case matters for abbreviations: "OR" is a ratio, "or" a conjunction.
        self.ratio = re.compile(rf"(?i:{words(d['ratio_cues']).pattern})|\b(?:{'|'.join(d['ratio_abbreviations'])})\b")
        decimal = r"[−+-]?\d*[.·]?\d+"
        # Texts without an operator, or without "CI", are not scanned for these (most clauses).
        self.p_value = Caseless(rf"\bp\s*(?P<op><=|>=|[=<>≤≥]|&lt;|&gt;)\s*(?P<p>{decimal})",
                                ("<", "=", ">", "≤", "≥", "&lt;", "&gt;"))
        self.ci = Caseless(
            rf"(?:\bCI|confidence interval)[\s:,\[(]*(?P<lo>{decimal})%?\s*(?:to|,|;|–|—)\s*(?P<hi>{decimal})",
            ("ci", "confidence interval"))


@lru_cache(maxsize=1)
def default_cues() -> Cues:
    """The shipped vocabulary's cues."""
    return Cues(VOCABULARY)


@lru_cache(maxsize=4096)  # arm and outcome names recur from statement to statement
def _key_words(name: str | None) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall((name or "").lower())
                     if w not in _COMMON and (len(w) > 2 or any(c.isdigit() for c in w)))


@lru_cache(maxsize=4096)
def _key_stems(name: str | None) -> frozenset[str]:
    return frozenset(w[:_STEM] for w in _key_words(name))


def _arm_after(tokens: list[str]) -> int:
    """+1 for the intervention, -1 for the comparator, 0 when the tokens name neither."""
    for token in tokens:
        if token == INTERVENTION:
            return 1
        if token == COMPARATOR:
            return -1
    return 0


def features(tokens: list[str], readings: list[str]) -> Counter:
    """Words and word pairs of the statement, plus the rules' readings."""
    return Counter(tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])] + readings)


class Model:
    """A multinomial logistic regression over sublinear TF-IDF features,
    L2-normalised, as scikit-learn computes them (see scripts/train_findings.py)."""

    def __init__(self, data: dict) -> None:
        self.classes = data["classes"]
        if len(self.classes) != len(FINDINGS):
            raise ValueError(f"{MODEL_PATH.name}: expected {len(FINDINGS)} classes, found {len(self.classes)}")
        self.intercept = data["intercept"]
        # feature -> (idf, weight of each class), flat for a fast inner loop
        self.weights = {feature: (idf, *coef) for feature, idf, coef in data["features"]}

    def scores(self, counts: Counter) -> list[float]:
        """Each class's score: intercept + weights · tf-idf, the tf-idf vector
        sublinear (1 + ln count) and L2-normalised."""
        weights, log = self.weights, math.log
        norm = a = b = c = 0.0
        for feature, count in counts.items():
            known = weights.get(feature)
            if known:
                idf, wa, wb, wc = known
                value = idf if count == 1 else (1 + log(count)) * idf
                norm += value * value
                a += value * wa
                b += value * wb
                c += value * wc
        # L2 normalisation scales every class's sum alike, so it is applied once at the end
        scale = 1 / (math.sqrt(norm) or 1.0)
        return [i + t * scale for i, t in zip(self.intercept, (a, b, c))]

    def probabilities(self, counts: Counter) -> dict[str, float]:
        return self.softmax(self.scores(counts))

    def softmax(self, scores: list[float]) -> dict[str, float]:
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        return {name: e / sum(exps) for name, e in zip(self.classes, exps)}


class Ranker:
    """A logistic regression scoring a sentence as the one that reports the
    outcome's comparison; features from Reader.rank_features."""

    def __init__(self, data: dict) -> None:
        self.intercept = data["intercept"]
        self.weights = data["weights"]

    def score(self, found: dict[str, float]) -> float:
        return self.intercept + sum(self.weights.get(name, 0.0) * value for name, value in found.items())


def load_model(path: Path = MODEL_PATH) -> tuple[Model, Ranker]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Model(data), Ranker(data["ranker"])


@dataclass
class Candidate:
    """A sentence that may report the result, the clause in it to read first
    (the outcome's, when the sentence reports several), and what it calls the
    outcome, its polarity and the comparator when they differ from the prompt's."""
    sentence: Sentence
    clause: tuple[int, int] | None = None
    outcome: str | None = None
    polarity: str | None = None
    comparator: str | None = None
    unstated: str | None = None  # what its statement naming no comparison counts as ("the pooled effect")


def defined_abbreviations(text: str) -> dict[str, frozenset[str]]:
    """Abbreviations defined in a text ("continuous lateral rotation (CLR)") -> stems of their long form."""
    found = {}
    for m in _DEFINED.finditer(text):
        short = m.group(2)
        letters = [c.lower() for c in short if c.isalpha()]
        if not letters or short.islower():
            continue
        long = _WORD.findall(m.group(1).lower())[-len(letters):]
        if long and long[0][0] == letters[0]:
            found[short.lower()[:_STEM]] = frozenset(w[:_STEM] for w in long if w not in _COMMON)
    return found


def _share(named: frozenset[str], stems: frozenset[str]) -> float:
    return len(named & stems) / len(named) if named else 0.0


class Reader:
    """Rules (from the vocabulary) plus, when given, the learned model and ranker."""

    def __init__(self, cues: Cues, model: Model | None, ranker: Ranker | None = None) -> None:
        self.cues, self.model, self.ranker = cues, model, ranker
        self._memo: dict[str, tuple] = {}
        self._tokens: dict[tuple, list[str]] = {}

    # ---------------------------------------------------------- one statement

    def _analysis(self, text: str) -> tuple:
        """(words, p values, significance readings, (between, within, weak between) phrase found)
        of a text, kept for the last few texts: the ranker and the reader look at the same
        sentences and clauses, and the tagger reads one clause for several outcomes."""
        found = self._memo.get(text)
        if found is None:
            c, ps = self.cues, self.p_values(text)
            phrases = (bool(c.between.search(text)), bool(c.within.search(text)),
                       bool(c.between_unless_within.search(text)))
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[text] = (_WORD.findall(text.lower()), ps, self.significance(text, ps), phrases)
        return found

    def arm_tokens(self, text: str, intervention: str | None, comparator: str | None,
                   outcome: str | None) -> list[str]:
        """Lower-case words of the text, with words of the intervention's, the
        comparator's and the outcome's names replaced by placeholders (repeats
        collapsed), so "lower with r-FSH than HP-uFSH" and "lower with LDN than
        placebo" read alike; "duloxetine-treated" names duloxetine. Generic
        comparator words ("placebo", "control") stand for the comparator when
        its name shares no word with the text."""
        key = (text, intervention, comparator, outcome)
        if key not in self._tokens:  # the same clause is read again for its comparison, and ranked
            if len(self._tokens) >= _MEMO_SIZE:
                self._tokens.clear()
            self._tokens[key] = self._arm_tokens(text, intervention, comparator, outcome)
        return self._tokens[key]

    def _arm_tokens(self, text: str, intervention: str | None, comparator: str | None,
                    outcome: str | None) -> list[str]:
        arm_i, arm_c, named = _key_words(intervention), _key_words(comparator), _key_words(outcome)
        words = self._analysis(text)[0]
        if arm_c.isdisjoint(words):
            arm_c = arm_c | self.cues.comparator_words
        tokens: list[str] = []
        runs: list[tuple[int, list]] = []  # (token index, outcome words) of each run naming the outcome
        placeholders = (INTERVENTION, COMPARATOR, OUTCOME)
        names = arm_i | arm_c | named
        for word in words:
            if word not in names and "-" not in word:  # most words: kept as they are
                tokens.append(word)
                continue
            in_i, in_c = word in arm_i, word in arm_c
            if "-" in word and not (in_i or in_c):  # a name inside a hyphenated word
                parts = word.split("-")
                in_i, in_c = not arm_i.isdisjoint(parts), not arm_c.isdisjoint(parts)
            if in_i and not in_c:
                if word.startswith(_BEFORE_AFTER):  # "post-LDN": after the intervention, as against before
                    tokens.append(word.split("-")[0])
                word = INTERVENTION
            elif in_c and not in_i:
                word = COMPARATOR
            elif word in named:
                if tokens[-2:-1] == [OUTCOME] and tokens[-1] in _LINKS:  # "summation of pain": one name
                    tokens.pop()
                if tokens and tokens[-1] == OUTCOME:
                    runs[-1][1].append(word)
                else:
                    runs.append((len(tokens), [word]))
                word = OUTCOME
            if not (tokens and tokens[-1] == word and word in placeholders):
                tokens.append(word)
        # A run naming fewer of the outcome's words than another names something
        # else ("temporal summation of pain" beside "pressure pain thresholds").
        most = max((len(set(found)) for _, found in runs), default=0)
        for at, found in runs:
            if len(set(found)) < most:
                tokens[at] = found[0]
        return tokens

    def _sign(self, tokens: list[str], i: int, polarity: str | None) -> int:
        """+1 / -1 when token i says higher / lower, 0 when it is no comparative."""
        c, token = self.cues, tokens[i]
        if polarity and (token in c.better or token in c.worse):
            return 1 if (token in c.better) == (polarity == "higher_better") else -1
        if token == "more":  # "improved significantly more", "fell more": the verb's sense
            before = set(tokens[max(0, i - 2):i])
            if polarity and c.better & before:
                return 1 if polarity == "higher_better" else -1
            if c.down & before:
                return -1
        if token in c.up:
            following = set(tokens[i + 1:i + 4])
            if polarity and following & c.better:  # "larger improvements"
                return 1 if polarity == "higher_better" else -1
            return -1 if c.down_nouns & following else 1  # "greater reduction"
        if token in c.down:
            return 1 if token in ("less", "smaller") and c.down_nouns & set(tokens[i + 1:i + 2]) else -1
        return 0

    def direction(self, tokens: list[str], polarity: str | None = None, by_arm: bool = True) -> int:
        """+1 when a comparative says the intervention's outcome is higher than
        the comparator's, -1 lower, 0 when none is found (with `by_arm` False:
        higher or lower than before, whichever arm is named).

        The comparative read is one just before the outcome's name ("better
        sleep", "easing of pain"), else the one nearest it, else the first. The
        arm it refers to is the one after a reference word ("lower than
        placebo": so the intervention, by contrast), else the nearest arm named.
        """
        comparatives = self.cues.comparatives
        if comparatives.isdisjoint(tokens):  # most clauses: nothing to weigh
            return 0
        signs = [(i, sign) for i, token in enumerate(tokens)
                 if token in comparatives and (sign := self._sign(tokens, i, polarity))]
        named = [k for k, token in enumerate(tokens) if token == OUTCOME]
        if named:
            signs.sort(key=lambda found: (not any(k > found[0] and set(tokens[found[0] + 1:k]) <= _LINKS
                                                  for k in named), min(abs(found[0] - k) for k in named)))
        for i, sign in signs[:1]:
            if not by_arm:
                return sign
            left, right = tokens[max(0, i - 14):i], tokens[i + 1:i + 14]
            if tokens[i] in ("superior", "inferior") and right[:1] == ["to"] and (arm := _arm_after(right[1:6])):
                return -sign * arm
            for j, word in enumerate(right):
                if word in self.cues.reference and (arm := _arm_after(right[j + 1:j + 6])):
                    return -sign * arm
            for j in range(len(left) - 1, -1, -1):
                if left[j] in self.cues.reference:
                    if arm := _arm_after(left[j + 1:j + 6]):
                        return -sign * arm
                    break
            # Nearest arm; on a tie the one before (the subject: "LDN was lower ... placebo").
            near = [(i - k, 0, 1 if w == INTERVENTION else -1) for k, w in enumerate(left)
                    if w in (INTERVENTION, COMPARATOR)]
            near += [(k + 1, 1, 1 if w == INTERVENTION else -1) for k, w in enumerate(right)
                     if w in (INTERVENTION, COMPARATOR)]
            return sign * (min(near)[2] if near else 1)
        return 0

    def p_values(self, text: str) -> list[tuple[str, float]]:
        return [(_OPERATORS.get(m["op"], m["op"]), statistic(m["p"])) for m in self.cues.p_value.finditer(text)]

    def significance(self, text: str, ps: list[tuple[str, float]]) -> list[str]:
        """Readings of significance: p values, confidence intervals, stated (non)significance.

        Significant means below alpha: "p < 0.05" and "p = 0.049" are, "p = 0.05"
        exactly is not (P_AT_ALPHA: the p value alone does not make it so)."""
        c, found = self.cues, []
        if any(op in "<≤" and p <= c.alpha or op == "=" and p < c.alpha for op, p in ps):
            found.append("P_SIG")
        if any(op in ">≥" and p >= c.alpha or op == "=" and p > c.alpha for op, p in ps):
            found.append("P_NS")
        if any(op == "=" and p == c.alpha for op, p in ps):
            found.append("P_AT_ALPHA")
        intervals = list(c.ci.finditer(text))
        no_effect = 1 if intervals and c.ratio.search(text) else 0  # the ratio scan is slow: only for intervals
        for m in intervals:
            lo, hi = statistic(m["lo"]), statistic(m["hi"])
            found.append("CI_NULL" if lo < no_effect < hi else "CI_SIG")
        if c.null.search(text):
            found.append("NULL_CUE")
        if c.significant.search(text):
            found.append("SIG_CUE")
        return found

    def comparison(self, text: str, tokens: list[str]) -> str | None:
        """between_groups when both arms are named or a between-arm phrase is
        used; within_group for change over time in one arm ("from baseline",
        "post-LDN"); else None."""
        between, within, weak_between = self._analysis(text)[3]
        if (INTERVENTION in tokens and COMPARATOR in tokens) or between:
            return BETWEEN
        if within or ("pre" in tokens or "post" in tokens) and any(  # the pairs only when they may be there
                a in ("pre", "post") and b == INTERVENTION for a, b in zip(tokens, tokens[1:])):
            return WITHIN
        return BETWEEN if weak_between else None

    def readings(self, text: str, tokens: list[str], polarity: str | None = None,
                 compared: str | None = "") -> list[str]:
        """The rules' readings of a statement; the model weighs them as features.
        (`compared`: the comparison, when already read.)"""
        found = list(self._analysis(text)[2])
        found.append({1: "DIR_UP", -1: "DIR_DOWN", 0: "DIR_NONE"}[self.direction(tokens, polarity)])
        found.append(f"CMP_{self.comparison(text, tokens) if compared == '' else compared}".upper())
        return found

    def states_no_comparison(self, text: str, tokens: list[str], outcome: str | None, compared: str | None) -> bool:
        """Whether the statement links the outcome to something other than the
        arms: the outcome named only after "independent of", "regardless of"...;
        an association that compares no arms; or the groups at baseline."""
        c = self.cues
        if not c.any_no_comparison.search(text):
            return False
        named = _key_words(outcome)
        for m in c.covariate_before.finditer(text):  # the outcome named only after the cue
            after = set(_WORD.findall(_PHRASE_END.split(text[m.end():m.end() + 50])[0].lower()))
            if named & after and not named & set(_WORD.findall(text[:m.start()].lower())):
                return True
        if compared != BETWEEN and c.association.search(text) \
                and not (c.arm_words | {INTERVENTION, COMPARATOR}) & set(tokens):
            return True
        return bool(c.baseline.search(text)) and not c.later_time.search(text)

    def judge(self, text: str, intervention: str | None = None, comparator: str | None = None,
              outcome: str | None = None, polarity: str | None = None,
              unstated: str | None = None) -> tuple[Reading, dict | list]:
        """A statement's reading, and what it votes for when readings are pooled: the
        model's class scores, or the rules' finding with certainty (empty when none).

        `unstated`: what a statement naming no comparison counts as. A change
        within one group stated without statistics (as case reports and series
        state them) is read by the rules alone: its comparative, or its
        negation; the model learned significance between groups."""
        tokens = self.arm_tokens(text, intervention, comparator, outcome)
        ps, compared = self._analysis(text)[1], self.comparison(text, tokens)
        readings = self.readings(text, tokens, polarity, compared)
        p_value = f"{ps[0][0]} {ps[0][1]:g}" if ps else None
        # No p value, interval, (non)significance, comparative or table row
        # of figures: no result stated.
        states_result = any(not r.startswith(("DIR_NONE", "CMP_")) for r in readings) \
            or len(_FIGURES.findall(text)) >= 4
        if not (states_result and self.model) or self.states_no_comparison(text, tokens, outcome, compared):
            return Reading(None, compared, p_value, text), {}
        said = set(readings)
        if (compared or unstated) == WITHIN and not said & _STATISTICS:
            finding = FINDINGS[2] if "NULL_CUE" in said else \
                {1: FINDINGS[0], -1: FINDINGS[1]}.get(self.direction(tokens, polarity, by_arm=False))
            return Reading(finding, compared, p_value, text), {name: float(name == finding) for name in FINDINGS}
        scores = self.model.scores(features(tokens, readings * 2))
        finding = modelled = self.model.classes[scores.index(max(scores))]
        if polarity and finding in FINDINGS[:2] and "DIR_NONE" not in readings:
            # The corpus's labels carry no outcome polarity ("improved" may be
            # either way); with it known, the rules' reading of the sign wins.
            finding = FINDINGS[0] if "DIR_UP" in readings else FINDINGS[1]
        significant = said & {"P_SIG", "CI_SIG"} or ("SIG_CUE" in said and "NULL_CUE" not in said)
        if not significant and said & {"P_NS", "CI_NULL", "P_AT_ALPHA"}:
            # Only evidence of no difference: p at or above alpha (p = alpha is not below
            # it), or an interval spanning no effect, and the authors call nothing significant.
            finding = FINDINGS[2]
        if finding != modelled:  # the rules overruled the model: the pooled vote follows them
            return Reading(finding, compared, p_value, text), {name: float(name == finding) for name in FINDINGS}
        return Reading(finding, compared, p_value, text), scores

    def read_statement(self, text: str, intervention: str | None = None, comparator: str | None = None,
                       outcome: str | None = None, polarity: str | None = None) -> Reading:
        return self.judge(text, intervention, comparator, outcome, polarity)[0]

    def read_in_sentence(self, candidate: Candidate, intervention: str | None, comparator: str | None,
                         outcome: str | None, polarity: str | None,
                         unstated: str | None = None) -> tuple[Reading, dict | list]:
        """A candidate's reading: its clause's, else its sentence's ("LDN improved
        mood but not fatigue": fatigue's clause is "not fatigue"). Whether the arms
        are compared is read from the whole sentence when the clause does not say."""
        text = candidate.sentence.text
        unstated = candidate.unstated or unstated
        args = (intervention, candidate.comparator or comparator, candidate.outcome or outcome,
                candidate.polarity or polarity, unstated)
        whole = (0, len(text))
        if candidate.clause in (None, whole):
            return self.judge(text, *args)
        part, votes = self.judge(text[candidate.clause[0]:candidate.clause[1]], *args)
        if not part.finding:
            reading, votes = self.judge(text, *args)
            return Reading(reading.finding, part.comparison or reading.comparison, reading.p_value, text), \
                votes
        compared = part.comparison or self.comparison(text, self.arm_tokens(text, *args[:3]))
        if compared == WITHIN:  # "rose from baseline in both periods, but the change did not differ between..."
            reading, whole_votes = self.judge(text, *args)
            if reading.finding and reading.comparison == BETWEEN:
                return reading, whole_votes
        return Reading(part.finding, compared, part.p_value, text), votes

    # -------------------------------------------------------- whole abstracts

    def rank_features(self, candidates: list[Candidate], intervention: str | None, comparator: str | None,
                      outcome: str | None, defined: dict[str, frozenset[str]] | None = None) -> list[dict]:
        """What the ranker weighs for each candidate sentence: how much of the
        outcome's and the arms' names it shares (against the best sentence's
        share), its section and place, and whether it states a result or a
        comparison."""
        arm_i = _key_stems(intervention)
        found, shares = [], []
        for candidate in candidates:
            sentence, arm_c = candidate.sentence, _key_stems(candidate.comparator or comparator)
            stems = sentence.memo.get("stems")
            if stems is None:
                stems = frozenset(w[:_STEM] for w in _WORD.findall(sentence.text.lower()))
                if defined:
                    stems = stems.union(*(defined[s] for s in stems if s in defined))
                sentence.memo["stems"] = stems
            shares.append(_share(_key_stems(candidate.outcome or outcome), stems))
            text = sentence.text
            _, _, significance, (between, within, _) = self._analysis(text)
            i_share, c_share = _share(arm_i, stems), _share(arm_c, stems)
            figures = len(_FIGURES.findall(text))
            f = {f"section_{sentence.kind}": 1.0, "position": sentence.position, "length": min(len(text), 400) / 400,
                 "figures": min(figures, 10) / 10, "intervention": i_share, "comparator": c_share,
                 "both_arms": float(i_share > 0 and c_share > 0), "between": float(between),
                 "within": float(within and not between)}
            f.update((reading, 1.0) for reading in significance)
            found.append(f)
        best = max(shares, default=0.0)
        for f, share, candidate in zip(found, shares, candidates):
            results = candidate.sentence.kind in ("results", "unlabelled", "conclusions")
            states = any(k in f for k in ("P_SIG", "P_NS", "CI_SIG", "CI_NULL", "NULL_CUE", "SIG_CUE"))
            f.update(outcome=share, outcome_gap=share - best, outcome_best=float(share == best and best > 0),
                     outcome_in_results=share * results, outcome_with_result=share * states)
        return found

    def read_candidates(self, candidates: list[Candidate], intervention: str | None, comparator: str | None,
                        outcome: str | None, polarity: str | None = None, *, unstated: str | None = None,
                        within: bool = True, defined: dict | None = None) -> tuple[Reading | None, Candidate | None]:
        """The finding the best-ranked candidates state, and the candidate it was read from.

        The READ_TOP best-ranked candidates are read. Between-group readings
        answer when there are any; within-group ones only when there are none
        and `within` allows them. `unstated`: what a reading that names no
        comparison counts as (between_groups in a controlled study, within_group
        in an uncontrolled one). The answer is the readings' vote, each weighed
        by its rank and the model's confidence; the evidence is the best-ranked
        candidate stating it.
        """
        if not candidates:
            return None, None
        if len(candidates) == 1:  # most outcomes in most abstracts: nothing to rank or pool
            reading, _ = self.read_in_sentence(candidates[0], intervention, comparator, outcome, polarity, unstated)
            reading.comparison = reading.comparison or candidates[0].unstated or unstated
            if reading.comparison == WITHIN and not within:
                reading.finding = None
            return reading, candidates[0]
        if self.ranker and len({id(c.sentence) for c in candidates}) > 1:
            scores = [self.ranker.score(f) for f in self.rank_features(candidates, intervention, comparator,
                                                                       outcome, defined)]
        else:
            scores = [0.0] * len(candidates)
        order = sorted(range(len(candidates)), key=lambda k: -scores[k])
        read = []
        for k in order[:READ_TOP]:
            reading, votes = self.read_in_sentence(candidates[k], intervention, comparator, outcome, polarity,
                                                           unstated)
            reading.comparison = reading.comparison or candidates[k].unstated or unstated
            read.append((k, reading, votes))
        stated, seen = [], set()
        for k, reading, votes in read:
            # one reading per sentence: its first clause stating one ("IL-6 was lower..., whereas TNF-alpha...")
            if reading.finding and id(candidates[k].sentence) not in seen:
                seen.add(id(candidates[k].sentence))
                stated.append((k, reading, votes))
        between = [r for r in stated if r[1].comparison != WITHIN]
        chosen = between or (stated if within else [])
        if not chosen:
            k, reading, _ = read[0]
            return Reading(None, reading.comparison, reading.p_value, reading.evidence), candidates[k]
        pooled = dict.fromkeys(FINDINGS, 0.0)
        for k, _reading, votes in chosen:
            weight = math.exp(RANK_TEMPERATURE * (scores[k] - scores[chosen[0][0]]))
            for name, p in (votes if isinstance(votes, dict) else self.model.softmax(votes)).items():
                pooled[name] += weight * p
        finding = max(pooled, key=pooled.get)
        k, reading, _ = next((r for r in chosen if r[1].finding == finding), chosen[0])
        return Reading(finding, reading.comparison, reading.p_value, reading.evidence), candidates[k]

    def read_abstract(self, text: str, intervention: str | None = None, comparator: str | None = None,
                      outcome: str | None = None, polarity: str | None = None) -> Reading:
        """The finding a title + abstract states, from the sentences that report the outcome's comparison."""
        sentences = LAYOUT.sentences(paper_from_text(text))
        candidates = [Candidate(sentence) for sentence in sentences]
        reading, _ = self.read_candidates(candidates, intervention, comparator, outcome, polarity,
                                          defined=defined_abbreviations(text))
        return reading or Reading(None, None, None, "")

    def read(self, text: str, intervention: str | None = None, comparator: str | None = None,
             outcome: str | None = None, polarity: str | None = None) -> Reading:
        """A statement's reading; a text of ABSTRACT_SENTENCES sentences or more is read as an abstract
        (a statement may run to a few sentences, or to table rows, one a line)."""
        if sum(len(text[s:e].split()) >= 4 for s, e in LAYOUT.split(text)) >= ABSTRACT_SENTENCES:
            return self.read_abstract(text, intervention, comparator, outcome, polarity)
        return self.read_statement(text, intervention, comparator, outcome, polarity)


_READER: Reader | None = None


def reader() -> Reader:
    """The shipped reader: the vocabulary's cues and findings_model.json, loaded on first use."""
    global _READER
    if _READER is None:
        _READER = Reader(default_cues(), *load_model())
    return _READER


def read(text: str, intervention: str | None = None, comparator: str | None = None,
         outcome: str | None = None, polarity: str | None = None) -> Reading:
    """What a statement, or a title + abstract, says about the intervention's
    effect on the outcome relative to the comparator. `polarity` (lower_better /
    higher_better) lets "improved" and "worse" count as a decrease or an increase."""
    return reader().read(text, intervention, comparator, outcome, polarity)


def read_json_line(line: str) -> dict:
    """One `kb read-finding` answer for one JSON input line."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg.removesuffix(' at')} at column {error.colno})") from None
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise ValueError('needs a JSON object with a "text" string')
    fields = {k: item.get(k) for k in ("intervention", "comparator", "outcome")}
    wrong = [k for k, v in fields.items() if v is not None and not isinstance(v, str)]
    if wrong:
        raise ValueError(f'"{wrong[0]}" must be a string or null')
    return asdict(read(item["text"], **fields))
