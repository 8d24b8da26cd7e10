"""The result reader: what a result statement says about an intervention's effect.

Given a statement ("Pain was lower with LDN than with placebo (p = 0.004)") and,
optionally, the intervention, comparator and outcome it is about, the reader
answers as the Evidence Inference corpus is labelled: the intervention
`significantly_increased` or `significantly_decreased` the outcome relative to
the comparator, or made `no_significant_difference`; or None when the text
states no result. It also says whether the statement compares the arms
(`between_groups`) or reports change within one (`within_group`).

Two layers. Rules (cues in vocabulary.yml, section `findings`) read p values,
confidence intervals, negations and which arm a comparative refers to. A
linear model trained on the Evidence Inference train split
(scripts/train_findings.py) weighs the words of the statement together with
the rules' readings; its weights ship in findings_model.json and are applied
here in plain Python, so reading needs no network and no scikit-learn.
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

MODEL_PATH = Path(__file__).with_name("findings_model.json")
FINDINGS = ("significantly_increased", "significantly_decreased", "no_significant_difference")

# Placeholders for the words naming the arms and the outcome.
INTERVENTION, COMPARATOR, OUTCOME = "INTV", "COMP", "OUTC"
_FIGURES = re.compile(r"\d+(?:[.·]\d+)?")
_WORD = re.compile(r"[a-z0-9α-ω]+(?:[-'][a-z0-9]+)*")
# Words too common in arm and outcome names to identify either.
_COMMON = frozenset("the a an of and or in on with to for at by from group groups arm arms patients "
                    "treatment therapy plus vs versus than mg dose daily who were was".split())


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
    """The vocabulary's `findings` section and significance rules, compiled
    once (by harvest.tag, which loads the vocabulary)."""

    def __init__(self, vocab: dict) -> None:
        f, d = vocab["findings"], vocab["direction"]
        self.up, self.down = frozenset(f["up"]), frozenset(f["down"])
        self.better, self.worse = frozenset(f["better"]), frozenset(f["worse_words"])
        self.down_nouns = frozenset(f["down_nouns"])
        self.reference = frozenset(f["reference"])
        self.comparator_words = frozenset(f["comparator_words"])
        self.null = words(f["no_difference"])
        self.significant = words(f["significant"])
        self.between = words(f["between"])
        self.within = words(f["within"])
        self.between_unless_within = words(f["between_unless_within"])
        # A clause whose p values all exceed alpha reports no difference; so
        # does one whose 95% CI spans no effect: zero, or one for a ratio.
        self.alpha = d["alpha"]
        # Case matters for abbreviations: "OR" is a ratio, "or" a conjunction.
        self.ratio = re.compile(rf"(?i:{words(d['ratio_cues']).pattern})|\b(?:{'|'.join(d['ratio_abbreviations'])})\b")
        decimal = r"[−+-]?\d*[.·]?\d+"
        self.p_value = Caseless(rf"\bp\s*(?P<op>[=<>≤≥]|&lt;|&gt;)\s*(?P<p>{decimal})")
        self.ci = Caseless(
            rf"(?:\bCI|confidence interval)[\s:,\[(]*(?P<lo>{decimal})%?\s*(?:to|,|;|–|—)\s*(?P<hi>{decimal})")


def default_cues() -> Cues:
    """The shipped vocabulary's cues (compiled by harvest.tag at import)."""
    from .tag import RULES  # the tagger imports this module, so not at top level
    return RULES.reader_cues



@lru_cache(maxsize=4096)  # arm and outcome names recur from statement to statement
def _key_words(name: str | None) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall((name or "").lower())
                     if w not in _COMMON and (len(w) > 2 or any(c.isdigit() for c in w)))


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
    counts = Counter(tokens)
    counts.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:]))
    counts.update(readings)
    return counts


class Model:
    """A multinomial logistic regression over sublinear TF-IDF features,
    L2-normalised, as scikit-learn computes them (see scripts/train_findings.py)."""

    def __init__(self, path: Path = MODEL_PATH) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.classes = data["classes"]
        if len(self.classes) != len(FINDINGS):
            raise ValueError(f"{path.name}: expected {len(FINDINGS)} classes, found {len(self.classes)}")
        self.intercept = data["intercept"]
        # feature -> (idf, weight of each class), flat for a fast inner loop
        self.weights = {feature: (idf, *coef) for feature, idf, coef in data["features"]}

    def predict(self, counts: Counter) -> str:
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
        totals = [i + t * scale for i, t in zip(self.intercept, (a, b, c))]
        return self.classes[totals.index(max(totals))]


class Reader:
    """Rules (from the vocabulary) plus, when given, the learned model."""

    def __init__(self, cues: Cues, model: Model | None) -> None:
        self.cues, self.model = cues, model
        self._memo: tuple = (None,)

    def _analysis(self, text: str) -> tuple:
        """(words, p values, significance readings, (between, within, weak between) phrase found)
        of a text, kept for the last text: the tagger reads one clause for several outcomes in a row."""
        if self._memo[0] != text:
            c, ps = self.cues, self.p_values(text)
            phrases = (bool(c.between.search(text)), bool(c.within.search(text)),
                       bool(c.between_unless_within.search(text)))
            self._memo = (text, _WORD.findall(text.lower()), ps, self.significance(text, ps), phrases)
        return self._memo[1:]

    def arm_tokens(self, text: str, intervention: str | None, comparator: str | None,
                   outcome: str | None) -> list[str]:
        """Lower-case words of the text, with words of the intervention's, the
        comparator's and the outcome's names replaced by placeholders (repeats
        collapsed), so "lower with r-FSH than HP-uFSH" and "lower with LDN than
        placebo" read alike. Generic comparator words ("placebo", "control")
        stand for the comparator when its name shares no word with the text."""
        arm_i, arm_c, named = _key_words(intervention), _key_words(comparator), _key_words(outcome)
        words = self._analysis(text)[0]
        if not arm_c & set(words):
            arm_c = arm_c | self.cues.comparator_words
        tokens: list[str] = []
        for word in words:
            if word in arm_i and word not in arm_c:
                word = INTERVENTION
            elif word in arm_c and word not in arm_i:
                word = COMPARATOR
            elif word in named:
                word = OUTCOME
            if not (tokens and tokens[-1] == word and word in (INTERVENTION, COMPARATOR, OUTCOME)):
                tokens.append(word)
        return tokens

    def _sign(self, tokens: list[str], i: int, polarity: str | None) -> int:
        """+1 / -1 when token i says higher / lower, 0 when it is no comparative."""
        c, token = self.cues, tokens[i]
        if polarity and (token in c.better or token in c.worse):
            return 1 if (token in c.better) == (polarity == "higher_better") else -1
        if token in c.up:
            following = set(tokens[i + 1:i + 4])
            if polarity and following & c.better:  # "larger improvements"
                return 1 if polarity == "higher_better" else -1
            return -1 if c.down_nouns & following else 1  # "greater reduction"
        if token in c.down:
            return 1 if token in ("less", "smaller") and c.down_nouns & set(tokens[i + 1:i + 2]) else -1
        return 0

    def direction(self, tokens: list[str], polarity: str | None = None) -> int:
        """+1 when a comparative says the intervention's outcome is higher than
        the comparator's, -1 lower, 0 when none is found.

        The comparative read is the one nearest the outcome's name, else the
        first. The arm it refers to is the one after a reference word ("lower
        than placebo": so the intervention, by contrast), else the nearest
        arm named.
        """
        signs = [(i, sign) for i in range(len(tokens)) if (sign := self._sign(tokens, i, polarity))]
        named = [k for k, token in enumerate(tokens) if token == OUTCOME]
        if named:
            signs.sort(key=lambda found: min(abs(found[0] - k) for k in named))
        for i, sign in signs[:1]:
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
        return [(m["op"].replace("&lt;", "<").replace("&gt;", ">"), statistic(m["p"]))
                for m in self.cues.p_value.finditer(text)]

    def significance(self, text: str, ps: list[tuple[str, float]]) -> list[str]:
        """Readings of significance: p values, confidence intervals, stated (non)significance."""
        c, found = self.cues, []
        if any(op in "<≤" and p <= c.alpha or op == "=" and p < c.alpha for op, p in ps):
            found.append("P_SIG")
        if any(op in ">≥" and p >= c.alpha or op == "=" and p > c.alpha for op, p in ps):
            found.append("P_NS")
        no_effect = 1 if c.ratio.search(text) else 0
        for m in c.ci.finditer(text):
            lo, hi = statistic(m["lo"]), statistic(m["hi"])
            found.append("CI_NULL" if lo < no_effect < hi else "CI_SIG")
        if c.null.search(text):
            found.append("NULL_CUE")
        if c.significant.search(text):
            found.append("SIG_CUE")
        return found

    def comparison(self, text: str, tokens: list[str]) -> str | None:
        """between_groups when both arms are named or a between-arm phrase is
        used; within_group for change over time in one arm; else None."""
        between, within, weak_between = self._analysis(text)[3]
        if (INTERVENTION in tokens and COMPARATOR in tokens) or between:
            return "between_groups"
        if within:
            return "within_group"
        return "between_groups" if weak_between else None

    def readings(self, text: str, tokens: list[str], polarity: str | None = None,
                 compared: str | None = "") -> list[str]:
        """The rules' readings of a statement; the model weighs them as features.
        (`compared`: the comparison, when already read.)"""
        found = list(self._analysis(text)[2])
        found.append({1: "DIR_UP", -1: "DIR_DOWN", 0: "DIR_NONE"}[self.direction(tokens, polarity)])
        found.append(f"CMP_{self.comparison(text, tokens) if compared == '' else compared}".upper())
        return found

    def read(self, text: str, intervention: str | None = None, comparator: str | None = None,
             outcome: str | None = None, polarity: str | None = None) -> Reading:
        tokens = self.arm_tokens(text, intervention, comparator, outcome)
        ps, compared = self._analysis(text)[1], self.comparison(text, tokens)
        readings = self.readings(text, tokens, polarity, compared)
        # No p value, interval, (non)significance, comparative or table row
        # of figures: no result stated.
        states_result = any(not r.startswith(("DIR_NONE", "CMP_")) for r in readings) \
            or len(_FIGURES.findall(text)) >= 4
        finding = None
        if states_result and self.model:
            finding = self.model.predict(features(tokens, readings * 2))
        if polarity and finding in FINDINGS[:2] and "DIR_NONE" not in readings:
            # The corpus's labels carry no outcome polarity ("improved" may be
            # either way); with it known, the rules' reading of the sign wins.
            finding = FINDINGS[0] if "DIR_UP" in readings else FINDINGS[1]
        p_value = f"{ps[0][0]} {ps[0][1]:g}" if ps else None
        return Reading(finding, compared, p_value, text)


_READER: Reader | None = None


def reader() -> Reader:
    """The shipped reader: the vocabulary's cues and findings_model.json, loaded on first use."""
    global _READER
    if _READER is None:
        _READER = Reader(default_cues(), Model())
    return _READER


def read(text: str, intervention: str | None = None, comparator: str | None = None,
         outcome: str | None = None, polarity: str | None = None) -> Reading:
    """What a result statement says about the intervention's effect on the
    outcome relative to the comparator. `polarity` (lower_better /
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
