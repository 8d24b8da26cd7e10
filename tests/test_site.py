"""`kb publish`: the deployable directory, and the scheduled workflow that harvests and deploys."""

import json
import os
import sqlite3
import subprocess

import pytest
import yaml
from click.testing import CliRunner

import publish_db as kb
from harvest.cli import cli


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("publish")
    kb.build(workdir / "kb.db").close()
    result = CliRunner().invoke(cli, ["publish", "--db", str(workdir / "kb.db"), "--out", str(workdir / "out")])
    assert result.exit_code == 0, result.output
    return workdir


def test_publish_writes_a_deployable_site(published):
    out = published / "out"
    assert (out / "kb.db").read_bytes() == (published / "kb.db").read_bytes()
    inspect = json.loads((out / "inspect-data.json").read_text())
    assert inspect["kb"]["tables"]["papers"]["count"] == 8
    for name in ("metadata.yml", "settings.json", "plugins/markup.py", "templates/index.html", "static/kb.css",
                 "harvest/parse.py", "pyproject.toml"):
        assert (out / name).is_file(), name
    requirements = (out / "requirements.txt").read_text().split()
    assert "datasette==0.65.5" in requirements and "datasette-block-robots==1.1.1" in requirements
    assert all("==" in r for r in requirements)
    dockerfile = (out / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    [command] = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    for part in ("datasette serve -i kb.db --inspect-file inspect-data.json", "-m metadata.yml",
                 "--plugins-dir plugins", "--template-dir templates", "--static static:static",
                 "--setting allow_download on", "--setting sql_time_limit_ms", "-h 0.0.0.0", '${PORT:-8001}'):
        assert part in command, part
    assert sqlite3.connect(out / "kb.db").execute("select count(*) from papers").fetchone() == (8,)


def test_publish_refuses_a_missing_database(tmp_path):
    result = CliRunner().invoke(cli, ["publish", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "none.db" in result.output
    assert not (tmp_path / "out").exists()


def test_weekly_workflow_harvests_tests_commits_only_changes_and_deploys():
    workflow = yaml.safe_load((kb.ROOT / ".github/workflows/harvest.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "1"]
    steps = workflow["jobs"]["harvest"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    harvest = next(step for step in steps if step.get("run") == "make harvest")
    assert harvest["env"]["NCBI_API_KEY"] == "${{ secrets.NCBI_API_KEY }}"
    for command in ("make test", "git diff --quiet -- kb.db", "git add kb.db",
                    "make publish", "flyctl deploy build/publish"):
        assert command in runs, command
    assert runs.index("make harvest") < runs.index("make test") < runs.index("git add kb.db") < runs.index("flyctl deploy")
    # `make harvest` rebuilds and runs the soundness check on kb.db (a dry run lists its commands).
    env = {k: v for k, v in os.environ.items() if k not in ("DB", "SOURCES", "CURATED") and not k.startswith("MAKE")}
    planned = subprocess.run(["make", "-n", "harvest"], cwd=kb.ROOT, env=env, capture_output=True, text=True).stdout
    assert planned.index("kb harvest --db kb.db") < planned.index("kb build --db kb.db") \
        < planned.index("scripts/soundness.py kb.db")


def load_plugin(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, kb.ROOT / "plugins" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_response_cache_answers_repeated_gets_from_memory_only():
    import asyncio

    calls = []

    async def app(scope, receive, send):
        calls.append((scope["method"], scope["path"], scope["query_string"]))
        status = 404 if scope["path"] == "/missing" else 200
        headers = [(b"set-cookie", b"x=1")] if scope["path"] == "/cookie" else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
        await send({"type": "http.response.body", "body": f"call {len(calls)}".encode()})

    cached = load_plugin("response_cache").asgi_wrapper(datasette=None)(app)

    def get(path, query=b"", method="GET"):
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "query_string": query}
        asyncio.run(cached(scope, None, send))
        return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    assert get("/kb/papers") == b"part one, call 1"
    assert get("/kb/papers") == b"part one, call 1"  # the same bytes, the app not called again
    assert get("/kb/papers", b"_size=max") == b"part one, call 2"
    for path, method in (("/missing", "GET"), ("/cookie", "GET"), ("/kb/papers", "POST")):
        first, second = get(path, method=method), get(path, method=method)
        assert first != second, (path, method)  # never answered from memory
    assert len(calls) == 8


def test_the_published_directory_serves_as_its_dockerfile_says(published):
    """Run the Dockerfile's CMD (with this environment's datasette) inside the published directory."""
    import shlex
    import socket
    import subprocess
    import time
    import urllib.request

    from harvest import site

    out = published / "out"
    [command] = [line[4:] for line in (out / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = shlex.split(command.replace('"${PORT:-8001}"', str(port)).replace("0.0.0.0", "127.0.0.1"))
    argv[0] = site.DATASETTE
    server = subprocess.Popen(argv, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/-/versions.json", timeout=1)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
                time.sleep(0.2)
        assert "Disallow: /" in urllib.request.urlopen(base + "/robots.txt").read().decode()
        assert "Evidence table: clinical studies" in urllib.request.urlopen(base + "/kb/clinical_evidence").read().decode()
        assert urllib.request.urlopen(base + "/kb.db").read()[:15] == b"SQLite format 3"
        databases = json.loads(urllib.request.urlopen(base + "/-/databases.json").read())
        assert databases[0]["is_mutable"] is False
    finally:
        server.terminate()
        server.wait(timeout=10)
