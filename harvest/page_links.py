"""Links in the pages `kb build` renders and stores (harvest/evidence_pages.py).

Stored pages cannot know Datasette's base_url, so their links start with BASE, which the
serving plugin (plugins/evidence_summary.py) replaces. Light on purpose: the plugin imports it.
"""

from urllib.parse import quote

from datasette.utils import tilde_encode

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
