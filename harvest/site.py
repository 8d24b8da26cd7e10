"""The published site: Datasette's settings, the serve command, and the deployable directory.

`settings.json` at the project root is the one place the Datasette settings live: `kb serve`
(hence `make serve`), `kb publish`, the benchmark and the tests all read it from here.
"""

import contextlib
import json
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

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "settings.json"
SITE_FILES = ["metadata.yml", "settings.json"]
SITE_FOLDERS = ["plugins", "templates", "static"]
DATASETTE = str(Path(sys.executable).with_name("datasette"))
PUBLISH_PORT = 8001
PYTHON_IMAGE = "python:3.11-slim"


def settings():
    """Datasette settings, name -> value."""
    return json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))


def setting_flags():
    flags = []
    for name, value in settings().items():
        flags += ["--setting", name, {True: "on", False: "off"}.get(value, str(value))]
    return flags


def serve_command(db_path, inspect_file, host="127.0.0.1", port=PUBLISH_PORT, datasette=DATASETTE, root=ROOT,
                  with_settings=True, plugins_dir=None):
    """`datasette serve` for kb.db (immutable, with its inspect file) and the site's files under
    `root`; without `with_settings`, on Datasette's default settings, and with another
    `plugins_dir` (for comparisons)."""
    root = Path(root)
    return [
        datasette, "serve", "-i", str(db_path), "--inspect-file", str(inspect_file),
        "-m", str(root / "metadata.yml"), "--plugins-dir", str(plugins_dir or root / "plugins"),
        "--template-dir", str(root / "templates"), "--static", f"static:{root / 'static'}",
        *(setting_flags() if with_settings else []), "-h", host, "-p", str(port),
    ]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(command, port, start_timeout=30):
    """Run a `serve_command` (listening on `port`) for the length of a with-block; yields its
    base URL once it answers. Its log goes to a file: a pipe nobody reads would fill and stall it."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    urllib.request.urlopen(f"{base}/-/versions.json", timeout=1).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"datasette did not start: {log.read().decode()[-2000:]}")
                    time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=10)


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
    # The plugins import the harvest package (sanitiser, page ranges), so it is installed
    # too, without re-resolving its already pinned dependencies. $PORT is the host's choice.
    command = serve_command("kb.db", "inspect-data.json", host="0.0.0.0", port="PORT",
                            datasette="datasette", root=".")
    shell = shlex.join(command).replace(" -p PORT", ' -p "${PORT:-%d}"' % PUBLISH_PORT)
    return f"""# The LDN evidence base, served read-only by Datasette. Written by `kb publish`.
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
    for name in SITE_FILES + ["pyproject.toml", "README.md"]:
        shutil.copyfile(ROOT / name, out / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SITE_FOLDERS + ["harvest"]:
        shutil.copytree(ROOT / name, out / name, ignore=ignore)
    (out / "requirements.txt").write_text("\n".join(pinned_requirements()) + "\n", encoding="utf-8")
    (out / "Dockerfile").write_text(dockerfile(), encoding="utf-8")
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
