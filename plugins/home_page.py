"""The home page (templates/index.html), served by its own route.

Datasette's own index view checks the visibility of every table and view before it renders
(each check copies the whole metadata), work the home page never shows: this route renders the
same template, with the same plugin context (`extra_template_vars` for view_name "index"), and
nothing else. The JSON form of the index (`/.json`) stays Datasette's.
"""

from datasette import hookimpl
from datasette.utils.asgi import Response


async def home(datasette, request):
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    context = {"metadata": datasette.metadata()}
    return Response.html(await datasette.render_template("index.html", context, request=request, view_name="index"))


@hookimpl
def register_routes():
    return [(r"^/$", home)]
