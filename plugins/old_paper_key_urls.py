"""Addresses written when the paper key was called `pmid` keep working.

Every table used to name the paper key `pmid`, though it also held doi: and curated: keys; the
key is `paper_id` now and `pmid` holds PubMed IDs only (harvest/store.py). A table or view
address that filters, sorts, facets or picks columns by `pmid` where there is no `pmid` column
any more (`/kb/tags?pmid=19453963`, `/kb/effects.json?_sort=pmid`) is redirected to the same
address with `paper_id`. Where both columns exist (papers, the evidence table), a `pmid` filter
whose value is not a PubMed ID (`/kb/papers?pmid=doi:10.1093/pm/pnad074`) can only have meant
the key, and is redirected too. Row addresses need nothing: the key's values did not change.
"""

import re
import urllib.parse

from datasette import hookimpl
from datasette.utils import tilde_decode

from harvest.store import PAPER_KEY_RENAMED, is_pmid

DATABASE = "kb"
OLD, NEW = PAPER_KEY_RENAMED
# /kb/<table or view>, with an optional output format (.json, .csv, .ris...)
LISTING = re.compile(rf"^/{DATABASE}/(?P<name>[^/.]+)(?:\.\w+)?$")
# Parameters whose value is a column name, rather than a filter on one.
NAMING_COLUMNS = ("_sort", "_sort_desc", "_facet", "_col", "_nocol")


def renamed(pairs, columns):
    """The query's (name, value) pairs with the old key's name replaced where it meant the key,
    or None when nothing needs to change."""
    if NEW not in columns:
        return None
    gone = OLD not in columns
    changed, result = False, []
    for name, value in pairs:
        column, op, rest = name.partition("__")
        if column == OLD and (gone or not all(is_pmid(v) for v in value.split(","))):
            name, changed = NEW + op + rest, True
        elif name in NAMING_COLUMNS and value == OLD and gone:
            value, changed = NEW, True
        result.append((name, value))
    return result if changed else None


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def redirect_old_key(scope, receive, send):
            query = scope.get("query_string", b"") if scope["type"] == "http" else b""
            listing = LISTING.match(scope.get("path", "")) if OLD.encode() in query else None
            if listing and DATABASE in datasette.databases:
                db = datasette.get_database(DATABASE)
                columns = await db.table_columns(tilde_decode(listing["name"]))
                pairs = renamed(urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True), columns)
                if pairs is not None:
                    location = urllib.parse.quote(scope["path"]) + "?" + urllib.parse.urlencode(pairs)
                    await send({"type": "http.response.start", "status": 301,
                                "headers": [(b"location", location.encode("latin-1")),
                                            (b"content-type", b"text/plain; charset=utf-8")]})
                    await send({"type": "http.response.body",
                                "body": f"The paper key is called {NEW} now: {location}\n".encode("latin-1")})
                    return
            await app(scope, receive, send)

        return redirect_old_key

    return wrap
