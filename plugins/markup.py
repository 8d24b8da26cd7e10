"""One rendering layer: every cell, name and field note a page shows reads as words.

The data and the JSON keep the stored values; only HTML pages change:
- vocabulary values (designs, outcomes, directions...) show as their labels (harvest/labels.py),
  and any other code-like value (`posted_primary`) with spaces for underscores;
- numbers are rounded as a clinician reads them: a reported number as reported (at most three
  decimals), a computed one to two decimals (three below 0.1), p-values as journals print them,
  percentages whole;
- yes/no columns (their metadata.yml description starts "1 if" or "1 when", or their name
  "is_", "has_", "flag_") say yes or no;
- references (paper keys, curated keys, effect ids, registry ids, in any column named for one
  and inside JSON lists) are links whose text says what they point to ("Bruun 2024",
  "Bruun 2024: pain intensity, mean difference at 12 weeks");
- JSON lists and objects read as words; a stored record (a registry's JSON) as its size, with a
  link to the row's JSON;
- column and table names, row titles, filters and field notes read as words (templates call
  the filters registered below).
Titles and abstract sections with inline markup (<i>, <sup>) show formatted, sanitised again here
(defence in depth: a value that reached kb.db some other way must still render inert).
"""

import json
import re
import urllib.parse
import weakref

from datasette import hookimpl
from datasette.utils import tilde_encode, urlsafe_components
from markupsafe import Markup, escape

from harvest.labels import LABELS, TAG_TABLES, label, tag_value_label, vocabulary_of
from harvest.page_links import URL_IN_TEXT, with_links
from harvest.parse import safe_html  # the sanitiser the parser used
from harvest.relations import CURATED_RELATIONS, PUBMED_RELATIONS

HTML_COLUMNS = {"title_html", "html"}
HIGHLIGHTED_COLUMNS = {"matched_text"}  # search snippets, matches between <mark> and </mark>
MARKS = {escape("<mark>"): Markup("<mark>"), escape("</mark>"): Markup("</mark>")}
PAPERS_TABLE = "papers"
LITERAL_TABLES = {"labels"}  # the codes beside their words, for SQL users: shown as stored

# Columns that hold references, wherever they appear (a key, or a JSON list of keys). Paper keys,
# curated entry keys, effect ids and registry ids have different shapes, so one lookup serves all.
REFERENCE_COLUMNS = {
    "paper_id", "paper_ids", "study", "other_study", "key", "included", "effect_id", "effect_ids",
    "omitted_effect_id", "added_effect_id", "registry_id", "trial_key", "other_key", "notice_key",
    "notice", "results_papers", "from_key", "to_key", "ref_pmid", "record", "concerns", "later_paper",
}
# Inside a JSON object, the field that names what the object is about, first found wins.
OBJECT_REFERENCES = ("effect_id", "paper_id", "notice", "key", "record", "registry_id")
# A stored document (a registry's or Crossref's record, as fetched) is summarised, not shown.
DOCUMENT_CHARACTERS = 2000

# Words for the parts of a column name; anything else reads as itself.
WORD_FORMS = {
    "ldn": "LDN", "ci": "CI", "smd": "SMD", "sd": "SD", "se": "SE", "md": "MD", "doi": "DOI",
    "pmcid": "PMC id", "pmid": "PubMed id", "url": "page", "i2": "I²", "tau2": "tau²", "iso": "ISO",
    "q1": "first quartile", "q3": "third quartile", "mg": "mg", "rob": "RoB", "sha256": "SHA-256",
    "nct": "NCT", "fts": "search index", "df": "degrees of freedom",
}
# Column names whose words say more than their parts.
COLUMN_WORDS = {
    "paper_id": "paper", "paper_ids": "papers", "key": "entry", "study": "study", "other_study": "related paper",
    "effect_id": "result", "effect_ids": "results pooled", "excluded": "results left out",
    "omitted_effect_id": "result left out", "added_effect_id": "result added", "trial_key": "trial",
    "other_key": "related paper", "notice_key": "notice", "n_ldn": "patients on LDN",
    "n_comparator": "patients on comparator", "ci_low": "95% CI from", "ci_high": "95% CI to",
    "pi_low": "prediction interval from", "pi_high": "prediction interval to", "k": "trials",
    "q": "Q", "q_df": "degrees of freedom of Q", "q_p": "p-value of Q", "p_value": "p-value",
    "p_value_text": "p-value as reported", "is_primary": "primary analysis", "i2": "I²",
    "tau2": "tau²", "smd": "SMD (Hedges' g)", "smd_se": "SE of the SMD", "se": "SE",
    "matched_text": "where it matches", "results_papers": "results papers", "n": "patients",
    "ref_pmid": "other paper", "from_key": "from", "to_key": "to", "registry_ids": "registry ids",
    "later_paper": "letter, correction or re-analysis", "concerns": "paper it concerns",
    "notice_citation": "its citation", "concerns_citation": "citation of the paper it concerns",
    "origin": "found through", "notices": "notices",
}
P_VALUE_COLUMNS = {"p_value", "q_p"}
PERCENT_COLUMNS = {"i2", "weight"}
FLAG_PREFIXES = ("is_", "has_", "flag_")
FLAG_NOTE = re.compile(r"^1 (if|when)\b")
CODE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")  # a snake_case identifier
IN_PROSE = re.compile(r"(?<![/=.#?&\w])[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b(?![/=]|\.[A-Za-z])")  # not in a URL or file name
RELATION_WORDS = {**{code: words[0] for code, words in CURATED_RELATIONS.items()},
                  **{code: words[0] for code, words in PUBMED_RELATIONS.items()}}

_view_names = weakref.WeakKeyDictionary()  # Database -> its view names; kb.db is immutable
_names = weakref.WeakKeyDictionary()  # Database -> {key: Name}, read once


# ---- words for names and codes ----------------------------------------------------------------


def column_words(column):
    """A column's name in words: 'ci_low' -> '95% CI from', 'n_randomized' -> 'n randomized'."""
    column = str(column)
    if column in COLUMN_WORDS:
        return COLUMN_WORDS[column]
    return " ".join(WORD_FORMS.get(part, part) for part in column.split("_") if part)


def heading(column):
    words = column_words(column)
    return words[:1].upper() + words[1:]


def code_words(value):
    """A code-like value in words: its label in whichever vocabulary has it, else spaces for underscores."""
    text = str(value)
    for vocabulary in LABELS.values():
        if text in vocabulary:
            return vocabulary[text]
    return RELATION_WORDS.get(text) or text.replace("_", " ")


def field_note(text):
    """A column description from metadata.yml in words: codes as their labels, `1 if` as `yes if`."""
    if not text:
        return text
    text = FLAG_NOTE.sub(lambda m: f"Yes {m.group(1)}", str(text)).replace(", 0 if not", ", no if not")
    return IN_PROSE.sub(lambda m: code_words(m.group(0)), text.replace("`", ""))


def is_flag(column, description=None):
    return str(column).startswith(FLAG_PREFIXES) or bool(description and FLAG_NOTE.match(description))


def number_text(value, column=""):
    """A number as a clinician reads it; text and integers unchanged."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if column in P_VALUE_COLUMNS:
        return "<0.001" if value < 0.001 else f"{value:.3f}" if value < 0.01 else f"{value:.2f}"
    if column in PERCENT_COLUMNS:
        return f"{value:.0f}%"
    if isinstance(value, int) or value == int(value):
        return str(int(value))
    if len(repr(value).partition(".")[2]) <= 3:  # as reported
        return repr(value)
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


# ---- references --------------------------------------------------------------------------------


def surname(author):
    """'Bruun KD' -> 'Bruun', 'de Carvalho JF' -> 'de Carvalho'."""
    parts = str(author).split()
    while len(parts) > 1 and parts[-1].isupper() and len(parts[-1]) <= 3:
        parts.pop()
    return " ".join(parts)


def paper_name(first_author, year, title):
    """How a study is cited in a list: 'Bruun 2024'; without a known author, its title's first words."""
    if first_author:
        who = surname(first_author)
    else:
        words = str(title or "untitled paper").split()
        who = " ".join(words[:6]) + ("…" if len(words) > 6 else "")
    return f"{who} {year}" if year else f"{who}, year not verified"


async def names(datasette, database):
    """{key: (words, href, full title)} for every paper, curated entry, result and trial; read once."""
    db = datasette.get_database(database)
    if db in _names:
        return _names[db]
    present = set(await db.table_names()) | set(await db.view_names())
    curated = "curated_entries" in present

    async def rows(sql):
        return [dict(row) for row in (await db.execute(sql)).rows]

    found = {}
    if "papers" in present:
        fallback = ("(select {0} from curated_entries c where c.paper_id = p.paper_id and c.type = 'publication')"
                    if curated else "null")
        for paper in await rows(f"""
                select p.paper_id, p.first_author, p.year, p.title, p.citation,
                       {fallback.format("c.authors")} as curated_authors, {fallback.format("c.year")} as curated_year
                from papers p"""):
            first = paper["first_author"] or (paper["curated_authors"] or "").split(",")[0].strip()
            found[paper["paper_id"]] = (
                paper_name(first, paper["year"] or paper["curated_year"], paper["title"]),
                datasette.urls.row(database, PAPERS_TABLE, tilde_encode(str(paper["paper_id"]))),
                paper["citation"] or paper["title"] or "",
            )
    if "trials" in present:
        for trial in await rows("select registry_id, key, acronym, title from trials"):
            entry = (f"{trial['registry_id']} ({trial['acronym']})" if trial["acronym"] else trial["registry_id"],
                     datasette.urls.row(database, "trials", tilde_encode(trial["registry_id"])), trial["title"] or "")
            found[trial["registry_id"]] = entry
            if trial["key"]:
                found.setdefault(trial["key"], entry)
    if curated:
        for entry in await rows("select key, paper_id from curated_entries where paper_id is not null"):
            if entry["paper_id"] in found:
                found.setdefault(entry["key"], found[entry["paper_id"]])
    if "effects" in present:
        effects = await rows("select effect_id, paper_id, key, outcome, event, measure, timepoint_weeks from effects")
        words = {}
        for effect in effects:
            study = found.get(effect["paper_id"]) or found.get(effect["key"])
            text = f"{study[0] if study else effect['key']}: {label('outcome', effect['outcome'])}"
            text += f" ({effect['event']})" if effect["event"] else ""
            text += f", {label('measure', effect['measure'])}" if effect["measure"] else ""
            if effect["timepoint_weeks"] is not None:
                text += f" at {number_text(effect['timepoint_weeks'])} weeks"
            words[effect["effect_id"]] = text
        repeated = {text for text in words.values() if list(words.values()).count(text) > 1}
        for effect_id, text in words.items():
            if text in repeated:  # the same study, outcome and measure twice: say which result
                text += f" (result {effect_id.rpartition('#')[2]})"
            found[effect_id] = (text, datasette.urls.row(database, "effects", tilde_encode(effect_id)), "")
    _names[db] = found
    return found


def reference(known, key):
    """A link whose text says what the key points to; a PMID outside kb.db links to PubMed."""
    key = str(key)
    if key in known:
        words, href, title = known[key]
        return Markup('<a href="{}" title="{}">{}</a>').format(href, title, words)
    if key.isdigit():
        return pubmed_link(key)
    return escape(key)


def pubmed_link(pmid):
    return Markup('<a href="https://pubmed.ncbi.nlm.nih.gov/{0}/">PubMed {0}</a>').format(pmid)


# ---- JSON --------------------------------------------------------------------------------------


def json_value(value):
    """A JSON list or object stored as text, else None."""
    if not isinstance(value, str) or not value.lstrip().startswith(("[", "{")):
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, (list, dict)) else None


def json_list(value):
    data = json_value(value)
    return data if isinstance(data, list) else None


def scalar_words(value, column, table=None):
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_text(value, column)
    vocabulary = vocabulary_of(column, table)
    if vocabulary:
        return label(vocabulary, value)
    if CODE.fullmatch(str(value)):
        return code_words(value)
    return IN_PROSE.sub(lambda m: code_words(m.group(0)), str(value))


def object_words(item, known, table=None):
    """{effect_id, reason} -> 'link: reason'; {status, notice, citation, url, source} -> 'link: status, source'."""
    ref = next((field for field in OBJECT_REFERENCES if item.get(field)), None)
    if ref and str(item[ref]) in known:
        head = reference(known, item[ref])
    elif item.get("url") and str(item["url"]).startswith(("https://", "http://")):
        head = Markup('<a href="{}">{}</a>').format(item["url"], item.get("citation") or item.get(ref) or item["url"])
    else:
        head = reference(known, item[ref]) if ref else escape(item.get("citation") or "")
    rest = [scalar_words(value, field, table) for field, value in item.items()
            if field not in (ref, "url", "citation") and not isinstance(value, (list, dict))]
    rest = [text for text in rest if text]
    return head + (Markup(": ") + escape(", ".join(rest)) if rest and head else escape(", ".join(rest)))


def json_words(data, column, table, known):
    if not data:
        return Markup("&nbsp;")  # an empty string would make Datasette fall back to showing "[]"
    if isinstance(data, dict):
        return object_words(data, known, table)
    if all(isinstance(item, dict) for item in data):
        return Markup("; ").join(object_words(item, known, table) for item in data)
    if column in REFERENCE_COLUMNS:
        return Markup(", ").join(reference(known, item) for item in data)
    return escape(", ".join(scalar_words(item, column, table) for item in data))


def document(value, href):
    size = f"stored record, {len(value):,} characters"
    return Markup('<a href="{}">{}</a>').format(href, size) if href else size


# ---- cells -------------------------------------------------------------------------------------


def inline_html(value):
    """Safe inline HTML from stored markup."""
    return Markup(safe_html(value or ""))


def highlighted(value):
    """A snippet as text (codes in words), with only its <mark> tags kept as markup."""
    text = str(escape(scalar_words(value, "matched_text")))
    for escaped, mark in MARKS.items():
        text = text.replace(str(escaped), str(mark))
    return Markup(text)


def labelled(value, vocabulary):
    """A vocabulary value, or a JSON array of them, as words."""
    if value is None or value == "":
        return value
    items = json_list(value)
    if items is not None:
        return ", ".join(label(vocabulary, item) for item in items)
    return label(vocabulary, value)


def description_of(datasette, database, table, column):
    if not table:
        return None
    return (datasette.table_metadata(database, table).get("columns") or {}).get(column)


async def row_href(datasette, database, table, row):
    """The row's JSON, for a summarised document (tables with a primary key only)."""
    pks = await datasette.get_database(database).primary_keys(table) if table else []
    if not pks or not all(pk in row.keys() for pk in pks):
        return None
    return datasette.urls.row(database, table, ",".join(tilde_encode(str(row[pk])) for pk in pks)) + ".json"


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if isinstance(value, dict) and "value" in value:  # a foreign key Datasette expanded
        value = value["value"]
    if value is None or value == "" or isinstance(value, bytes):
        return None
    if table in LITERAL_TABLES:
        return None
    if column == "value" and table in TAG_TABLES and "kind" in row.keys():
        shown = tag_value_label(value, row["kind"])
        return shown if shown != value else None
    if column in HTML_COLUMNS:
        return inline_html(value)
    if column in HIGHLIGHTED_COLUMNS:
        return highlighted(value)
    if value in (0, 1) and is_flag(column, description_of(datasette, database, table, column)):
        return "yes" if value else "no"
    if column == "pmid" and value:  # a PubMed ID, wherever it is (the paper itself is `paper_id`)
        return pubmed_link(value)
    data = json_value(value)
    if column in REFERENCE_COLUMNS or data is not None:

        async def linked():
            if data is not None and len(value) > DOCUMENT_CHARACTERS and isinstance(data, dict):
                return document(value, await row_href(datasette, database, table, row))
            known = await names(datasette, database)
            if data is not None:
                return json_words(data, column, table, known)
            if column == "paper_id" and not await is_view_or_query(datasette, database, table):
                # a table's own paper key: Datasette's foreign key link, in words
                return reference(known, value) if str(value) in known else None
            return reference(known, value)

        return linked()
    if isinstance(value, float):
        return number_text(value, column)
    if str(value).startswith(("https://", "http://")):
        return None  # Datasette links it
    if isinstance(value, str) and URL_IN_TEXT.search(value):
        return with_links(value, lambda part: scalar_words(part, column, table))
    shown = scalar_words(value, column, table)
    return shown if shown != value else None


async def is_view_or_query(datasette, database, table):
    if table is None:
        return True
    db = datasette.get_database(database)
    if db not in _view_names:
        _view_names[db] = set(await db.view_names())
    return table in _view_names[db]


# ---- titles, filters and the table's first column ---------------------------------------------


async def row_words(datasette, database, table, pk_values):
    """A row's title in words: 'pain intensity, REML'; 'Bruun 2024: pain intensity, mean difference'."""
    if isinstance(pk_values, str):  # a row link's path: tilde-encoded values joined by commas
        pk_values = urlsafe_components(pk_values)
    known = await names(datasette, database)
    pks = await datasette.get_database(database).primary_keys(table) or ["rowid"]
    parts = []
    for column, value in zip(pks, pk_values):
        if str(value) in known:
            parts.append(known[str(value)][0])
        elif column == "rowid":
            parts.append(f"row {value}")
        elif str(value).startswith(("https://", "http://")):
            parts.append("page on " + urllib.parse.urlsplit(str(value)).netloc)
        elif str(value).isdigit() and len(pks) > 1:
            parts.append(f"no. {value}")
        else:
            parts.append(scalar_words(value, column, table))
    return ", ".join(parts)


def table_words(table, metadata=None):
    return (metadata or {}).get("title") or column_words(table).capitalize()


def filter_words(filters, table):
    """'where outcome is pain intensity and method is REML' from Datasette's filters."""
    lookups = {key: words for key, words, _ in filters.lookups()}
    said = []
    for column, lookup, value in filters.selections():
        words = {"exact": "is", "arraycontains": "includes"}.get(lookup, lookups.get(lookup, lookup))
        said.append(f"{column_words(column)} {words} {scalar_words(value, column, table)}".strip())
    return ("where " + " and ".join(said)) if said else ""


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["inline_html"] = inline_html
    env.filters["kb_label"] = labelled
    env.filters["kb_tag_value"] = tag_value_label
    env.filters["kb_words"] = column_words
    env.filters["kb_heading"] = heading
    env.filters["kb_note"] = field_note
    env.filters["kb_number"] = number_text
    env.filters["kb_table_words"] = table_words
    env.filters["kb_filter_words"] = filter_words
    env.filters["kb_code_words"] = code_words
    env.filters["kb_prose"] = lambda text: scalar_words(text, "") if text else text

    # facet values of a column, in the column's vocabulary, yes/no for flags (templates/_facet_results.html)
    def facet_label(value, column, table=None, metadata=None):
        if is_flag(column, ((metadata or {}).get("columns") or {}).get(column)) and str(value) in ("0", "1"):
            return "yes" if str(value) == "1" else "no"
        vocabulary = vocabulary_of(column, table)
        return labelled(value, vocabulary) if vocabulary else scalar_words(value, column, table)

    env.filters["kb_facet_label"] = facet_label


@hookimpl
def extra_template_vars(datasette, database):
    async def kb_row_words(table, pk_values):
        return await row_words(datasette, database or "kb", table, pk_values)

    async def kb_reference(key):
        return reference(await names(datasette, database or "kb"), key)

    async def kb_row_link(table, link):
        """A table's row link (its primary key as text) titled in words instead."""
        href = re.search(r'href="([^"]*)"', str(link))
        if not href:
            return link
        words = await row_words(datasette, database or "kb", table, href.group(1).rsplit("/", 1)[-1])
        return Markup('<a href="{}">{}</a>').format(Markup(href.group(1)), words)

    def kb_table_title(table):
        return table_words(table, datasette.table_metadata(database or "kb", table))

    return {"kb_row_words": kb_row_words, "kb_reference": kb_reference, "kb_table_title": kb_table_title,
            "kb_row_link": kb_row_link}
