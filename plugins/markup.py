"""Cells that read as text, not as raw data.

- Titles and abstract sections with inline markup (<i>, <sup>) show formatted. They were
  sanitised when parsed; they are sanitised again here, because a value that reached
  kb.db some other way must still render inert (defence in depth).
- Vocabulary values (designs, outcomes, directions...) show as their labels
  (harvest/labels.py), JSON arrays of them as comma-separated labels; the values and arrays
  stay in the data and the JSON, so Datasette can facet on them.
- Paper keys in views and query results link to the paper page (tables get that from
  their foreign keys already); a `study` or `other_study` column (a paper key) reads
  "Younger J, 2013".
"""

import json
import weakref

from datasette import hookimpl
from datasette.utils import tilde_encode
from markupsafe import Markup, escape

from harvest.labels import TAG_TABLES, label, tag_value_label, vocabulary_of
from harvest.parse import safe_html  # the sanitiser the parser used

HTML_COLUMNS = {"title_html", "html"}
HIGHLIGHTED_COLUMNS = {"matched_text"}  # search snippets, matches between <mark> and </mark>
MARKS = {escape("<mark>"): Markup("<mark>"), escape("</mark>"): Markup("</mark>")}
LIST_COLUMNS = {"registry_ids"}
PAPER_KEY_COLUMNS = {"pmid", "pmids"}
PAPERS_TABLE = "papers"

STUDY_COLUMNS = {"study", "other_study"}

_view_names = weakref.WeakKeyDictionary()  # Database -> its view names; kb.db is immutable
_study_names = weakref.WeakKeyDictionary()  # Database -> {paper key: "Younger J, 2013"}, read once


def inline_html(value):
    """Safe inline HTML from stored markup."""
    return Markup(safe_html(value or ""))


def paper_link(datasette, database, key):
    url = datasette.urls.row(database, PAPERS_TABLE, tilde_encode(str(key)))
    return Markup('<a href="{}">{}</a>').format(url, key)


def list_text(value, vocabulary=None):
    """A JSON array of words as 'a, b, c' (labelled when a vocabulary is given); anything else unchanged."""
    items = json_list(value)
    if items is None:
        return value
    return ", ".join(label(vocabulary, item) if vocabulary else str(item) for item in items)


def labelled(value, vocabulary):
    """A vocabulary value, or a JSON array of them, as words."""
    if value is None or value == "":
        return value
    return list_text(value, vocabulary) if json_list(value) is not None else label(vocabulary, value)


def json_list(value):
    try:
        items = json.loads(value)
    except (TypeError, ValueError):
        return None
    return items if isinstance(items, list) else None


def highlighted(value):
    """A snippet as text, with only its <mark> tags kept as markup."""
    text = str(escape(value))
    for escaped, mark in MARKS.items():
        text = text.replace(str(escaped), str(mark))
    return Markup(text)


async def is_view_or_query(datasette, database, table):
    if table is None:
        return True
    db = datasette.get_database(database)
    if db not in _view_names:
        _view_names[db] = set(await db.view_names())
    return table in _view_names[db]


async def study_name(datasette, database, key):
    db = datasette.get_database(database)
    if db not in _study_names:
        result = await db.execute(
            "select pmid, coalesce(first_author, 'Anonymous') || coalesce(', ' || year, '') from papers"
        )
        _study_names[db] = {row[0]: row[1] for row in result.rows}
    return _study_names[db].get(key)


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if value is None:
        return None
    if column == "value" and table in TAG_TABLES and "kind" in row.keys():
        shown = tag_value_label(value, row["kind"])
        return shown if shown != value else None
    if column in HTML_COLUMNS:
        return inline_html(value)
    if column in HIGHLIGHTED_COLUMNS:
        return highlighted(value)
    vocabulary = vocabulary_of(column, table)
    if (vocabulary or column in LIST_COLUMNS) and json_list(value) is not None:
        # An empty string would make Datasette fall back to showing "[]".
        return list_text(value, vocabulary) or Markup("&nbsp;")
    if vocabulary and isinstance(value, str):
        return label(vocabulary, value)
    if column in STUDY_COLUMNS:

        async def study():
            name = await study_name(datasette, database, value)
            if name is None:  # not a paper in kb.db (a trial, or a paper PubMed links to)
                return str(value)
            url = datasette.urls.row(database, PAPERS_TABLE, tilde_encode(str(value)))
            return Markup('<a href="{}">{}</a>').format(url, name)

        return study()
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
    env.filters["kb_label"] = labelled
    env.filters["kb_tag_value"] = tag_value_label
    # facet values of a column, in the column's vocabulary (templates/_facet_results.html)
    env.filters["kb_facet_label"] = lambda value, column, table=None: (
        labelled(value, vocabulary_of(column, table)) if vocabulary_of(column, table) else value
    )
