"""Cells that read as text, not as raw data.

- Titles and abstract sections with inline markup (<i>, <sup>) show formatted. They were
  sanitised when parsed; they are sanitised again here, because a value that reached
  kb.db some other way must still render inert (defence in depth).
- JSON arrays of vocabulary values (designs, outcomes...) show as comma-separated words;
  the arrays stay in the data so Datasette can facet on them.
- Paper keys in views and query results link to the paper page (tables get that from
  their foreign keys already).
"""

import json
import weakref

from datasette import hookimpl
from datasette.utils import tilde_encode
from markupsafe import Markup, escape

from harvest.parse import safe_html  # the sanitiser the parser used

HTML_COLUMNS = {"title_html", "html"}
LIST_COLUMNS = {"design", "dose_band", "outcome", "outcomes", "registry_ids"}
PAPER_KEY_COLUMNS = {"pmid", "pmids"}
PAPERS_TABLE = "papers"

_view_names = weakref.WeakKeyDictionary()  # Database -> its view names; kb.db is immutable


def inline_html(value):
    """Safe inline HTML from stored markup."""
    return Markup(safe_html(value or ""))


def paper_link(datasette, database, key):
    url = datasette.urls.row(database, PAPERS_TABLE, tilde_encode(str(key)))
    return Markup('<a href="{}">{}</a>').format(url, key)


def list_text(value):
    """A JSON array of words as 'a, b, c'; anything else unchanged."""
    items = json_list(value)
    return value if items is None else ", ".join(str(item) for item in items)


def json_list(value):
    try:
        items = json.loads(value)
    except (TypeError, ValueError):
        return None
    return items if isinstance(items, list) else None


async def is_view_or_query(datasette, database, table):
    if table is None:
        return True
    db = datasette.get_database(database)
    if db not in _view_names:
        _view_names[db] = set(await db.view_names())
    return table in _view_names[db]


@hookimpl
def render_cell(value, column, table, database, datasette):
    if value is None:
        return None
    if column in HTML_COLUMNS:
        return inline_html(value)
    if column in LIST_COLUMNS and json_list(value) is not None:
        # An empty string would make Datasette fall back to showing "[]".
        return list_text(value) or Markup("&nbsp;")
    if column in PAPER_KEY_COLUMNS:

        async def linked():
            if not await is_view_or_query(datasette, database, table):
                return None
            keys = json_list(value) if column == "pmids" else [value]
            return Markup(", ").join(paper_link(datasette, database, key) for key in keys or [])

        return linked()
    return None


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["inline_html"] = inline_html
    env.filters["kb_list"] = list_text
