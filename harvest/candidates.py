"""Machine-read numbers for curators: the between-group results a results paper's abstract
states, as `effect_candidates` rows. Unverified and never pooled: a curator checks each against
the paper before it becomes an `effects` row (harvest/curated/README.md, "Effects").

From each sentence that may state the paper's results (not background, aims or methods):
- an effect estimate: mean difference (`md`), standardised mean difference (`smd`: SMD,
  Hedges' g, Cohen's d), risk ratio (`rr`) or odds ratio (`or`), with its 95% CI and p value
  when the sentence gives them;
- each arm's figures: mean (with its SD when written "mean (SD)" or "mean ± SD"), participants
  (`n = 49`, "49 to naltrexone"), participants with an event ("41 (84%)", "4 of 49"), given to
  the LDN arm or the comparator by the arm named beside them (or in order, with
  "respectively"); a figure no arm can be told for is left out rather than guessed;
- the outcome, when the sentence names one the tagger knows (else adverse events or
  withdrawals for adverse events, from their own words).
A sentence yields a row when it states an estimate or figures for both arms. Methods
sentences are read only for the numbers allocated to each arm.

Sentences, numbers and p values are read with the tagger's and the result reader's own
splitter, number words and patterns (harvest/tag.py, harvest/findings.py).
"""

import re

from . import abstracts, findings, store, tag

TABLE = "effect_candidates"
ARMS = ("ldn", "comparator")
FIGURE_KINDS = ("mean", "sd", "n", "events")
NUMBER_COLUMNS = ["estimate", "ci_low", "ci_high", "p_value"] + [
    f"{kind}_{arm}" for arm in ARMS for kind in FIGURE_KINDS]
TABLES = {
    TABLE: (
        {
            "candidate_id": str, "paper_id": str, "position": int, "outcome": str, "measure": str,
            "estimate": float, "ci_low": float, "ci_high": float, "p_value": float, "p_value_text": str,
            "mean_ldn": float, "sd_ldn": float, "n_ldn": int, "events_ldn": int,
            "mean_comparator": float, "sd_comparator": float, "n_comparator": int,
            "events_comparator": int, "section": str, "sentence": str,
        },
        "candidate_id",
        {"paper_id": ("papers", "paper_id")},
    ),
}
store.register(tables=TABLES, indexes={TABLE: [["paper_id"]]})

# A signed decimal as abstracts write it: "-0.34", "−0.34" (minus sign), "–0.34" (en dash as a
# minus, only where no digit precedes it), "0·27" (Lancet style), "1,586.01"; never glued to a
# word ("n-3FA", "5mg").
THOUSANDS = r"\d{1,3}(?:,\d{3})+(?:[.·]\d+)?"
DECIMAL = rf"(?<![\w.·])[-−–+]?(?:{THOUSANDS}|\d+(?:[.·]\d+)?|[.·]\d+)(?![\w]|[.·]\d)"
NUMBER = rf"(?:{DECIMAL}|{tag.RULES.count_number})"
INTEGER = rf"(?:(?<![\w.·-])\d+(?![\d]|[.·,]\d)|{tag.RULES.count_number})"

# Estimate labels, longest first: "standardised mean difference" before "mean difference",
# "median difference" never a mean difference; abbreviations match in capitals only.
MEASURES = [
    ("smd", r"(?i:standardi[sz]ed\s+mean\s+differences?|hedges'?\s*g|cohen'?s\s*d|effect\s+sizes?)|\bSMD\b"),
    ("md", r"(?i:(?<!median\s)(?<!standardized\s)(?<!standardised\s)(?<!important\s)(?<!detectable\s)"
           r"(?<!relevant\s)(?:mean\s+|adjusted\s+|between[-\s]groups?\s+|treatment\s+)?differences?)|\bMD\b"),
    ("rr", r"(?i:risk\s+ratios?|relative\s+risks?|rate\s+ratios?)|\bRR\b"),
    ("or", r"(?i:odds\s+ratios?)|\bOR\b"),
]
MEASURE = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in MEASURES))
# A 95% CI: named ("95% CI -0.95 to 0.27", "confidence interval 1.2, 3.5"), or in brackets
# right after its estimate ("OR 2.1 (1.2-3.5)"). Any bracketed interval is a statistic or a
# scale, never an arm's figure.
CI = re.compile(
    rf"(?:95\s*%\s*)?(?:\bCI\b|confidence\s+intervals?)(?:\s*[\])])?\s*[:=,]?\s*(?:of\s+)?[(\[]?\s*"
    rf"(?P<lo>{DECIMAL})\s*(?:to|,|;|–|—|-|and)\s*(?P<hi>{DECIMAL})", re.I)
BRACKETED = re.compile(rf"[\s,]*[(\[]\s*(?P<lo>{DECIMAL})\s*(?:to|–|—|-|,)\s*(?P<hi>{DECIMAL})\s*[)\];,]", re.I)
P_VALUE = findings.default_cues().p_value

# Arm figures.
# "41/49 (84%)", "41 of 49 (84%)", "41 (84%) of 49", "41 (84%)"
EVENTS = re.compile(
    rf"(?P<count>{INTEGER})\s*(?:(?:/|\bof\s+(?:the\s+)?)(?P<total>{INTEGER}))?"
    rf"(?:\s*\(\s*(?P<pct>\d+(?:[.·]\d+)?)\s*%\s*\)(?:\s+of\s+(?:the\s+)?(?P<total_after>{INTEGER}))?)?", re.I)
MEAN_SD = re.compile(
    rf"(?P<mean>{DECIMAL})\s*(?:±|\+/-|\+-\s*|\(\s*(?P<sd_label>SD\s*[=:]?\s*)?(?=\d+(?:[.·]\d+)?\s*\)))\s*"
    rf"(?P<sd>\d+(?:[.·]\d+)?)\s*\)?", re.I)
N_EQUALS = re.compile(rf"\bn\s*=\s*(?P<n>{INTEGER})", re.I)
BARE = re.compile(NUMBER, re.I)
# A number followed by one of these is a time, dose, share, scale or age, not an arm figure.
NOT_A_FIGURE = re.compile(
    r"\s*(?:%|percent|weeks?|wk|months?|days?|years?|hours?|h\b|mg|µg|mcg|g\b|kg|mm|cm|"
    r"-?points?\s+scale|times|x\b|[-–]\s*\d|to\s+[-−–]?\d|and\s+\d|or\s+\d)", re.I)
FROM_TO = re.compile(rf"\bfrom\s+{DECIMAL}\s*(?:\([^)]*\)\s*)?(?:to|-|–)\s*{DECIMAL}(?:\s*\([^)]*\))?", re.I)
PEOPLE = re.compile(r"\s+(?:\w+\s+)?(?:women|men|patients|participants|subjects|people|adults|volunteers)\b", re.I)
# ...and one preceded by these is the end of a range or a time ("0-10", "week 12").
AFTER_RANGE_OR_TIME = re.compile(r"(?:\d\s*(?:[-–]|to)|\b(?:weeks?|months?|days?|visits?|years?|aged?))\s*$", re.I)
GAP_STOP = re.compile(r";|\bp\s*(?:[=<>≤≥]|&lt;|&gt;)", re.I)
# What may come right before an estimate: its label, "of", "was", "=", ":", a bracket, a comma,
# "(95% CI)" ("no differences between the 2 nights" states no estimate).
LEAD = re.compile(r"(?:^|\b(?:of|was|were|is|by|as)|[=:(\[,≈]|\bCI\]?\)?)\s*$", re.I)
NEAR = 60  # characters at most between an estimate's label and its number
NUMBER_AFTER_LABEL = re.compile(DECIMAL)

# Which arm a word names; placebo and other comparators are not drugs in the tagger's vocabulary.
COMPARATOR_WORDS = re.compile(
    r"\b(?:placebos?|controls?|sham|usual\s+care|wait(?:ing)?[-\s]?lists?|standard\s+care)\b", re.I)
# Where arms are told apart: between these, a figure belongs to the arm named in its stretch.
ARM_BREAKS = re.compile(
    r";|\b(?:vs\.?|versus|and|or|than|compared\s+(?:with|to)|whereas|while|but|respectively)\b", re.I)
RESPECTIVELY = re.compile(r"\brespectively\b", re.I)
SD_CUE = re.compile(r"\bSD\b|standard\s+deviation|±", re.I)
MEAN_CUE = re.compile(r"\b(?:mean|average|change[ds]?|scores?|reduc\w*|decreas\w*|increas\w*|improv\w*|"
                      r"fell|declined|rose|points?)\b", re.I)
ALLOCATION_CUE = re.compile(r"\b(?:randomi[sz]\w*|allocated|assigned|received|receiving|enrolled)\b", re.I)
WITHDRAWAL = re.compile(r"\b(?:withdr[ae]w\w*|discontinu\w*|stopped|dropped\s+out)\b.*"
                        r"\b(?:adverse|side[-\s]effects?|intoleran\w*|tolerat\w*)", re.I)
ADVERSE = re.compile(r"\b(?:adverse\s+(?:events?|effects?|reactions?)|side[-\s]effects?)\b", re.I)


def value(text):
    """A number as written: digits (with the reader's decimal and minus signs) or number words."""
    text = text.strip()
    if text[:1].isalpha():
        return tag.parse_number(text)
    if re.search(THOUSANDS, text):
        text = text.replace(",", "")
    return findings.statistic(text.replace("–", "-").replace("+", ""))


def _arms(text):
    """(arm, start, end) of each arm named: the tagger's naltrexone names, other drugs and
    comparator words."""
    named = [("ldn" if kind == "target" else "comparator", m.start(), m.end())
             for kind, m in tag.RULES.drug.matches(text)]
    named += [("comparator", m.start(), m.end()) for m in COMPARATOR_WORDS.finditer(text)]
    return sorted(named, key=lambda arm: arm[1])


def _is_figure(text, m):
    return not (NOT_A_FIGURE.match(text, m.end()) or AFTER_RANGE_OR_TIME.search(text, 0, m.start()))


def _estimates(text):
    """[(measure, label-to-number span, estimate, window end)]: each labelled estimate, with the
    stretch of text up to the next label, where its CI and p value are looked for. The number
    is the first after the label that is no time, dose, share or "95%"; none when a p value
    or a semicolon comes first."""
    labels = list(MEASURE.finditer(text))
    found = []
    for index, label in enumerate(labels):
        following = labels[index + 1].start() if index + 1 < len(labels) else len(text)
        for m in NUMBER_AFTER_LABEL.finditer(text, label.end(), min(following, label.end() + NEAR)):
            if GAP_STOP.search(text, label.end(), m.start()):
                break
            if _is_figure(text, m) and LEAD.search(text[label.end():m.start()]):
                found.append((label.lastgroup, (label.start(), m.end()), value(m.group()), following))
                break
    return found


def _interval(text, start, end, estimate):
    """(low, high, span) of the 95% CI stated after an estimate, if it contains the estimate."""
    m = BRACKETED.match(text, start) or CI.search(text, start, end)
    if not m:
        return None, None, None
    low, high = value(m["lo"]), value(m["hi"])
    if not low <= estimate <= high:
        return None, None, None
    return low, high, m.span()


def _p_value(text, start, end):
    m = P_VALUE.search(text, start, end)
    if not m:
        return None, None, None
    op = m["op"].replace("&lt;", "<").replace("&gt;", ">")
    p = findings.statistic(m["p"])
    return (p if op == "=" else None), (None if op == "=" else f"{op}{m['p']}"), m.span()


def _figures(text, results, protected):
    """[(kind, value, start, end)] of arm figures outside the protected spans (statistics)."""
    figures, taken = [], list(protected) + [m.span() for m in FROM_TO.finditer(text)]

    def free(start, end):
        return not any(s < end and start < e for s, e in taken)

    def add(kind, number, start, end):
        figures.append((kind, number, start, end))

    if results:
        for m in EVENTS.finditer(text):
            total = m["total"] or m["total_after"]
            if (m["pct"] or total) and free(*m.span()):
                add("events", value(m["count"]), *m.span())
                if total:
                    add("n", value(total), *m.span())
                taken.append(m.span())
        sd_stated = SD_CUE.search(text)
        for m in MEAN_SD.finditer(text):
            if not free(*m.span()):
                continue
            if m["sd_label"] or sd_stated:
                add("mean", value(m["mean"]), *m.span())
                add("sd", value(m["sd"]), *m.span())
                taken.append(m.span())
    for m in N_EQUALS.finditer(text):
        if free(*m.span()):
            add("n", value(m["n"]), *m.span())
            taken.append(m.span())
    allocation = ALLOCATION_CUE.search(text)
    means = results and MEAN_CUE.search(text)
    for m in BARE.finditer(text):
        if not free(*m.span()) or not _is_figure(text, m):
            continue
        number = value(m.group())
        whole = number == int(number) and re.fullmatch(r"\d+|[a-z -]+", m.group(), re.I)
        if whole and 1900 <= number <= 2100:  # a year
            continue
        if allocation and whole and not means:
            add("n", int(number), *m.span())
        elif means and not m.group()[:1].isalpha() and not PEOPLE.match(text, m.end()):
            add("mean", number, *m.span())
    return figures


def _attributed(text, figures):
    """{(kind, arm): value} for figures an arm can be told for."""
    arms = _arms(text)
    if not {arm for arm, _, _ in arms} >= set(ARMS):
        return {}
    respectively = RESPECTIVELY.search(text)
    if respectively:
        order = []
        for arm, start, _ in arms:
            if start < respectively.start() and (not order or order[-1] != arm):
                order.append(arm)
        order = order[-2:]
        found = {}
        for kind in FIGURE_KINDS:
            values = [f[1] for f in figures if f[0] == kind and f[2] < respectively.start()]
            if len(values) == len(order) == 2 and len(set(order)) == 2:
                found.update({(kind, arm): v for arm, v in zip(order, values)})
        return found
    breaks = [0] + [m.start() for m in ARM_BREAKS.finditer(text)] + [len(text)]
    found, seen = {}, set()
    for left, right in zip(breaks, breaks[1:]):
        named = [(arm, start) for arm, start, _ in arms if left <= start < right]
        if len({arm for arm, _ in named}) != 1:
            continue
        arm = named[0][0]
        for kind in FIGURE_KINDS:
            here = [f for f in figures if f[0] == kind and left <= f[2] < right]
            if not here or (kind, arm) in seen:
                continue
            seen.add((kind, arm))
            # the figure nearest the arm's name ("Of 99 women, 49 received naltrexone": 49)
            nearest = min(here, key=lambda f: min(abs(f[2] - start) for _, start in named))
            found[(kind, arm)] = nearest[1]
    return found


def _outcome(text, position):
    """Withdrawals for adverse events, else the outcome the sentence names nearest before
    `position` (else after) in the tagger's vocabulary, else adverse events in their own words."""
    if WITHDRAWAL.search(text):
        return "adverse_event_withdrawals"
    named = [(outcome.value, m.start()) for outcome, m in tag.RULES.outcome.matches(text)]
    before = [v for v, start in named if start <= position]
    if before:
        return before[-1]
    if named:
        return named[0][0]
    if ADVERSE.search(text):
        return "adverse_events"
    return None


def read_sentence(text, results=True):
    """The candidate rows (dicts of effect_candidates columns, without ids) of one sentence."""
    if not any(c.isdigit() for c in text):  # most sentences: no figure at all
        return []
    estimates = _estimates(text) if results else []
    rows, protected = [], []
    for measure, span, estimate, window_end in estimates:
        low, high, ci_span = _interval(text, span[1], window_end, estimate)
        p_value, p_text, p_span = _p_value(text, span[1], window_end)
        protected += [s for s in (span, ci_span, p_span) if s]
        rows.append({"measure": measure, "estimate": estimate, "ci_low": low, "ci_high": high,
                     "p_value": p_value, "p_value_text": p_text, "outcome": _outcome(text, span[0])})
    # Every other CI and p value of the sentence (an arm's own CI, a test with no estimate).
    protected += [m.span() for pattern in (CI, BRACKETED, P_VALUE) for m in pattern.finditer(text)]
    figures = _attributed(text, _figures(text, results, protected))
    arms = {f"{kind}_{arm}": figures.get((kind, arm)) for arm in ARMS for kind in FIGURE_KINDS}
    both = {arm for (_, arm) in figures} >= set(ARMS)
    if not rows and both:
        p_value, p_text, _ = _p_value(text, 0, len(text)) if results else (None, None, None)
        events = ("events", "ldn") in figures and ("events", "comparator") in figures
        rows.append({"measure": "responders" if events else None, "estimate": None, "ci_low": None,
                     "ci_high": None, "p_value": p_value, "p_value_text": p_text,
                     "outcome": _outcome(text, len(text)) if results else None})
    for row in rows[:1]:  # arm figures go with the sentence's first estimate
        row.update(arms)
    for row in rows[1:]:
        row.update(dict.fromkeys(arms))
    return rows


def read_abstract(sentences):
    """Candidate rows, in order, from a paper's abstract sentences (abstracts.sentences)."""
    rows = []
    for sentence in sentences:
        if sentence.background:
            continue
        for row in read_sentence(sentence.text, sentence.results):
            rows.append({**row, "section": sentence.section, "sentence": sentence.text})
    return rows


def refresh(db):
    """effect_candidates for every results paper with an abstract; writes only what changed."""
    wanted = {}
    for key in abstracts.papers_with_abstracts(db, "f.publication_role = 'results'"):
        rows = read_abstract(abstracts.stored_sentences(db, key))
        wanted[key] = [
            {"candidate_id": f"{key}#{position}", "paper_id": key, "position": position, **_typed(row)}
            for position, row in enumerate(rows, 1)
        ]
    abstracts.replace_rows(db, TABLE, {k: v for k, v in wanted.items() if v})


def _typed(row):
    """Counts as integers, so stored rows compare equal to fresh ones."""
    counts = {f"{kind}_{arm}" for arm in ARMS for kind in ("n", "events")}
    return {column: (int(v) if column in counts and v is not None else v)
            for column, v in row.items()}
