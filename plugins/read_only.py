"""The published site is read-only: any request that could write is refused with 405.

kb.db is served immutable and every canned query is a SELECT, so nothing could be
written anyway; refusing the methods at the door means no write path is ever reached,
whatever a future canned query or plugin declares.
"""

from datasette import hookimpl

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@hookimpl
def asgi_wrapper():
    def wrap(app):
        async def read_only(scope, receive, send):
            if scope["type"] == "http" and scope["method"] not in READ_METHODS:
                await send({
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [
                        (b"allow", ", ".join(sorted(READ_METHODS)).encode()),
                        (b"content-type", b"text/plain; charset=utf-8"),
                    ],
                })
                await send({"type": "http.response.body", "body": b"This site is read-only.\n"})
                return
            await app(scope, receive, send)

        return read_only

    return wrap
