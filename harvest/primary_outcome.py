"""The primary outcome a paper states, machine-read, for papers no curator has checked.

The sentence that names the primary outcome ("The primary outcome was average pain on a 0-10
scale") is read with the tagger's outcome vocabulary, as registered outcomes are
(ctgov.outcome_values), so the registry and the paper are compared in the same words. What
follows "secondary" in that sentence is left out. Rows go to `published_outcomes` with source
`machine-read` and the sentence as evidence; registration_vs_publication uses them when no
curator gave the paper's primary outcome.
"""

import json
import re

from . import abstracts, ctgov

PRIMARY = re.compile(
    r"\b(?:primary|main|principal)\s+(?:efficacy\s+|clinical\s+)?"
    r"(?:outcomes?|end[\s-]?points?|endpoints?|measures?|variables?)\b", re.I)
SECONDARY = re.compile(r"\bsecondary\b", re.I)
SOURCE = "machine-read"
UNCURATED = "not exists (select 1 from curated_entries c where c.paper_id = f.paper_id)"


def read(sentences):
    """(outcome values, sentence) from the first sentence naming the primary outcome, or None."""
    for sentence in sentences:
        if sentence.background:
            continue
        cue = PRIMARY.search(sentence.text)
        if not cue:
            continue
        secondary = SECONDARY.search(sentence.text, cue.end())
        values = ctgov.outcome_values(sentence.text[:secondary.start()] if secondary else sentence.text)
        if values:
            return values, sentence.text
    return None


def refresh(db):
    """Machine-read primary outcomes of every paper no curator has checked; writes only changes."""
    wanted = {}
    for key in abstracts.papers_with_abstracts(db, UNCURATED):
        found = read(abstracts.stored_sentences(db, key))
        if found:
            values, sentence = found
            wanted[key] = [{"paper_id": key, "key": None, "primary_outcome_values": json.dumps(values),
                            "source": SOURCE, "evidence": sentence}]
    abstracts.replace_rows(db, "published_outcomes", wanted, where=f"source = '{SOURCE}'")
