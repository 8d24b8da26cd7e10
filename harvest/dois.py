"""DOIs as people write them: normalise, validate, read from files, spot truncation."""

import re
from dataclasses import dataclass

# Crossref's recommended pattern for modern DOIs, plus the older Wiley "(SICI)" style.
DOI_PATTERN = re.compile(r"^10\.\d{4,9}/[-._;()/:<>\[\]a-z0-9+#]+$", re.IGNORECASE)
_PREFIXES = re.compile(
    r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/|(?:dx\.)?doi\.org/)", re.IGNORECASE
)
_COMMENT = re.compile(r"(?:^|\s)#")  # a '#' inside a DOI is data, not a comment
_TRAILING = ".,;:)]}>'\""


class DOIError(ValueError):
    pass


@dataclass(frozen=True)
class DOIInput:
    """One DOI as read from an input file: what was written, and where."""

    original: str
    line: int
    doi: str | None  # normalised (lower-case); None when malformed
    error: str | None = None


def strip_doi(text):
    """Remove `doi:` / doi.org URL prefixes and surrounding punctuation, keep the case."""
    text = text.strip()
    text = _PREFIXES.sub("", text).strip()
    return text.rstrip(_TRAILING).lstrip("<([{'\"")


def normalise_doi(text):
    """The comparable form of a DOI: prefix-free, trailing punctuation removed, lower-case.

    Raises DOIError naming the input when it is not a DOI.
    """
    doi = strip_doi(text)
    if not DOI_PATTERN.match(doi):
        raise DOIError(f"not a DOI: {text.strip()!r}")
    return doi.lower()


def looks_truncated(original):
    """A DOI printed with a trailing dot or hyphen, e.g. Wiley's `...00613.` for `...00613.x`.

    Such DOIs are usually cut at a line break; the stripped form may be incomplete.
    """
    stripped = original.strip()
    return bool(stripped) and stripped[-1] in ".-_/"


def read_doi_lines(lines):
    """Parse a DOI list: one per line, `#` comments, free-form prefixes. Yields DOIInput."""
    for number, raw in enumerate(lines, start=1):
        text = _COMMENT.split(raw, 1)[0].strip()
        if not text:
            continue
        try:
            yield DOIInput(original=text, line=number, doi=normalise_doi(text))
        except DOIError as error:
            yield DOIInput(original=text, line=number, doi=None, error=str(error))
