"""`kb publish`: the deployable directory, and the scheduled workflow that harvests and deploys."""

import json
import os
import re
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
    for part in ("kb serve --db kb.db --inspect-file inspect-data.json", "--site-dir .", "--host 0.0.0.0",
                 '--port "${PORT:-8001}"'):
        assert part in command, part
    assert "--workers" not in command  # kb serve's default: one worker per core of the container
    assert "uvicorn==" in " ".join(requirements)  # the server kb serve runs, pinned too
    assert sqlite3.connect(out / "kb.db").execute("select count(*) from papers").fetchone() == (8,)


def test_published_readme_shows_its_images(published):
    out = published / "out"
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "README.md").read_text())
    assert shown  # the README shows screenshots
    for path in shown:
        assert (out / path).is_file(), path


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


class CachedApp:
    """plugins/response_cache.py around a stand-in app whose every answer says which call made it.

    `/bytes/N` answers N bytes (in two chunks); `/missing` a 404; `/cookie` sets a cookie;
    any other path 'part one, call K'. `rendered` lists the paths the app itself answered."""

    def __init__(self, **limits):
        module = load_plugin("response_cache")
        for name, value in limits.items():
            setattr(module, name, value)
        self.rendered = []
        self.cached = module.asgi_wrapper(datasette=None)(self.app)

    async def app(self, scope, receive, send):
        self.rendered.append(scope["path"])
        status = 404 if scope["path"] == "/missing" else 200
        headers = [(b"set-cookie", b"x=1")] if scope["path"] == "/cookie" else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["path"].startswith("/bytes/"):
            size = int(scope["path"].rsplit("/", 1)[1])
            await send({"type": "http.response.body", "body": b"x" * (size // 2), "more_body": True})
            await send({"type": "http.response.body", "body": b"y" * (size - size // 2)})
            return
        await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
        await send({"type": "http.response.body", "body": f"call {len(self.rendered)}".encode()})

    def get(self, path, query=b"", method="GET"):
        import asyncio

        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "query_string": query}
        asyncio.run(self.cached(scope, None, send))
        return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    def rendered_by(self, paths):
        """Which of `paths`, requested in order, the app had to render (not answered from memory)."""
        before = len(self.rendered)
        for path in paths:
            self.get(path)
        return self.rendered[before:]


def test_response_cache_answers_repeated_gets_from_memory_only():
    site = CachedApp()
    assert site.get("/kb/papers") == b"part one, call 1"
    assert site.get("/kb/papers") == b"part one, call 1"  # the same bytes, the app not called again
    assert site.get("/kb/papers", b"_size=max") == b"part one, call 2"
    for path, method in (("/missing", "GET"), ("/cookie", "GET"), ("/kb/papers", "POST")):
        first, second = site.get(path, method=method), site.get(path, method=method)
        assert first != second, (path, method)  # never answered from memory
    assert len(site.rendered) == 8


def test_response_cache_drops_the_least_recently_used_page_first():
    site = CachedApp(MAX_ENTRIES=3)
    assert site.rendered_by(["/a", "/b", "/c"]) == ["/a", "/b", "/c"]
    # /a is used again, so /b is now the least recently used: a fourth page drops it, not /a.
    assert site.rendered_by(["/a", "/d"]) == ["/d"]
    assert site.rendered_by(["/a", "/c", "/d"]) == []
    assert site.rendered_by(["/b"]) == ["/b"]  # rendered again; that drops /a (used before /c, /d)
    assert site.rendered_by(["/c", "/d", "/b"]) == []
    assert site.rendered_by(["/a"]) == ["/a"]


def test_response_cache_keeps_at_most_max_entries_pages():
    site = CachedApp(MAX_ENTRIES=3)
    pages = [f"/page/{i}" for i in range(5)]
    site.rendered_by(pages)
    # Only the last three fit: asking for the first two renders them again (each dropping the
    # oldest page left), so asking for all five in order renders every one again.
    assert site.rendered_by(pages[2:]) == []
    assert site.rendered_by(pages) == pages


def test_response_cache_bounds_each_page_and_the_total_in_bytes():
    site = CachedApp(MAX_BODY=20, MAX_BYTES=50)
    assert site.get("/bytes/20") == b"x" * 10 + b"y" * 10  # whole body, from its two chunks
    assert site.rendered_by(["/bytes/20", "/bytes/21", "/bytes/21"]) == ["/bytes/21", "/bytes/21"]  # 21 > MAX_BODY
    # 20 + 19 + 11 = 50 bytes fit; one byte more drops the least recently used page (/bytes/20).
    assert site.rendered_by(["/bytes/19", "/bytes/11", "/bytes/20", "/bytes/19", "/bytes/11"]) == [
        "/bytes/19", "/bytes/11"]
    assert site.rendered_by(["/bytes/1"]) == ["/bytes/1"]
    assert site.rendered_by(["/bytes/19", "/bytes/11", "/bytes/1"]) == []
    assert site.rendered_by(["/bytes/20"]) == ["/bytes/20"]


def test_the_published_directory_serves_as_its_dockerfile_says(published):
    """Run the Dockerfile's CMD (with this environment's kb) inside the published directory."""
    import shlex
    import urllib.request

    from harvest import site

    out = published / "out"
    [command] = [line[4:] for line in (out / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    port = site.free_port()
    argv = shlex.split(command.replace('"${PORT:-8001}"', str(port)).replace("0.0.0.0", "127.0.0.1"))
    argv[0] = site.KB
    with site.running(argv, port, workers=site.cores(), cwd=out) as base:
        assert "Disallow: /" in urllib.request.urlopen(base + "/robots.txt").read().decode()
        assert "Evidence table: clinical studies" in urllib.request.urlopen(base + "/kb/clinical_evidence").read().decode()
        assert urllib.request.urlopen(base + "/kb.db").read()[:15] == b"SQLite format 3"
        databases = json.loads(urllib.request.urlopen(base + "/-/databases.json").read())
        assert databases[0]["is_mutable"] is False
        assert databases[0]["path"] == str(out / "kb.db")


def test_kb_serve_runs_every_worker_on_one_port_with_the_settings_file(published):
    """Two worker processes answer on one port, each serving kb.db immutable with settings.json."""
    import urllib.request

    from harvest import site

    port = site.free_port()
    command = site.serve_command(published / "kb.db", published / "inspect.json", port=port, workers=2)
    # `running` waits until two workers have said they started (it fails after a minute otherwise).
    with site.running(command, port, workers=2) as base:
        answers = [json.loads(urllib.request.urlopen(base + "/-/settings.json").read()) for _ in range(6)]
        database = json.loads(urllib.request.urlopen(base + "/-/databases.json").read())[0]
        processes = server_processes(port)
    assert all({name: answer[name] for name in kb.SETTINGS} == kb.SETTINGS for answer in answers)
    assert database["is_mutable"] is False and (published / "inspect.json").is_file()
    workers = [command for command in processes if b"multiprocessing.spawn" in b" ".join(command)]
    assert len(workers) == 2, processes  # uvicorn's supervisor started two worker processes


def server_processes(port):
    """Command lines of the `kb serve` on `port` and of its descendants (Linux /proc)."""
    from pathlib import Path

    parents = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            command = (status.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parents[int(fields["Pid"])] = (int(fields["PPid"]), command)
    [root] = [pid for pid, (_, command) in parents.items() if b"serve" in command and str(port).encode() in command]
    found = {root}
    while True:
        more = {pid for pid, (parent, _) in parents.items() if parent in found} - found
        if not more:
            return [parents[pid][1] for pid in sorted(found)]
        found |= more


def test_kb_serve_defaults_to_one_worker_per_core(monkeypatch, tmp_path):
    from harvest import site

    started = {}
    monkeypatch.setattr(site, "serve", lambda *args, **options: started.update(options))
    db_path = tmp_path / "kb.db"
    kb.build(db_path).close()
    result = CliRunner().invoke(cli, ["serve", "--db", str(db_path), "--inspect-file", str(tmp_path / "i.json")])
    assert result.exit_code == 0, result.output
    assert started["workers"] == len(os.sched_getaffinity(0))
    result = CliRunner().invoke(cli, ["serve", "--db", str(db_path), "--workers", "0"])
    assert result.exit_code == 2 and "--workers" in result.output
