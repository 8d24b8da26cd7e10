"""Links in the pages `kb build` renders and stores (harvest/evidence_pages.py).

Stored pages cannot know Datasette's base_url, so their links start with BASE, which the
serving plugin (plugins/evidence_summary.py) replaces. Light on purpose: the plugin imports it.
"""

import re
from urllib.parse import quote

from datasette.utils import tilde_encode
from markupsafe import Markup, escape

from .source_kinds import host_of

# Stands for Datasette's base_url in stored links ("/" or "/prefix/" when served).
BASE = "@BASE@/"
DATABASE = "kb"


def path(*parts):
    return BASE + "/".join(parts)


def row_href(table, *pks):
    return path(DATABASE, tilde_encode(table), ",".join(tilde_encode(str(pk)) for pk in pks))


def table_href(table, **filters):
    """A table filtered to the listed values (`column__in`), so a count's link lists only what it counts."""
    query = "&".join(f"{column}__in={quote(','.join(values))}" for column, values in filters.items())
    return path(DATABASE, tilde_encode(table)) + (f"?{query}" if query else "")


# A web address inside stored text (the tables keep it whole, for SQL users and exports).
URL_IN_TEXT = re.compile(r"(https?://[^\s(),;]+(?<![.]))")
_DOI_URL = "https://doi.org/"


def _link(url):
    name = "doi:" + url[len(_DOI_URL):] if url.startswith(_DOI_URL) else host_of(url)
    return f'<a href="{escape(url)}">{escape(name)}</a>'


def with_links(text, words=str):
    """Text with each web address in it as a link named by its DOI or host, not as a raw address;
    `words` renders the text between them."""
    parts = URL_IN_TEXT.split(text)  # text, address, text, ...
    return Markup("".join(_link(part) if i % 2 else str(escape(words(part))) for i, part in enumerate(parts)))
