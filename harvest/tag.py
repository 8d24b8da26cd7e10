"""Deterministic, vocabulary-driven tagging of one paper.

A paper is tagged with its study design, naltrexone doses, outcomes (with the
direction of effect where the text states one), adverse events, sample size,
treatment duration, comparator, population and trial-registry ids. Every tag
carries the sentence it was read from and that sentence's offsets in its
section, or the PubMed publication type / MeSH heading it came from.

All terms live in vocabulary.yml; this module only holds the grammar that
combines them. The vocabulary is loaded and compiled once, at import.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from . import findings
from .caseless import Caseless, alternation, needed_literals, words
from .sentences import Layout, Sentence, paper_from_text, split_inline_sections  # noqa: F401 (public here too)
from .vocabulary import VOCABULARY, VOCABULARY_HASH, VOCABULARY_PATH, load_vocabulary  # noqa: F401

# Bump when the rules in this file or in findings.py change; the vocabulary and
# result-reader model hashes cover edits to those files.
RULES_VERSION = "3.0"


# ----------------------------------------------------------------- regex kit

def _joiners(joiners) -> list[str]:
    """Joining words or symbols as regex fragments; words must end at a boundary."""
    return [j + r"\b" if j.isalpha() else re.escape(j) for j in joiners]


class Labelled:
    """Phrases that each carry a label (an outcome, a drug kind, an event name).

    Text is scanned with one plain alternation, longest phrase first so that
    "pressure pain threshold" beats its substring "pain"; the label of a hit is
    then the first phrase that matches the hit's text in full. (A regex with one
    named group per phrase would say which matched, but runs about 6x slower.)
    """

    def __init__(self, entries) -> None:
        entries = sorted(entries, key=lambda e: len(e[1]), reverse=True)
        self.pattern = words([phrase for _, phrase in entries])
        self.entries = [(label, Caseless(phrase)) for label, phrase in entries]
        self.labels: dict[str, object] = {}

    def label_of(self, hit: str):
        key = hit.lower()
        if key not in self.labels:
            self.labels[key] = next((label for label, p in self.entries if p.fullmatch(hit)), None)
        return self.labels[key]

    def matches(self, text: str) -> list[tuple[object, re.Match]]:
        found = []
        for m in self.pattern.finditer(text):
            label = self.label_of(m.group())
            if label is not None:
                found.append((label, m))
        return found


def _blank(text: str, spans) -> str:
    """Text with the spans replaced by spaces, so offsets stay valid."""
    if not spans:
        return text  # the same string: its lower-cased copy is reused (caseless.lower)
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


# ----------------------------------------------------------- compiled rules

@dataclass
class Outcome:
    value: str
    polarity: str
    instrument: str | None = None
    needs_cue: bool = True


class Rules:
    """The vocabulary compiled into regexes; built once per vocabulary."""

    def __init__(self, vocab: dict) -> None:
        self.vocab = v = vocab
        self.layout = Layout(v)
        self.speculative = words(v["sections"]["speculative_cues"])
        self.own_study = words(v["sections"]["own_study_cues"], r"\s+(?:[\w-]+\s+){0,3}$")
        self._compile_numbers(v["numbers"])
        self._compile_design(v["design"])
        self.publication_types = v["publication_types"]
        self.mesh = v["mesh"]
        self._compile_drugs_and_doses(v["drugs"], v["doses"])
        self._compile_outcomes(v)
        self._compile_adverse_events(v)
        self._compile_sample_size(v["sample_size"])
        self._compile_duration(v["duration"])  # after doses: shares the range joiners
        self._compile_comparator(v["comparator"], v["drugs"]["other"])
        self._compile_arms(v["arms"], v["drugs"])
        self._compile_population(v["population"])
        self.registry_ids = re.compile("|".join(f"(?:{p})" for p in v["registry_ids"]))

    def _compile_numbers(self, numbers: dict) -> None:
        self.number_values = {**numbers["units"], **numbers["tens"], **numbers["multipliers"]}
        self.number_multipliers = numbers["multipliers"]
        word = alternation(self.number_values)
        words = rf"{word}(?:(?:[\s-]+|\s+and\s+){word})*"
        # A count or a duration: digits ("1,012", "4.5") or number words ("thirty-one"),
        # at a word's start (tested once, first: most positions fail it).
        digits = r"(?<![.,·/:-])(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\d·]|[.,]\d)"
        self.count_number = rf"(?<!\w)(?:{digits}|{words}(?!\w))"

    def _compile_design(self, design: dict) -> None:
        self.design_rules = [(rule["values"], words(rule["phrases"])) for rule in design["rules"]]
        # One scan tells whether a sentence needs the ordered rules at all.
        self.any_design_cue = words([p for rule in design["rules"] for p in rule["phrases"]])
        self.design_priority = design["priority"]
        self.design_suppressed_by = design["suppressed_by"]
        self.without_own_sample = set(design["without_own_sample"])
        self.without_comparator = set(design["without_comparator"])
        self.about_another_paper = set(design["about_another_paper"])
        self.pooled_doses = set(design["pooled_doses"])

    def _compile_drugs_and_doses(self, drugs: dict, doses: dict) -> None:
        entries = [("target", p) for p in drugs["target"]] + [("other", p) for p in drugs["other"]]
        self.drug = Labelled(entries)
        self.unit_mg = {Caseless(p + "$"): mg for p, mg in doses["mass_units"].items()}
        number = r"\d+(?:[.,·]\d+)?"
        between = doses["between_range"]
        joiner = alternation(_joiners(doses["range_joiners"] + doses["list_joiners"] + [between["joiner"]]))
        per_kg = alternation(doses["per_kg"])
        per_day = alternation(doses["per_day"])
        frequency = alternation(doses["frequency"])
        # A dose starts with a number: sentences without a digit are not scanned.
        self.dose = Caseless(
            rf"(?<![\w.,·])(?P<nums>{number}(?:\s*{joiner}\s*{number})*)\s*"
            rf"(?P<unit>{alternation(doses['mass_units'])})(?!\w)"
            rf"(?P<kg>\s*{per_kg})?(?P<rate>\s*{per_day}(?!\w))?(?P<freq>\s+{frequency}(?!\w))?",
            tuple("0123456789"))
        self.dose_number = re.compile(number)
        # At most two words, none of them a coordinator, between a dose and the drug named after it.
        coordinator = alternation(doses["not_between_dose_and_drug"])
        self.dose_then_drug = Caseless(rf"\s*(?:(?!{coordinator}\b)[a-z-]+\s+){{0,2}}")
        self.range_joiner = Caseless(r"\s*" + alternation(_joiners(doses["range_joiners"])) + r"\s*")
        self.range_inside = Caseless(r"\d\s*" + alternation(_joiners(doses["range_joiners"])) + r"\s*\d")
        self.between_opener = Caseless(rf"(?<!\w){between['opener']}\s*$")
        self.between_joiner = Caseless(rf"\s*{between['joiner']}\s*")
        self.not_a_dose = Caseless(r"\s*" + alternation(doses["not_a_dose_after"]))
        self.frequency = [(Caseless(p), n) for p, n in doses["frequency"].items()]
        self.titration = words(doses["titration_cues"])
        self.continuation = words(doses["continuation_cues"], r"\s*$")
        self.bands = doses["bands"]

    def _compile_outcomes(self, v: dict) -> None:
        entries = []
        for value, spec in v["outcomes"].items():
            needs_cue = spec.get("needs_cue", True)
            for phrase in spec["phrases"]:
                if isinstance(phrase, dict):
                    entries.append((Outcome(value, phrase["polarity"], None, needs_cue), phrase["phrase"]))
                else:
                    entries.append((Outcome(value, spec["polarity"], None, needs_cue), phrase))
            for instrument, phrases in spec["instruments"].items():
                entries += [(Outcome(value, spec["polarity"], instrument, False), p) for p in phrases]
        self.outcome = Labelled(entries)
        self.outcome_masks = words(v["outcome_masks"])
        self.outcome_cue = words(v["outcome_cues"])
        self.non_result = words(v["non_result_cues"])
        # Symbols, then words as whole words: one word boundary test for all
        # the words is much faster than one per word.
        symbols = [b for b in v["clause_breaks"] if not b.isalpha()]  # regex fragments
        word_breaks = words([b for b in v["clause_breaks"] if b.isalpha()]).pattern
        self.clause_break = Caseless(alternation(symbols + [word_breaks]))
        d = v["direction"]
        self.result_cues = (self.outcome_cue, words(d["null_before"] + d["null_clause"] + d["worse"] + d["improved"]
                                                     + d["decrease"] + d["increase"]))
        self.controlled_designs = set(d["controlled_designs"])
        self.no_direction_designs = set(d["none_for_designs"])
        self.uncontrolled_designs = set(d["uncontrolled_designs"])
        self.pooled_designs = set(d["pooled_for_designs"])
        self.pooled_cue = words(d["pooled_cues"])
        self.between_only_outcomes = set(d["between_only_outcomes"])

    def _compile_adverse_events(self, v: dict) -> None:
        entries = [((name, spec.get("needs_cue", False)), p)
                   for name, spec in v["adverse_events"].items() for p in spec["phrases"]]
        self.adverse_event = Labelled(entries)
        self.adverse_events_outcome = Outcome(v["adverse_events_outcome"], "lower_better")
        self.adverse_event_cue = words(v["adverse_event_cues"]["anywhere"])
        self.adverse_event_reason = words(v["adverse_event_cues"]["before_name"])
        self.adverse_event_negation = words(v["adverse_event_negations"], r"\s+(?:\w+\s+){0,3}$")

    def _compile_sample_size(self, s: dict) -> None:
        gap = rf"(?:\s+[\w-]+){{0,{s['max_words_between']}}}?"
        nouns = alternation(s["nouns"])
        auxiliary = alternation(s["auxiliaries"])
        role_cues = alternation([cue for cues in s["roles"].values() for cue in cues])
        # "31 women", "84 of 97 screened patients", or a bare count before a role: "104 completed".
        self.count = Caseless(
            rf"(?P<num>{self.count_number})(?:\s+of\s+(?:the\s+)?{self.count_number})?"
            rf"(?:{gap}\s+{nouns}(?!\w)|\s+(?:{auxiliary}\s+)?(?={role_cues}\b))")
        self.count_roles = [(role, words(cues)) for role, cues in s["roles"].items()]
        self.not_a_count = Caseless(alternation(s["not_after_number"]))
        self.subgroup = re.compile(alternation(s["subgroup_after"]))
        self.group_size = re.compile(s["group_size"])
        self.total_count = re.compile(s["total"])
        self.segment_break = re.compile(r"[,;]")

    def _compile_duration(self, d: dict) -> None:
        self.weeks_per_unit = {Caseless(p + "$"): w for p, w in d["weeks_per_unit"].items()}
        # Every duration names a unit: sentences without one are not scanned.
        self.duration = Caseless(
            rf"(?P<num>{self.count_number})(?:{self.range_joiner.pattern}(?P<num2>{self.count_number}))?[\s-]*"
            rf"(?P<unit>{alternation(d['weeks_per_unit'])})(?!\w)", needed_literals(d["weeks_per_unit"]))
        self.duration_right_after = words(d["not_right_after"], r"\s*$")
        self.duration_in_phrase = words(d["not_in_phrase_with"])
        self.duration_followed_by = words(d["not_followed_by"])

    def _compile_comparator(self, c: dict, other_drugs) -> None:
        other = alternation(other_drugs)
        self.placebo = words(c["placebo"])
        self.active = words([p.replace("{other_drug}", other) for p in c["active"]])
        self.none_designs = set(c["none_designs"])

    def _compile_arms(self, a: dict, drugs: dict) -> None:
        self.non_drug = Labelled([("named", p) for p in a["non_drug"]])
        self.comparator_before = words(a["comparator_before"], r"\s+(?:[\w-]+\s+){0,2}$")
        self.title_intervention = Caseless(
            rf"^\s*(?:{alternation(a['title_openings'])}\s+)?(?P<name>[\w-]+(?:\s+[\w-]+){{0,3}}?)\s+"
            rf"{alternation(a['title_closings'])}(?!\w)")
        self.placebo_name = a["placebo_name"]

    def _compile_population(self, p: dict) -> None:
        self.population = Labelled([(value, phrase) for value, spec in p.items() for phrase in spec["phrases"]])
        self.population_mesh = p
        human_only = self.vocab["population_human_only"]
        self.population_human_only = set(human_only["values"])
        self.population_not_human = set(human_only["dropped_for_designs"])


RULES = Rules(VOCABULARY)
_MODEL_HASH = hashlib.sha256(findings.MODEL_PATH.read_bytes()).hexdigest()[:12]
TAGGER_VERSION = f"{RULES_VERSION}+vocab.{VOCABULARY_HASH}+reader.{_MODEL_HASH}"
# The public values of the kinds curators fill in by hand (checked by curate.validate).
VOCABULARY_VALUES = {
    "design": {value for rule in VOCABULARY["design"]["rules"] for value in rule["values"]},
    "outcome": set(VOCABULARY["outcomes"]) | {"adverse_events"},
}


# ------------------------------------------------------------------ sentences

def _drugs_in(sentence: Sentence, rules: Rules) -> list[tuple[str, re.Match]]:
    """(target / other, match) of the drugs a sentence names, found once per sentence."""
    if "drugs" not in sentence.memo:
        sentence.memo["drugs"] = rules.drug.matches(sentence.text)
    return sentence.memo["drugs"]


def _speculative(sentence: Sentence, rules: Rules) -> bool:
    """Whether a sentence is about other or future studies ("further trials are needed");
    asked only of sentences naming a design or comparator, and kept for the next stage."""
    if "speculative" not in sentence.memo:
        sentence.memo["speculative"] = bool(rules.speculative.search(sentence.text))
    return sentence.memo["speculative"]


def split_sentences(text: str, rules: Rules = RULES) -> list[tuple[int, int]]:
    """(start, end) of each sentence (see sentences.Layout.split)."""
    return rules.layout.split(text)


def _tag(kind: str, value: str, sentence: Sentence, detail: dict | None = None) -> dict:
    return {"kind": kind, "value": value, "detail": detail or {}, "evidence": sentence.text,
            "section": sentence.section, "start": sentence.start, "end": sentence.end}


def _field_tag(kind: str, value: str, section: str, name: str) -> dict:
    return {"kind": kind, "value": value, "detail": {}, "evidence": name,
            "section": section, "start": None, "end": None}


def parse_number(text: str, rules: Rules = RULES) -> float:
    """'1,012' -> 1012, '4.5' -> 4.5, 'thirty-one' -> 31, 'one hundred and twenty' -> 120."""
    if text[0].isdigit():
        return float(text.replace(",", ""))
    total = current = 0
    for word in re.findall(r"[a-z]+", text.lower()):
        if word not in rules.number_values:  # "and" in "one hundred and twenty"
            continue
        value = rules.number_values[word]
        if word in rules.number_multipliers:
            current = max(current, 1) * value
            if value >= 1000:
                total, current = total + current, 0
        else:
            current += value
    return total + current


# ---------------------------------------------------------------------- design

def _design_in_text(sentences: list[Sentence], rules: Rules) -> dict[str, Sentence]:
    """First sentence giving each design value; later rules do not see text claimed earlier.

    In a sentence about other or future studies ("further trials are needed")
    only designs the paper calls its own count ("this pilot trial suggests").
    """
    found: dict[str, Sentence] = {}
    for sentence in sentences:
        if sentence.background or not rules.any_design_cue.search(sentence.text):
            continue
        text = sentence.text
        for values, pattern in rules.design_rules:
            spans = pattern.spans(text)
            if not spans:
                continue
            if not _speculative(sentence, rules) or any(rules.own_study.search(text[:start]) for start, _ in spans):
                for value in values:
                    found.setdefault(value, sentence)
            text = _blank(text, spans)
    return found


def _field_values(names, mapping: dict) -> list[tuple[str, str]]:
    """(value, field name) for each PubMed field name listed in a vocabulary mapping."""
    return [(value, name) for name in names for value in mapping.get(name, [])]


def _resolve_designs(values: set[str], rules: Rules) -> set[str]:
    kept: set[str] = set()
    for value in rules.design_priority:
        if value in values and not kept & set(rules.design_suppressed_by.get(value, [])):
            kept.add(value)
    return kept


def tag_design(paper: dict, sentences: list[Sentence], rules: Rules = RULES) -> list[dict]:
    """Design tags; publication types and MeSH are preferred as evidence over text."""
    tags: dict[str, dict] = {}
    for value, name in _field_values(paper.get("publication_types", []), rules.publication_types):
        tags.setdefault(value, _field_tag("design", value, "publication_type", name))
    for value, name in _field_values(paper.get("mesh", []), rules.mesh):
        tags.setdefault(value, _field_tag("design", value, "mesh", name))
    for value, sentence in _design_in_text(sentences, rules).items():
        tags.setdefault(value, _tag("design", value, sentence))
    kept = _resolve_designs(set(tags), rules)
    return [tag for value, tag in tags.items() if value in kept]


# ----------------------------------------------------------------------- doses

@dataclass
class Dose:
    value: str
    low: float                 # mg/day, or mg/kg when per_kg
    high: float
    per_kg: bool
    titrated: bool
    sentence: Sentence
    start: int
    end: int


def _number(text: str) -> float:
    """A dose number; a comma is a decimal mark unless three digits follow it."""
    text = text.replace("·", ".")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


def _doses_in_match(m: re.Match, sentence: Sentence, rules: Rules) -> list[Dose]:
    """One dose for a single number or a range, one per number for a list ("0.1 or 1 mg/kg")."""
    unit_mg = next(mg for p, mg in rules.unit_mg.items() if p.match(m["unit"]))
    per_kg = bool(m["kg"])
    times = next((n for p, n in rules.frequency if m["freq"] and p.search(m["freq"])), 1)
    scale = unit_mg * (1 if per_kg else times)
    numbers = [_number(n) * scale for n in rules.dose_number.findall(m["nums"])]
    value = sentence.text[m.start():m.end()].strip()  # as written (m is on lower-cased text)
    is_range = rules.range_inside.search(m["nums"]) or (
        len(numbers) == 2 and rules.between_opener.search(sentence.text[:m.start()]))
    if is_range or len(numbers) == 1:
        return [Dose(value, min(numbers), max(numbers), per_kg, False, sentence, m.start(), m.end())]
    return [Dose(value, n, n, per_kg, False, sentence, m.start(), m.end()) for n in numbers]


def _governing_drug(start: int, end: int, drugs: list, text: str, previous: str, rules: Rules) -> str:
    """Which drug a dose belongs to: one named right after it ("4.5 mg of LDN"),
    else the nearest named before it in the sentence, else the last one named
    earlier in the paper."""
    for kind, m in drugs:
        if m.start() >= end and rules.dose_then_drug.fullmatch(text, end, m.start()):
            return kind
    before = [kind for kind, m in drugs if m.end() <= start]
    return before[-1] if before else previous


def _merge(doses: list[Dose], titrated: bool) -> Dose:
    first = doses[0]
    value = first.value if len(doses) == 1 else f"{first.value} to {doses[-1].value}"
    return Dose(value, min(d.low for d in doses), max(d.high for d in doses), first.per_kg,
                titrated, first.sentence, first.start, doses[-1].end)


def _written_as_range(first: Dose, second: Dose, text: str, rules: Rules) -> bool:
    """"1.5 mg to 4.5 mg" or "between 1 mg and 4.5 mg"."""
    gap = text[first.end:second.start]
    return first.per_kg == second.per_kg and bool(
        rules.range_joiner.fullmatch(gap)
        or (rules.between_joiner.fullmatch(gap) and rules.between_opener.search(text[:first.start])))


def _join_ranges(doses: list[Dose], text: str, rules: Rules) -> list[Dose]:
    joined: list[Dose] = []
    for dose in doses:
        if joined and _written_as_range(joined[-1], dose, text, rules):
            joined[-1] = _merge([joined[-1], dose], joined[-1].titrated)
        else:
            joined.append(dose)
    return joined


def _sentence_doses(sentence: Sentence, previous_drug: str, rules: Rules) -> tuple[list[Dose], str]:
    """Naltrexone doses of one sentence, and the last drug it names."""
    text = sentence.text
    drugs = _drugs_in(sentence, rules)
    doses = []
    for m in rules.dose.finditer(text):
        if rules.not_a_dose.match(text, m.end("unit")):
            continue
        if _governing_drug(m.start(), m.end(), drugs, text, previous_drug, rules) == "target":
            doses += _doses_in_match(m, sentence, rules)
    last_drug = drugs[-1][0] if drugs else previous_drug
    if len(doses) > 1 and rules.titration.search(text):
        return [_merge(doses, True)], last_drug
    return _join_ranges(doses, text, rules), last_drug


def _paper_doses(sentences: list[Sentence], rules: Rules) -> list[Dose]:
    doses: list[Dose] = []
    previous_drug = "target"  # harvested papers are about naltrexone
    for sentence in sentences:
        if sentence.background:
            continue
        found, previous_drug = _sentence_doses(sentence, previous_drug, rules)
        for dose in found:
            continues = doses and rules.continuation.search(sentence.text[:dose.start])
            if continues and doses[-1].per_kg == dose.per_kg:
                doses[-1] = _merge([doses[-1], dose], True)
            else:
                doses.append(dose)
    return doses


def _absorb_within_ranges(doses: list[Dose]) -> list[Dose]:
    """Drop single doses that restate a value inside a range or titration."""
    ranges = [d for d in doses if d.low != d.high]
    return [d for d in doses if d.low != d.high or not any(
        r.per_kg == d.per_kg and r.low <= d.low <= r.high for r in ranges)]


def _band(mg_per_day: float, rules: Rules) -> str:
    """The first vocabulary band the dose falls in; the last band is unbounded."""
    for band in rules.bands:
        unbounded = "below" not in band and "at_most" not in band
        if unbounded or mg_per_day < band.get("below", -1) or mg_per_day <= band.get("at_most", -1):
            return band["name"]
    raise ValueError("vocabulary bands must end with an unbounded band")


def dose_band(mg_per_day: float) -> str:
    """The band (ultra_low ... standard) of a daily naltrexone dose in mg."""
    return _band(mg_per_day, RULES)


def _dose_tag(dose: Dose, rules: Rules) -> dict:
    regimen = "titrated" if dose.titrated else "fixed"
    if dose.per_kg:
        detail = {"min_mg_per_day": None, "max_mg_per_day": None, "regimen": regimen, "band": None,
                  "per_kg": True, "min_mg_per_kg": dose.low, "max_mg_per_kg": dose.high}
    else:
        low, high = round(dose.low, 6), round(dose.high, 6)
        detail = {"min_mg_per_day": low, "max_mg_per_day": high, "regimen": regimen,
                  "band": _band(high, rules)}
    return _tag("dose", dose.value, dose.sentence, detail)


def tag_doses(sentences: list[Sentence], designs: set[str], rules: Rules = RULES) -> list[dict]:
    doses = _paper_doses(sentences, rules)
    if designs & rules.pooled_doses:
        daily = [d for d in doses if not d.per_kg]
        doses = ([_merge(daily, False)] if daily else []) + [d for d in doses if d.per_kg]
    unique: dict[tuple, Dose] = {}
    for dose in _absorb_within_ranges(doses):
        unique.setdefault((dose.per_kg, round(dose.low, 6), round(dose.high, 6)), dose)
    return [_dose_tag(dose, rules) for dose in unique.values()]


# ------------------------------------------------------------------------ arms

@dataclass
class Arms:
    """What a paper studies and what it compares it with, as the result reader names them."""
    intervention: str | None   # its names in the paper ("LDN naltrexone"), or None when none is found
    comparator: str | None     # None: the reader takes placebo and control words for the comparator
    kind: str | None = None    # "target" (naltrexone, by any name) or "named" (another drug or treatment)
    name: str | None = None    # a named intervention, lower case

    def is_intervention(self, kind: str, name: str) -> bool:
        return kind == "target" if self.kind == "target" else name.lower() == self.name


def _title_arms(titles: list[Sentence], rules: Rules) -> tuple[tuple[str, str] | None, str | None]:
    """((kind, name) of the intervention, comparator name) the title names: drugs ("target" for
    naltrexone, "named" for another), else other treatments."""
    intervention = comparator = None
    for title in titles:
        hits = _drugs_in(title, rules) or rules.non_drug.matches(title.text)  # drugs: found for doses anyway
        for kind, m in hits:
            if rules.comparator_before.search(title.text[:m.start()]):
                comparator = comparator or m.group()
            elif intervention is None:
                intervention = ("target" if kind == "target" else "named", m.group())
    return intervention, comparator


def _generic_title_intervention(title: str, rules: Rules) -> str | None:
    """"Balneotherapy for fibromyalgia": an intervention no vocabulary names, unless it is an outcome or a population."""
    m = rules.title_intervention.search(title)
    if not m:
        return None
    name = title[m.start("name"):m.end("name")]
    return None if rules.outcome.matches(name) or rules.population.matches(name) else name


def studied_arms(sentences: list[Sentence], rules: Rules = RULES, placebo: bool | None = None) -> Arms:
    """The intervention the paper studies, from its title (the first named
    there, not after "versus"), else the one its text names most; the
    comparator named after "versus" in the title, else placebo when the text
    names it (`placebo`: whether it does, when already known). Naltrexone is
    not assumed: a duloxetine trial reads as one."""
    titles = [s for s in sentences if s.kind == "title"]
    named, comparator = _title_arms(titles, rules)
    title = " ".join(s.text for s in titles)
    body = [s for s in sentences if s.kind != "title" and not s.background]
    hits = [(kind, m.group()) for s in body for kind, m in _drugs_in(s, rules)]  # drugs: found for doses anyway
    if named is None and (generic := _generic_title_intervention(title, rules)):
        named = ("named", generic)
    if named is None and hits:
        counts = {}
        for kind, name in hits:
            key = (kind, "" if kind == "target" else name.lower())
            counts[key] = counts.get(key, 0) + 1
        named = max(counts, key=counts.get)  # on a tie, the first named
    if placebo is None:
        placebo = any(rules.placebo.search(s.text) for s in body)
    if comparator is None and placebo:
        comparator = rules.placebo_name
    if named is None:
        return Arms(None, comparator)
    kind, name = named
    if kind == "target":
        names = sorted({n.lower() for k, n in hits + [named] if k == "target" and n})
        return Arms(" ".join(names) or "naltrexone", comparator, "target")
    return Arms(name.lower(), comparator, "named", name.lower())


def _sentence_comparator(sentence: Sentence, arms: Arms, rules: Rules) -> str | None:
    """Drugs a sentence names other than the intervention: its comparator there ("LDN versus duloxetine")."""
    names = [m.group() for kind, m in _drugs_in(sentence, rules) if not arms.is_intervention(kind, m.group())]
    return " ".join(names) or None


# -------------------------------------------------------------------- outcomes

def _clauses(text: str, rules: Rules) -> list[tuple[int, int]]:
    """Clause spans, split at clause breaks that are not inside parentheses."""
    spans, start = [], 0
    bracketed = "(" in text
    for m in rules.clause_break.finditer(text):
        if not bracketed or text.count("(", 0, m.start()) <= text.count(")", 0, m.start()):
            spans.append((start, m.start()))
            start = m.end()
    spans.append((start, len(text)))
    return spans


def _direction(finding: str | None, polarity: str) -> str | None:
    """A reader's finding as improved / worse / no_difference for an outcome of this polarity."""
    if finding is None:
        return None
    if finding == "no_significant_difference":
        return "no_difference"
    higher = finding == "significantly_increased"
    return "improved" if higher == (polarity == "higher_better") else "worse"


@dataclass
class Mention:
    outcome: Outcome
    sentence: Sentence
    candidate: findings.Candidate | None = None  # when the sentence may state the outcome's result


def _clause_of(span: tuple[int, int], clauses: list[tuple[int, int]]) -> tuple[int, int]:
    return next((s, e) for s, e in clauses if s <= span[0] <= e)


def _adverse_events_in(sentence: Sentence, rules: Rules) -> list[tuple[str, re.Match]]:
    """(canonical name, match) of adverse events named and not denied in the sentence.

    A name that also describes symptoms ("insomnia", "fatigue") needs an
    adverse-event cue or an unambiguous adverse-event name in its clause.
    """
    text = sentence.text
    found = rules.adverse_event.matches(text)
    if not found:
        return []
    clauses = _clauses(text, rules) if any(needs_cue for (_, needs_cue), _ in found) else []
    definite = [m.start() for (_, needs_cue), m in found if not needs_cue]
    events = []
    for (name, needs_cue), m in found:
        if rules.adverse_event_negation.search(text[:m.start()]):
            continue
        if needs_cue:  # the clause's cues decide only for these
            start, end = _clause_of(m.span(), clauses)
            if not (rules.adverse_event_cue.search(text[start:end])
                    or rules.adverse_event_reason.search(text[max(start, m.start() - 50):m.start()])
                    or any(start <= d <= end for d in definite)):
                continue
        events.append((name, m))
    return events


def _outcome_mentions(sentence: Sentence, events: list, reads_direction: bool, arms: Arms, compares: bool,
                      rules: Rules) -> list[Mention]:
    """Outcomes a sentence reports, each a candidate for the result reader when the sentence may state it.

    Adverse-event names and non-outcome phrases ("chronic pain") are blanked
    first; a plain phrase needs an outcome or result cue in the sentence, an
    instrument name does not. Sentences describing what was measured or
    planned are no candidates. The reader reads the outcome's clause first
    ("LDN improved mood but not fatigue": fatigue's clause is "not fatigue").
    """
    text = _blank(sentence.text, [m.span() for _, m in events] +
                  rules.outcome_masks.spans(sentence.text))
    # A named adverse event is an adverse-events outcome; its direction is not read.
    mentions = [Mention(rules.adverse_events_outcome, sentence)] if events else []
    found = rules.outcome.matches(text)
    if any(outcome.needs_cue for outcome, _ in found) and not any(p.search(text) for p in rules.result_cues):
        found = [(outcome, m) for outcome, m in found if not outcome.needs_cue]
    if not found:  # most sentences: the scans below serve only outcomes kept
        return mentions
    reads = reads_direction and not rules.non_result.search(text)
    clauses = _clauses(text, rules) if reads else []
    comparator = _sentence_comparator(sentence, arms, rules) if reads else None
    # "the pooled effect on pain" compares arms, whatever the paper's design (`compares`: the design does)
    unstated = findings.BETWEEN if reads and not compares and rules.pooled_cue.search(sentence.text) else None
    for outcome, m in found:
        mention = Mention(outcome, sentence)
        if reads:
            mention.candidate = findings.Candidate(sentence, _clause_of(m.span(), clauses), m.group(),
                                                   outcome.polarity, comparator, unstated)
        mentions.append(mention)
    return mentions


def _best_mention(mentions: list[Mention]) -> Mention:
    """The first mention naming an instrument, else the first."""
    return next((m for m in mentions if m.outcome.instrument), None) or mentions[0]


def _reads_direction(sentence: Sentence, designs: set[str], rules: Rules) -> bool:
    """Whether a sentence may set directions: results or conclusions, never a
    protocol's, and for a review only its conclusions or pooled results."""
    if not sentence.results or designs & rules.no_direction_designs:
        return False
    if designs & rules.pooled_designs:
        return sentence.conclusion or bool(rules.pooled_cue.search(sentence.text))
    return True


def _read_outcome(mentions: list[Mention], designs: set[str], controlled: bool, arms: Arms,
                  rules: Rules) -> tuple[findings.Reading | None, Mention | None]:
    """The result reader's reading of one outcome from its candidate sentences.

    Between-group statements answer first. In a controlled study a result
    that names no comparison compares the arms; in an uncontrolled one it is
    change within the one group; in a paper of unknown design it gives no
    direction. A review answers only with a between-group conclusion or
    pooled result, never with change within its trials' arms.
    """
    candidates = [m.candidate for m in mentions if m.candidate]
    pooled = bool(designs & rules.pooled_designs)
    unstated = findings.BETWEEN if controlled or pooled else \
        findings.WITHIN if designs & rules.uncontrolled_designs else None
    reading, used = findings.reader().read_candidates(
        candidates, arms.intervention, arms.comparator, None, unstated=unstated, within=not pooled)
    return reading, next((m for m in mentions if m.candidate is used), None)


def tag_outcomes(sentences: list[Sentence], designs: set[str] = frozenset(), controlled: bool = False,
                 arms: Arms | None = None, rules: Rules = RULES) -> tuple[list[dict], list[dict]]:
    """Outcome tags (one per value) and adverse-event tags (one per event).

    `controlled`: the paper compares arms (a controlled design or a placebo
    or active comparator). `arms`: what the paper studies and compares it
    with (read from its text when not given). An outcome's detail gives the
    reader's `direction` and its `comparison` (between_groups or within_group)."""
    arms = arms or studied_arms(sentences, rules)
    compares = controlled or bool(designs & rules.pooled_designs)
    by_value: dict[str, list[Mention]] = {}
    events: dict[str, dict] = {}
    for sentence in sentences:
        if sentence.background:
            continue
        named = _adverse_events_in(sentence, rules)
        for name, _m in named:
            events.setdefault(name, _tag("adverse_event", name, sentence))
        reads = _reads_direction(sentence, designs, rules)
        for mention in _outcome_mentions(sentence, named, reads, arms, compares, rules):
            by_value.setdefault(mention.outcome.value, []).append(mention)
    outcomes = []
    for value, mentions in by_value.items():
        reading, used = _read_outcome(mentions, designs, controlled, arms, rules)
        direction = reading and reading.comparison and _direction(reading.finding, used.candidate.polarity)
        if reading and reading.comparison == findings.WITHIN and value in rules.between_only_outcomes:
            direction = None
        best = used if direction else _best_mention(mentions)
        instrument = best.outcome.instrument or next(
            (m.outcome.instrument for m in mentions if m.outcome.instrument), None)
        detail = {k: v for k, v in (("instrument", instrument), ("direction", direction),
                                    ("comparison", direction and reading.comparison)) if v}
        outcomes.append(_tag("outcome", value, best.sentence, detail))
    return outcomes, list(events.values())


# ----------------------------------------------------------------- sample size

_DIGIT = re.compile(r"\d")


def _count_role(segment: str, rules: Rules) -> str:
    return next((role for role, cue in rules.count_roles if cue.search(segment)), "enrolled")


def _segment(text: str, start: int, end: int, rules: Rules) -> str:
    """The stretch of text around a count between commas or semicolons."""
    breaks = [m.start() for m in rules.segment_break.finditer(text)]
    left = max([b for b in breaks if b < start], default=-1) + 1
    right = min([b for b in breaks if b >= end], default=len(text))
    return text[left:right]


def _sentence_counts(sentence: Sentence, rules: Rules) -> list[tuple[str, int]]:
    """(role, number) for every head count in a sentence."""
    text, counts = sentence.text, []
    for m in rules.count.finditer(text):
        after = text[m.end("num"):]
        number = parse_number(m["num"], rules)
        if rules.not_a_count.match(after) or rules.subgroup.match(after) or number != int(number):
            continue  # ages, percentages, doses and decimals are not head counts
        counts.append((_count_role(_segment(text, m.start(), m.end(), rules), rules), int(number)))
    if not _DIGIT.search(text):  # totals and group sizes are read as numbers in digits ("n = 33"): none here
        return counts
    counts += [(_count_role(text, rules), int(t.replace(",", ""))) for t in rules.total_count.findall(text)]
    groups = [int(g.replace(",", "")) for g in rules.group_size.findall(text)]
    if len(groups) > 1:
        counts.append((_count_role(text, rules), sum(groups)))
    elif groups:
        m = rules.group_size.search(text)
        counts.append((_count_role(_segment(text, m.start(), m.end(), rules), rules), groups[0]))
    return counts


def tag_sample_size(sentences: list[Sentence], rules: Rules = RULES) -> list[dict]:
    """The number randomised, else the larger of enrolled and analysed.

    Each role keeps its largest count, so subgroups ("three patients stopped")
    do not replace the whole sample.
    """
    largest: dict[str, tuple[int, Sentence]] = {}
    for sentence in sentences:
        if sentence.background:
            continue
        for role, number in _sentence_counts(sentence, rules):
            if number > largest.get(role, (0, None))[0]:
                largest[role] = (number, sentence)
    if not largest:
        return []
    # Fewer cannot have been enrolled than were analysed.
    number, sentence = largest.get("randomized") or max(
        (largest[r] for r in ("enrolled", "analysed") if r in largest), key=lambda found: found[0])
    detail = {r: n for r, (n, _) in largest.items()}
    return [_tag("sample_size", str(number), sentence, detail)]


# -------------------------------------------------------------------- duration

def _context(text: str, start: int, end: int) -> tuple[str, str]:
    """Up to 60 characters before and 30 after a span, stopping at a comma, semicolon or bracket."""
    before = re.split(r"[,;()]", text[max(0, start - 60):start])[-1]
    after = re.split(r"[,;()]", text[end:end + 30])[0]
    return before, after


def _is_treatment_duration(text: str, m: re.Match, rules: Rules) -> bool:
    before, after = _context(text, m.start(), m.end())
    return not (rules.duration_right_after.search(before) or rules.duration_in_phrase.search(before)
                or rules.duration_followed_by.search(after))


def _weeks(m: re.Match, rules: Rules) -> float:
    """Weeks of a duration; a range counts as its upper end."""
    per_unit = next(w for p, w in rules.weeks_per_unit.items() if p.match(m["unit"]))
    return parse_number(m["num2"] or m["num"], rules) * per_unit


def _format_weeks(weeks: float) -> str:
    return f"{round(weeks, 1):g}"


def tag_duration(sentences: list[Sentence], rules: Rules = RULES) -> list[dict]:
    """The longest duration not written as a washout, run-in, age, history or interval."""
    best = None
    for sentence in sentences:
        if sentence.background:
            continue
        for m in rules.duration.finditer(sentence.text):
            if not _is_treatment_duration(sentence.text, m, rules):
                continue
            weeks = _weeks(m, rules)
            if best is None or weeks > best[0]:
                best = (weeks, sentence.text[m.start():m.end()], sentence)
    if best is None:
        return []
    weeks, written, sentence = best
    value = _format_weeks(weeks)
    return [_tag("duration", value, sentence, {"weeks": float(value), "as_written": written})]


# ------------------------------------------------------------------ comparator

def tag_comparator(sentences: list[Sentence], design_tags: list[dict], rules: Rules = RULES) -> list[dict]:
    """placebo / active from the text; none when an uncontrolled design names no comparator."""
    tags: dict[str, dict] = {}
    for sentence in sentences:
        if sentence.background:
            continue
        for value, pattern in (("placebo", rules.placebo), ("active", rules.active)):
            # the first sentence naming it is the evidence; "further placebo-controlled trials" is none
            if value not in tags and pattern.search(sentence.text) and not _speculative(sentence, rules):
                tags[value] = _tag("comparator", value, sentence)
        if len(tags) == 2:  # both found: later sentences change nothing
            break
    uncontrolled = next((t for t in design_tags if t["value"] in rules.none_designs), None)
    if not tags and uncontrolled:
        tags["none"] = {**uncontrolled, "kind": "comparator", "value": "none",
                        "detail": {"implied_by_design": uncontrolled["value"]}}
    return list(tags.values())


# ------------------------------------------------------------------ population

def tag_population(paper: dict, sentences: list[Sentence], designs: set[str], rules: Rules = RULES) -> list[dict]:
    """Who was studied, from MeSH and text; no human groups in animal or cell studies."""
    tags: dict[str, dict] = {}
    mesh = set(paper.get("mesh", []))
    for value, spec in rules.population_mesh.items():
        heading = next((h for h in spec["mesh"] if h in mesh), None)
        if heading and not mesh & set(spec.get("mesh_unless", [])):
            tags[value] = _field_tag("population", value, "mesh", heading)
    for sentence in sentences:
        if sentence.background:
            continue
        for value, _m in rules.population.matches(sentence.text):
            tags.setdefault(value, _tag("population", value, sentence))
    excluded = rules.population_human_only if designs & rules.population_not_human else set()
    return [tag for value, tag in tags.items() if value not in excluded]


def tag_registry_ids(sentences: list[Sentence], rules: Rules = RULES) -> list[dict]:
    tags: dict[str, dict] = {}
    for sentence in sentences:
        for m in rules.registry_ids.finditer(sentence.text):
            tags.setdefault(m.group(), _tag("registry_id", m.group(), sentence))
    return list(tags.values())


# ---------------------------------------------------------------------- public

def tag_paper_with(paper: dict, rules: Rules) -> list[dict]:
    """tag_paper with explicit rules (for alternative vocabularies and benchmarks)."""
    paper = {**paper, "sections": split_inline_sections(paper.get("sections", []))}
    sentences = rules.layout.sentences(paper)
    design_tags = tag_design(paper, sentences, rules)
    designs = {t["value"] for t in design_tags}
    own_content = not designs & rules.about_another_paper
    own_sample = not designs & rules.without_own_sample
    own_comparator = not designs & rules.without_comparator
    comparators = tag_comparator(sentences, design_tags, rules)
    controlled = bool(designs & rules.controlled_designs) or any(t["value"] != "none" for t in comparators)
    arms = studied_arms(sentences, rules, placebo=any(t["value"] == "placebo" for t in comparators))
    outcomes, events = tag_outcomes(sentences, designs, controlled, arms, rules) if own_content else ([], [])
    return (design_tags
            + (tag_doses(sentences, designs, rules) if own_content else [])
            + outcomes + events
            + (tag_sample_size(sentences, rules) + tag_duration(sentences, rules) if own_sample else [])
            + (comparators if own_comparator else [])
            + tag_population(paper, sentences, designs, rules)
            + tag_registry_ids(sentences, rules))


def tag_paper(paper: dict) -> list[dict]:
    """Tags for a paper {"title", "sections": [{"label", "text"}], "publication_types", "mesh"}."""
    return tag_paper_with(paper, RULES)


def tag_text(text: str) -> list[dict]:
    """Tags for plain text: first line = title, the rest = abstract."""
    return tag_paper(paper_from_text(text))
