"""Answer a repeated GET from memory: kb.db is served immutable, so a page's bytes never change
while the server runs.

Under load most requests repeat a few pages (the evidence view, the papers table, a search);
rendering each again costs 5-25 ms of the one Python process's time, which is what made 20
concurrent clients wait. Only complete 200 responses without cookies are kept, up to
MAX_ENTRIES pages of at most MAX_BODY bytes each and MAX_BYTES in all, least recently used
dropped first.

The cache is per process: `kb serve --workers N` runs N processes, each with its own cache
(so up to N times MAX_BYTES of memory), and a page is rendered up to N times (once per worker
that is asked for it) before every worker answers it from memory.
"""

from collections import OrderedDict

from datasette import hookimpl

MAX_ENTRIES = 512
MAX_BODY = 2_000_000
MAX_BYTES = 64_000_000
CACHED_METHODS = {"GET", "HEAD"}


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        pages = OrderedDict()  # (method, path, query) -> (start message, body), least recently used first
        held = [0]  # bytes of the bodies in `pages`

        def remember(key, start, body):
            if key in pages:  # two clients asked for it at once: keep the later copy
                held[0] -= len(pages.pop(key)[1])
            pages[key] = (start, body)
            held[0] += len(body)
            while len(pages) > MAX_ENTRIES or held[0] > MAX_BYTES:
                held[0] -= len(pages.popitem(last=False)[1][1])

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
                        remember(key, captured["start"], b"".join(captured["body"]))
                await send(message)

            await app(scope, receive, capture)

        return cached

    return wrap
