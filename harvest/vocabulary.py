"""The tagging vocabulary (vocabulary.yml), loaded once for every module that reads it.

The tagger (tag.py), the sentence layout (sentences.py) and the result reader
(findings.py) all compile their rules from this one file; it holds every
term, none of the grammar.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

VOCABULARY_PATH = Path(__file__).with_name("vocabulary.yml")


def load_vocabulary(path: Path = VOCABULARY_PATH) -> tuple[dict, str]:
    """The parsed vocabulary and a short hash of the file's bytes."""
    raw = path.read_bytes()
    return yaml.safe_load(raw), hashlib.sha256(raw).hexdigest()[:12]


VOCABULARY, VOCABULARY_HASH = load_vocabulary()
