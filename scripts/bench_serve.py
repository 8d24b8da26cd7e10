"""Serving on every core: throughput on distinct uncached pages with 1 and N worker processes,
and what the home page's first hit costs against a paper page's.

Each measurement starts the site afresh, exactly as `make serve` runs it (`kb serve`: settings.json,
plugins/, the response cache), so no measured page is in any worker's cache: every request
renders a page that process has not rendered before. A warm-up on other pages (other papers,
other searches) first compiles templates and query plans in every worker.

1. Throughput (pages/s) on the same list of distinct pages (paper pages, effects and trial rows,
   searches, filtered tables): one client at a time against 1 worker (the sequential baseline),
   then 20 concurrent clients against 1 worker and against N workers (default: the cores).
   Aim, on 2 cores: 20 clients on N workers get at least 1.8x the sequential throughput.
2. First hits: the home page's first request against a paper page's, on a worker warmed up on
   other pages, median over fresh servers. Aim: the home page costs at most 3x a paper page.

Run: .venv/bin/python scripts/bench_serve.py [kb.db] [--workers N] [--clients 20] [--pages 240]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datasette.utils import tilde_encode  # noqa: E402

from harvest import site  # noqa: E402

THROUGHPUT_AIM = 1.8
HOME_AIM = 3.0


@contextlib.contextmanager
def serving(db_path, inspect_file, workers):
    port = site.free_port()
    with site.running(site.serve_command(db_path, inspect_file, port=port, workers=workers), port,
                      workers=workers) as base:
        yield base


def pages(db_path):
    """Distinct pages a reader asks for, by kind: row pages, searches, filtered tables."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    keys = [key for (key,) in connection.execute("select paper_id from papers order by paper_id")]
    years = [year for (year,) in connection.execute("select distinct year from papers where year is not null order by year")]
    words = sorted({word.lower().strip(".,:;()") for (title,) in connection.execute("select title from papers")
                    for word in (title or "").split() if len(word.strip(".,:;()")) >= 6 and word.isascii()})
    effects = [key for (key,) in connection.execute("select effect_id from effects order by effect_id")]
    trials = [key for (key,) in connection.execute("select registry_id from trials order by registry_id")]
    kinds = [
        [f"/kb/papers/{tilde_encode(key)}" for key in keys],
        [f"/kb/search_papers?q={urllib.parse.quote(word)}" for word in words],
        [f"/kb/paper_facets?_search={urllib.parse.quote(word)}" for word in words],
        [f"/kb/tags?paper_id={urllib.parse.quote(key)}" for key in keys],
        [f"/kb/papers?year={year}" for year in years],
        [f"/kb/effects/{tilde_encode(key)}" for key in effects],
        [f"/kb/trials/{tilde_encode(key)}" for key in trials],
    ]
    # Round-robin over the kinds, so any prefix of the list is a mix of them.
    mixed = [kind[i] for i in range(max(map(len, kinds))) for kind in kinds if i < len(kind)]
    return list(dict.fromkeys(mixed))


_connections = threading.local()


def get(url):
    """Seconds to fetch `url` in full, over this thread's kept-alive connection (as a browser does)."""
    parts = urllib.parse.urlsplit(url)
    connection = getattr(_connections, parts.netloc, None)
    if connection is None:
        connection = http.client.HTTPConnection(parts.netloc, timeout=120)
        setattr(_connections, parts.netloc, connection)
    started = time.perf_counter()
    connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path, parts.query, "")))
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{url}: HTTP {response.status}")
    return time.perf_counter() - started


def warm_up(base, paths, clients):
    """Every worker renders each kind of page once or more before timing (templates, plans)."""
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(get, [base + path for path in paths]))


def throughput(db_path, inspect_file, measured, warm, workers, clients):
    """(pages per second, the client's share of one core) over `measured`, each requested once,
    on a fresh server."""
    with serving(db_path, inspect_file, workers) as base:
        warm_up(base, warm, max(clients, 2 * workers))
        urls = [base + path for path in measured]
        started, cpu = time.perf_counter(), time.process_time()
        if clients == 1:
            for url in urls:
                get(url)
        else:
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(get, urls))
        wall = time.perf_counter() - started
        return len(urls) / wall, (time.process_time() - cpu) / wall


def first_hits(db_path, inspect_file, papers, warm):
    """(home page ms, paper page ms): the first request for each on a single worker warmed up on
    other pages (other papers among them; never the home page, so nothing of it is prepared)."""
    with serving(db_path, inspect_file, 1) as base:
        warm_up(base, warm, 1)
        home = get(base + "/") * 1000
        paper = statistics.median(get(base + path) for path in papers) * 1000
    return home, paper


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", nargs="?", default=str(ROOT / "kb.db"))
    parser.add_argument("--workers", type=int, default=site.cores(), help="worker processes (default: the cores)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--pages", type=int, default=240, help="distinct uncached pages per throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers per configuration (medians printed)")
    args = parser.parse_args()
    if not Path(args.db).is_file():
        raise SystemExit(f"{args.db}: no such database")
    every = pages(args.db)
    # A page warmed up is cached in some worker, so warm-up pages are never measured.
    warm, measured = every[::4][:40], [page for page in every if page not in set(every[::4][:40])][:args.pages]
    paper_pages = [page for page in measured if page.startswith("/kb/papers/")][:5]
    print(f"{site.cores()} cores, load average {os.getloadavg()[0]:.2f}; {len(measured)} distinct uncached pages "
          f"per run ({len(warm)} others to warm up); {args.workers} workers")

    configurations = [("1 client, 1 worker (sequential)", 1, 1), (f"{args.clients} clients, 1 worker", 1, args.clients),
                      (f"{args.clients} clients, {args.workers} workers", args.workers, args.clients)]
    rates = {label: [] for label, _, _ in configurations}
    client_cpu = {label: [] for label, _, _ in configurations}
    with tempfile.TemporaryDirectory() as workdir:
        inspect_file = Path(workdir) / "inspect-data.json"
        site.write_inspect_file(args.db, inspect_file)
        # Rounds interleave the configurations, so a change in the machine's load hits them alike.
        for _ in range(args.rounds):
            for label, workers, clients in configurations:
                rate, cpu = throughput(args.db, inspect_file, measured, warm, workers, clients)
                rates[label].append(rate)
                client_cpu[label].append(cpu)
        hits = [first_hits(args.db, inspect_file, paper_pages, warm) for _ in range(args.rounds)]

    sequential = statistics.median(rates[configurations[0][0]])
    print(f"uncached throughput (median of {args.rounds} rounds; the benchmark's own clients use the "
          "share of a core shown):")
    for label, _, _ in configurations:
        rate = statistics.median(rates[label])
        print(f"  {label:>34}: {rate:6.1f} pages/s = {rate / sequential:.2f}x sequential "
              f"(runs {', '.join(f'{r:.1f}' for r in rates[label])}; clients {statistics.median(client_cpu[label]):.0%})")
    one, many = (statistics.median(rates[label]) for label, _, _ in configurations[1:])
    print(f"  {args.workers} workers / 1 worker at {args.clients} clients = {many / one:.2f}x; {args.workers} workers "
          f"give {many / sequential:.2f}x the sequential throughput: "
          f"{'meets' if many / sequential >= THROUGHPUT_AIM else 'misses'} the {THROUGHPUT_AIM}x aim")
    home = statistics.median(h for h, _ in hits)
    paper = statistics.median(p for _, p in hits)
    print(f"first hit (median of {args.rounds} fresh servers): home page {home:.1f} ms, paper page {paper:.1f} ms; "
          f"home / paper = {home / paper:.1f}x ({'meets' if home / paper <= HOME_AIM else 'misses'} "
          f"the {HOME_AIM:g}x aim)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
