"""Latency of the served site under load: the same 400-request mix one at a time, then from
20 concurrent clients, against `datasette serve` started exactly as `make serve` starts it
(settings.json, plugins/). For comparison the same runs go to the site as it was: Datasette's
default settings (facet suggestions on) and no response cache (plugins/response_cache.py
left out); the ratios are printed.

Target: p95 under load at most 5x the sequential p50 of the same mix.

Run: .venv/bin/python scripts/bench_serve.py [kb.db] [--requests 400] [--clients 20]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvest import site  # noqa: E402

TARGET_RATIO = 5
NOW = "now (settings.json, response cache)"
BEFORE = "before (Datasette defaults, no response cache)"


@contextlib.contextmanager
def serving(db_path, before):
    """A server for db_path; `before`: Datasette's default settings and no response cache."""
    with tempfile.TemporaryDirectory() as workdir:
        inspect_file = Path(workdir) / "inspect-data.json"
        site.write_inspect_file(db_path, inspect_file)
        plugins = Path(workdir) / "plugins"
        shutil.copytree(ROOT / "plugins", plugins, ignore=shutil.ignore_patterns("__pycache__", "response_cache.py"))
        port = site.free_port()
        command = site.serve_command(db_path, inspect_file, port=port, with_settings=not before,
                                     plugins_dir=plugins if before else None)
        with site.running(command, port) as base:
            yield base


def request_mix(db_path, total):
    """The issue's mix: the papers table, the evidence view, searches and paper pages."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    if not connection.execute("select 1 from sqlite_master where name = 'search_texts_fts'").fetchone():
        raise SystemExit(f"{db_path}: built by an older version (no search index); run `make build` first")
    keys = [k for (k,) in connection.execute("select pmid from papers order by pmid limit 5")]
    paths = [
        "/kb/papers",
        "/kb/clinical_evidence",
        "/kb/evidence_table",
        "/kb/search_papers?q=" + urllib.parse.quote("pain threshold"),
        "/kb/search_papers?q=" + urllib.parse.quote("4.5 mg"),
        "/kb/paper_facets?_search=crossover",
        *[f"/kb/papers/{urllib.parse.quote(k, safe='')}" for k in keys],
    ]
    return [paths[i % len(paths)] for i in range(total)]


def timed_get(url):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"{url}: HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def run(base, mix, clients):
    urls = [base + path for path in mix]
    for url in dict.fromkeys(urls):  # warm up: first hits compile templates and plans
        timed_get(url)
    if clients == 1:
        return [timed_get(url) for url in urls]
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(timed_get, urls))


def summary(times):
    ordered = sorted(times)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[max(0, int(round(0.95 * len(ordered))) - 1)],
        "max": ordered[-1],
    }


def measure(db_path, mix, clients, before):
    with serving(db_path, before) as base:
        sequential = summary(run(base, mix, 1))
        concurrent = summary(run(base, mix, clients))
    return sequential, concurrent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", nargs="?", default=str(ROOT / "kb.db"))
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    mix = request_mix(args.db, args.requests)
    print(f"{len(mix)} requests over {len(set(mix))} pages; sequential, then {args.clients} concurrent clients")
    results = {}
    for label, before in ((NOW, False), (BEFORE, True)):
        sequential, concurrent = measure(args.db, mix, args.clients, before)
        ratio = concurrent["p95"] / sequential["p50"]
        results[label] = concurrent["p95"]
        print(f"{label}:")
        for name, figures in (("sequential", sequential), (f"{args.clients} concurrent", concurrent)):
            print(f"  {name:>14}: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms, max {figures['max']:.1f} ms")
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        print(f"  p95 under load / sequential p50 = {ratio:.1f}x ({verdict} the {TARGET_RATIO}x target)")
    print(f"p95 under load: before / now = {results[BEFORE] / results[NOW]:.1f}x")


if __name__ == "__main__":
    main()
