"""The regex kit: factored alternations match exactly what the plain alternation matches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harvest.caseless import Caseless, alternation, words
from harvest.tag import RULES

# Phrases that share leading letters, end inside one another, start with a
# group, a class, an optional or repeated letter or an escape, hold a "|"
# outside any group or a capturing group, or use upper case (which Caseless
# lower-cases after factoring).
PHRASES = ["pain", "pain threshold", "pain(?:ful)?", "painless", "(?:pressure )?pain tolerance", "pa",
           "fatigue", "fat", "f[au]tigue", "fa?tigue", "sleep|slumber", "sleep quality", "[]s]leep",
           "[\\]]", "VAS", "vas", "v(?:as)", "mood", "mo", "m", "low[- ]dose", "low dose naltrexone",
           "(?:cuff |pressure )*algometry", "x+yz", "[.,]5 mg", "\\w?ood", "(pain) scale", "(?:v|mo)?od", "(?:ab)?a"]
TEXTS = ["Pain and painless pain threshold; pain tolerance or pressure pain tolerance.",
         "Fatigue, fat, futigue, ftigue and slumber; sleep quality and ]leep or ] alone.",
         "VAS scores, vas, the mood of m and mo; low-dose or low dose naltrexone, painful.",
         "Cuff pressure algometry, xxyz and yz; .5 mg, a5 mg and ,5 mg; wood, vod, od; pain scale; aba."]


def plain(phrases) -> str:
    """The alternation the factored one must equal: every phrase a branch, longest first."""
    return "(?:" + "|".join(sorted(phrases, key=len, reverse=True)) + ")"


@pytest.mark.parametrize("bounded", [False, True])
def test_factored_alternation_finds_the_same_matches(bounded):
    edge = (r"(?<!\w)", r"(?!\w)") if bounded else ("", "")
    factored = re.compile(edge[0] + alternation(PHRASES) + edge[1])
    reference = re.compile(edge[0] + plain(PHRASES) + edge[1])
    assert factored.pattern != reference.pattern  # it was factored
    for text in TEXTS + [t.lower() for t in TEXTS]:
        assert [m.span() for m in factored.finditer(text)] == [m.span() for m in reference.finditer(text)]


def test_branches_are_grouped_on_shared_letters_but_never_past_one_that_could_match_there():
    assert alternation(["naltrexone", "naproxen", "nabilone"]) == "(?:na(?:ltrexone|proxen|bilone))"
    # "\\w?pain" could match where "pain" does, so the phrases on either side of it stay apart.
    assert alternation(["painless", "\\w?pain", "pain"]) == "(?:painless|\\w?pain|pain)"


def test_a_phrase_starting_with_a_group_class_or_optional_letter_is_written_out_in_its_place():
    # "x?pain" is "xpain" then "pain"; the repeated "pain" adds nothing.
    assert alternation(["painless", "x?pain", "pain"]) == "(?:pain(?:less|)|xpain)"
    assert alternation(["(?:a|b)?cd", "[xy]z"]) == "(?:acd|bcd|cd|xz|yz)"
    # A phrase with a "|" of its own is its branches.
    assert alternation(["ab|cd", "ab"]) == "(?:ab|cd)"
    # Not written out: a capturing group would be repeated, an escape or "." is no letter.
    assert alternation(["(a)?bc", "[.,]5"]) == "(?:(a)?bc|[.,]5)"


def test_words_are_whole_words_in_any_case():
    pattern = words(["pain", "pain threshold"])
    assert [m.group() for m in pattern.finditer("Pain Threshold, painful, PAIN")] == ["pain threshold", "pain"]


def test_words_may_be_followed_by_a_tail_and_still_skip_texts_without_their_literals():
    before_name = words(["compared (?:with|to)", "versus"], r"\s+(?:\w+\s+){0,2}$")
    assert before_name.needs == ("compared ", "versus")
    assert before_name.search("Pain fell with LDN compared with ")
    assert before_name.search("LDN Versus the ")
    assert not before_name.search("LDN versus placebo and then ")  # three words after the cue
    assert not before_name.search("LDN conversus ")  # not a whole word


def test_every_vocabulary_phrase_list_matches_as_its_plain_alternation_scanned_in_full_on_the_labelled_texts():
    items = yaml.safe_load((Path(__file__).parent / "eval" / "labelled.yml").read_text(encoding="utf-8"))["items"]
    v = RULES.vocab
    phrase_lists = [[p for rule in v["design"]["rules"] for p in rule["phrases"]],
                    [p if isinstance(p, str) else p["phrase"] for spec in v["outcomes"].values() for p in spec["phrases"]],
                    v["drugs"]["target"] + v["drugs"]["other"],
                    [p for spec in v["adverse_events"].values() for p in spec["phrases"]]]
    for phrases in phrase_lists + [rule["phrases"] for rule in v["design"]["rules"]]:
        factored, reference = words(phrases), Caseless(r"(?<!\w)" + plain(phrases) + r"(?!\w)")
        for item in items:
            assert [m.span() for m in factored.finditer(item["text"])] == \
                [m.span() for m in reference.finditer(item["text"])]


@pytest.mark.parametrize("phrases, needs", [
    (["(?:a|b)?cd"], ("cd",)),                                  # an optional group: with it or without
    (["(?:pressure |cuff )*algometry"], ("algometry",)),        # the longest literal every match has
    (["randomi[sz]ed", "at random", "Randomised"], ("at random", "randomi")),  # "randomised" has "randomi"
    (["ab|cd", "[xy]z"], ("ab", "cd", "xz", "yz")),             # "z" alone is too short: the written-out starts
    (["\\d+ mg"], (" mg",)),                                    # after a class or an escape
    (["ab?cd", "x+yz"], ("cd", "yz")),                           # a quantified letter is no part of it
    (["(?<!no )pain"], ("pain",)),                              # a lookaround is no part of a match
    (["e\\.g"], ()),                                             # a literal of one character tests nothing
    (["a\\d{10}b"], ()),                                         # a count's digits are no literal
])
def test_words_know_the_literals_every_match_contains(phrases, needs):
    assert words(phrases).needs == needs


def test_texts_without_the_needed_literals_give_what_a_scan_gives():
    phrases = ["(?:pressure |cuff )*algometry", "s?ab", "(?:a|b)?cd", "pain(?:ful)?"]
    needing, scanning = words(phrases), Caseless(words(phrases).pattern)
    assert needing.needs and not scanning.needs
    for text in ["Cuff cuff algometry and ab", "sab, bcd; painful", "algometr y", "nothing here", ""]:
        assert [m.span() for m in needing.finditer(text)] == [m.span() for m in scanning.finditer(text)]
        assert needing.spans(text) == scanning.spans(text) == [m.span() for m in scanning.finditer(text)]
        assert bool(needing.search(text)) == bool(scanning.search(text))
        assert needing.findall(text) == scanning.findall(text)
        assert bool(needing.match(text)) == bool(scanning.match(text))
