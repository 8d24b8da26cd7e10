"""The published site: Datasette's settings, how the site is served, and the deployable directory.

`settings.json` at the project root is the one place the Datasette settings live: `kb serve`
(hence `make serve`), `kb publish`, the benchmark and the tests all read it from here.

`kb serve` runs the site under uvicorn with one process per core (`--workers`): a Datasette
process renders one uncached page at a time on one core, however many clients wait. uvicorn
binds the port once and starts the workers; each builds the same Datasette through the app
factory `app`, from the options `serve` left in the environment. kb.db is immutable, so the
processes share nothing but the file; the response cache (plugins/response_cache.py) is per
process.
"""

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SITE_FILES = ["metadata.yml", "settings.json"]
SITE_FOLDERS = ["plugins", "templates", "static"]
DATASETTE = str(Path(sys.executable).with_name("datasette"))
KB = str(Path(sys.executable).with_name("kb"))
PUBLISH_PORT = 8001
PYTHON_IMAGE = "python:3.11-slim"
# How `serve` hands its options to uvicorn's worker processes (they inherit the environment).
CONFIG_VARIABLE = "KB_SITE_CONFIG"


def settings(root=ROOT):
    """Datasette settings, name -> value."""
    return json.loads((Path(root) / "settings.json").read_text(encoding="utf-8"))


def cores():
    """The cores this process may run on (a container's limit, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def datasette(db_path, inspect_file=None, root=ROOT, secret=None):
    """The Datasette `kb serve` runs: kb.db immutable (row counts from its inspect file),
    metadata.yml, plugins/, templates/, static/ and settings.json under `root`."""
    from datasette.app import Datasette

    root = Path(root)
    return Datasette(
        immutables=[str(db_path)],
        inspect_data=json.loads(Path(inspect_file).read_text(encoding="utf-8")) if inspect_file else None,
        metadata=yaml.safe_load((root / "metadata.yml").read_text(encoding="utf-8")),
        plugins_dir=str(root / "plugins"),
        template_dir=str(root / "templates"),
        static_mounts=[("static", str(root / "static"))],
        settings=settings(root),
        secret=secret,
    )


def app():
    """uvicorn's app factory: each worker process builds its Datasette from `serve`'s options."""
    return datasette(**json.loads(os.environ[CONFIG_VARIABLE])).app()


def serve(db_path, inspect_file, host="127.0.0.1", port=PUBLISH_PORT, workers=None, root=ROOT):
    """Serve the site on host:port with `workers` processes (default: one per core) until stopped."""
    import uvicorn

    os.environ[CONFIG_VARIABLE] = json.dumps({
        "db_path": str(Path(db_path).resolve()), "inspect_file": str(Path(inspect_file).resolve()),
        "root": str(Path(root).resolve()),
        # One signing secret for all workers, so a cookie one of them signs is valid in the others.
        "secret": os.environ.get("DATASETTE_SECRET") or secrets.token_hex(32),
    })
    uvicorn.run(f"{__name__}:app", factory=True, host=host, port=port, workers=workers or cores(),
                log_level="info", lifespan="on")


def serve_command(db_path, inspect_file, host="127.0.0.1", port=PUBLISH_PORT, workers=None, kb=KB, root=ROOT):
    """`kb serve` for kb.db (with its inspect file) and the site's files under `root`, as an argv;
    without `workers`, one process per core."""
    return [
        kb, "serve", "--db", str(db_path), "--inspect-file", str(inspect_file), "--site-dir", str(root),
        "--host", host, "--port", str(port), *(["--workers", str(workers)] if workers else []),
    ]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(command, port, workers=1, cwd=ROOT, start_timeout=60):
    """Run a `serve_command` (listening on `port`, with `workers` processes, in folder `cwd`) for
    the length of a with-block; yields its base URL once every worker has started and the site
    answers. Its log goes to a file: a pipe nobody reads would fill and stall it."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + start_timeout
            while not (_started_workers(log) >= workers and _answers(base)):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the site did not start: {_tail(log)}")
                time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _started_workers(log):
    # uvicorn logs this line once per worker process, when its Datasette is ready.
    log.seek(0)
    return log.read().count(b"Application startup complete")


def _answers(base):
    try:
        urllib.request.urlopen(f"{base}/-/versions.json", timeout=1).read()
        return True
    except OSError:
        return False


def _tail(log):
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-2000:]


def write_inspect_file(db_path, inspect_file):
    """Row counts and hashes Datasette would otherwise compute on start-up."""
    subprocess.run([DATASETTE, "inspect", str(db_path), "--inspect-file", str(inspect_file)], check=True)


def pinned_requirements():
    """Every package the deployed site installs, each pinned to one version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"]
    unpinned = [r for r in requirements if "==" not in r]
    if unpinned:
        raise ValueError(f"pyproject.toml: unpinned dependencies {unpinned}")
    return requirements


def dockerfile():
    # The plugins import the harvest package (sanitiser, page ranges), and `kb serve` runs the
    # site, so the package is installed too, without re-resolving its already pinned
    # dependencies. $PORT is the host's choice; workers default to the container's cores.
    command = serve_command("kb.db", "inspect-data.json", host="0.0.0.0", port="PORT", kb="kb", root=".")
    shell = shlex.join(command).replace(" --port PORT", ' --port "${PORT:-%d}"' % PUBLISH_PORT)
    return f"""# The LDN evidence base, served read-only by Datasette under uvicorn, one worker per core. Written by `kb publish`.
FROM {PYTHON_IMAGE}
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps .
ENV PORT={PUBLISH_PORT}
EXPOSE {PUBLISH_PORT}
CMD {shell}
"""


def readme_images():
    """The local images README.md shows (`![...](docs/x.png)`), so the published README shows them too."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return sorted({path for path in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text) if "://" not in path})


def publish(db_path, out_dir):
    """Write a deployable directory: kb.db (served immutable) with its inspect file, metadata,
    settings, plugins, templates, static files, the harvest package, pinned requirements and
    a Dockerfile. Replaces `out_dir`. Returns the paths written, relative to it."""
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copyfile(db_path, out / "kb.db")
    write_inspect_file(out / "kb.db", out / "inspect-data.json")
    for name in SITE_FILES + ["pyproject.toml", "README.md"] + readme_images():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, out / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SITE_FOLDERS + ["harvest"]:
        shutil.copytree(ROOT / name, out / name, ignore=ignore)
    (out / "requirements.txt").write_text("\n".join(pinned_requirements()) + "\n", encoding="utf-8")
    (out / "Dockerfile").write_text(dockerfile(), encoding="utf-8")
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
