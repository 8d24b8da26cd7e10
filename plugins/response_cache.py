"""Answer a repeated GET from memory: kb.db is served immutable, so a page's bytes never change
while the server runs.

Under load most requests repeat a few pages (the evidence view, the papers table, a search);
rendering each again costs 5-25 ms of the one Python process's time, which is what made 20
concurrent clients wait. Only complete 200 responses without cookies are kept, up to
MAX_ENTRIES pages of at most MAX_BODY bytes each, least recently used dropped first.
"""

from collections import OrderedDict

from datasette import hookimpl

MAX_ENTRIES = 512
MAX_BODY = 2_000_000
CACHED_METHODS = {"GET", "HEAD"}


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        pages = OrderedDict()  # (method, path, query) -> (start message, body)

        async def cached(scope, receive, send):
            if scope["type"] != "http" or scope["method"] not in CACHED_METHODS:
                await app(scope, receive, send)
                return
            key = (scope["method"], scope.get("root_path", "") + scope["path"], scope.get("query_string", b""))
            if key in pages:
                pages.move_to_end(key)
                start, body = pages[key]
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            captured = {"start": None, "body": [], "size": 0, "keep": True}

            async def capture(message):
                if message["type"] == "http.response.start":
                    headers = {name.lower() for name, _ in message.get("headers", [])}
                    captured["keep"] = message["status"] == 200 and b"set-cookie" not in headers
                    captured["start"] = message
                elif message["type"] == "http.response.body" and captured["keep"]:
                    captured["size"] += len(message.get("body", b""))
                    captured["keep"] = captured["size"] <= MAX_BODY
                    captured["body"].append(message.get("body", b""))
                    if not message.get("more_body") and captured["keep"]:
                        pages[key] = (captured["start"], b"".join(captured["body"]))
                        if len(pages) > MAX_ENTRIES:
                            pages.popitem(last=False)
                await send(message)

            await app(scope, receive, capture)

        return cached

    return wrap
