"""Throughput of the tagger on synthetic records, on one core.

Generates 10,000 synthetic papers from a fixed seed, tags them all with the
shipped tagger (result reader included; vocabulary loaded and regexes
compiled once, at import) and reports records per second. In the same run it
tags them with the previous version of the tagger (the harvest package at
--previous, read from git; skipped with a note outside a git checkout) and
prints the ratio; and it tags a sample with the obvious
alternative, loading the vocabulary and building the rules again for every
record, and prints the speed-up.

Run: .venv/bin/python scripts/bench_tag.py [--records N] [--seed S] [--previous REV]
"""

from __future__ import annotations

import argparse
import importlib
import io
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvest.tag import Rules, load_vocabulary, tag_paper, tag_paper_with  # noqa: E402

DESIGNS = ["a randomized, double-blind, placebo-controlled crossover trial", "an open-label pilot study",
           "a retrospective chart review", "a case report", "a systematic review and meta-analysis",
           "protocol for a randomised controlled trial", "a non-randomised single-blind study",
           "an online survey", "a parallel-group randomised trial", "a dose-finding study"]
DOSES = ["LDN 4.5 mg nightly", "naltrexone 1.5 mg rising to 4.5 mg", "naltrexone 20 µg daily",
         "naltrexone 3 mg or 4.5 mg", "LDN 2.25 mg twice daily", "naltrexone 1 mg/kg"]
CO_MEDICATION = ["duloxetine 60 mg", "pregabalin 150 mg", "oxycodone 20 mg", "amitriptyline 25 mg"]
OUTCOMES = ["pain intensity (VAS)", "the FIQR total score", "fatigue", "sleep quality (PSQI)", "mood",
            "pressure pain thresholds", "SF-36 quality of life", "IL-6 and TNF-alpha", "the PGIC"]
RESULTS = ["{a} improved, but not {b}.", "{a} did not differ from placebo (p = 0.41).",
           "LDN reduced {a} compared with placebo (p = 0.01), whereas {b} was unchanged.",
           "There was no significant difference in {a} or {b}."]
EVENTS = ["vivid dreams", "headache", "nausea", "insomnia", "dizziness"]
PUBLICATION_TYPES = [[], ["Randomized Controlled Trial"], ["Review"], ["Case Reports"], ["Letter"]]
MESH = [[], ["Fibromyalgia", "Female", "Humans"], ["Cross-Over Studies", "Double-Blind Method"], ["Animals", "Rats"]]


def synthetic_paper(rng: random.Random) -> dict:
    a, b = rng.sample(OUTCOMES, 2)
    methods = (f"{rng.randint(8, 400)} {rng.choice(['women', 'adults', 'patients'])} with fibromyalgia "
               f"taking {rng.choice(CO_MEDICATION)} were enrolled and received {rng.choice(DOSES)} "
               f"for {rng.randint(2, 16)} weeks, after a {rng.randint(1, 4)}-week washout, e.g. at home vs. clinic.")
    results = (rng.choice(RESULTS).format(a=a.capitalize(), b=b) + " "
               + f"{rng.choice(EVENTS).capitalize()} and {rng.choice(EVENTS)} were the commonest side effects.")
    return {
        "title": f"Low-dose naltrexone for fibromyalgia: {rng.choice(DESIGNS)}",
        "sections": [{"label": "BACKGROUND", "text": "Fibromyalgia causes widespread pain and fatigue."},
                     {"label": "METHODS", "text": methods},
                     {"label": "RESULTS", "text": results},
                     {"label": None, "text": f"Registered as NCT{rng.randint(10**7, 10**8 - 1)}."}],
        "publication_types": rng.choice(PUBLICATION_TYPES),
        "mesh": rng.choice(MESH),
    }


def tag_rebuilding_rules(paper: dict) -> list[dict]:
    """The alternative: load the vocabulary and build the rules for every record."""
    vocabulary, _ = load_vocabulary()
    return tag_paper_with(paper, Rules(vocabulary))


# The tagger before issue 17 (whole-abstract reading, every design, every drug).
PREVIOUS = "630a014"


def previous_tagger(rev: str):
    """tag_paper of the harvest package at `rev`, or None when git cannot show it."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "harvest"], capture_output=True)
    if archive.returncode != 0:
        return None
    with tempfile.TemporaryDirectory(prefix="tag-previous-") as name:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(name, filter="data")
        (Path(name) / "harvest").rename(Path(name) / "previous_harvest")
        sys.path.insert(0, name)
        try:
            tag_paper = importlib.import_module("previous_harvest.tag").tag_paper
            tag_paper(synthetic_paper(random.Random(0)))  # loads what it reads lazily while the files exist
        finally:
            sys.path.remove(name)
    return tag_paper


def records_per_second(taggers: list, papers: list[dict], rounds: int = 1) -> list[tuple[float, int]]:
    """(records/s, tags) of each tagger, the best of `rounds` timings; the taggers take turns
    within each round, in turn first, so a spell of load from other processes (or the
    machine's warming up) slows them alike."""
    best = [0.0] * len(taggers)
    n_tags = [0] * len(taggers)
    for round_ in range(rounds):
        for i in [(round_ + k) % len(taggers) for k in range(len(taggers))]:
            tag = taggers[i]
            start = time.perf_counter()
            n_tags[i] = sum(len(tag(paper)) for paper in papers)
            best[i] = max(best[i], len(papers) / (time.perf_counter() - start))
    return list(zip(best, n_tags))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--baseline-records", type=int, default=200,
                        help="records tagged with the rebuild-per-record alternative")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--previous", default=PREVIOUS, help="git revision of the tagger to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="timings per tagger; the best counts")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    papers = [synthetic_paper(rng) for _ in range(args.records)]
    previous = previous_tagger(args.previous)
    measured = records_per_second([tag_paper] + ([previous] if previous else []), papers, args.rounds)
    tagged_rate, n_tags = measured[0]
    print(f"tag_paper (rules compiled once, whole-abstract result reader included): {args.records} records, "
          f"{n_tags} tags, {tagged_rate:,.0f} records/s (best of {args.rounds})")
    if previous is None:
        print(f"previous version ({args.previous}): not available (needs a git checkout); not compared")
    else:
        previous_rate, previous_tags = measured[1]
        print(f"previous version ({args.previous}): {args.records} records, {previous_tags} tags, "
              f"{previous_rate:,.0f} records/s; this version is {tagged_rate / previous_rate:.2f}x as fast")
    [(baseline_rate, _)] = records_per_second([tag_rebuilding_rules], papers[:args.baseline_records])
    print(f"alternative (vocabulary loaded and rules rebuilt per record): {args.baseline_records} records, "
          f"{baseline_rate:,.1f} records/s")
    print(f"speed-up: {tagged_rate / baseline_rate:,.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
