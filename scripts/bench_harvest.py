"""Benchmark: the project's batched DOI harvest vs a naive per-DOI loop, and under the live service's faults.

The fake server (tests/fake_eutils.py) holds N synthetic records and enforces
NCBI's 3 requests/s limit; every path uses the same paced `EutilsClient`
(no API key, so the client's default 2.5 requests/s). For each N:

  batched   harvest.fetch.fetch_pmids_for_dois + fetch_records (esearch of 200 DOIs
            per request, efetch of 200 PMIDs per request), records parsed;
  pipeline  harvest.pipeline.harvest_dois into a temporary kb.db;
  faults    the same pipeline while the fake misbehaves as the live service does
            (tests/fake_eutils.realistic_faults: 429s with and without Retry-After: 2,
            400 back-end timeouts, <ERROR> and mid-stream error text in 200s, 502/503,
            cut bodies, resets) on a share of requests (--fault-rate), printed beside
            the clean pipeline run with the retries the faults forced;
  naive     for each DOI: one esearch, then one efetch of what it found
            (what common PubMed scripts do).

Everything printed is measured in this run. Usage:

    .venv/bin/python scripts/bench_harvest.py               # N = 50 and 500 (~7 minutes)
    .venv/bin/python scripts/bench_harvest.py --sizes 500 --naive-max 0
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_eutils import FakeEutils, realistic_faults, record_dois, synthetic_records  # noqa: E402

from harvest import fetch, pipeline  # noqa: E402
from harvest.dois import read_doi_lines  # noqa: E402
from harvest.parse import parse_pubmed_xml  # noqa: E402


def new_client(server):
    # No key and no e-mail: NCBI's 3 requests/s applies, the client paces itself below it.
    return fetch.EutilsClient(base_url=server.base_url, api_key="", email="", backoff=1.0)


def batched(client, dois):
    pmids = fetch.fetch_pmids_for_dois(client, dois)
    found = set()
    for _, xml in fetch.fetch_records(client, pmids):
        records, _ = parse_pubmed_xml(xml)
        found.update(d for r in records for d in r["dois"])
    return len(found & set(dois))


def naive(client, dois):
    found = 0
    for doi in dois:
        pmids, _ = client.esearch(fetch.doi_term([doi]), retmax=20)
        if not pmids:
            continue
        records, _ = parse_pubmed_xml(client.efetch(pmids))
        found += any(doi in r["dois"] for r in records)
    return found


def pipeline_run(client, dois):
    with tempfile.TemporaryDirectory() as directory:
        with pipeline.atomic_database(Path(directory) / "kb.db") as db:
            summary = pipeline.harvest_dois(db, client, list(read_doi_lines(dois)))
    return summary.found


def measure(name, run, n, seed, fault_rate=0.0):
    records = synthetic_records(n, seed=seed)
    dois = record_dois(records)
    with FakeEutils(records=records) as server:  # NCBI's limit: 3 requests/s without a key
        if fault_rate:
            server.random_faults(realistic_faults(retry_after="2"), rate=fault_rate, seed=seed)
        client = new_client(server)
        started = time.monotonic()
        found = run(client, dois)
        seconds = time.monotonic() - started
        logged = server.requests_to()
        return {
            "path": name, "n": n, "found": found, "requests": len(logged),
            "esearch": sum(r.endpoint == "esearch.fcgi" for r in logged),
            "efetch": sum(r.endpoint == "efetch.fcgi" for r in logged),
            "post": sum(r.method == "POST" for r in logged),
            "http_429": sum(r.status == 429 for r in logged),
            "faults": sum(bool(r.fault) for r in logged),
            "retries": client.counts()["retries"], "retried": dict(client.retried),
            "max_per_1s": server.max_in_window(1.0), "seconds": seconds,
        }


def show(row):
    print(
        f"{row['path']:<9} N={row['n']:<4} found={row['found']:<4} requests={row['requests']:<5}"
        f" (esearch {row['esearch']}, efetch {row['efetch']}, POST {row['post']}, 429s {row['http_429']},"
        f" retries {row['retries']}, max {row['max_per_1s']} in any 1 s)  wall {row['seconds']:.2f} s",
        flush=True,
    )


def show_faults(clean, faulty):
    budget = 2 * -(-clean["n"] // 200) + 2
    retried = ", ".join(f"{reason} x{count}" for reason, count in sorted(faulty["retried"].items())) or "none"
    print(
        f"  N={clean['n']}: under faults {faulty['found']}/{faulty['n']} found with {faulty['requests']} requests"
        f" = {faulty['requests'] - faulty['retries']} (budget 2*ceil(N/200)+2 = {budget}) + {faulty['retries']}"
        f" retries for {faulty['faults']} faults served ({retried}); clean run {clean['requests']} requests;"
        f" faults/clean = {faulty['seconds'] / clean['seconds']:.1f}x wall time",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--naive-max", type=int, default=500,
                        help="run the naive per-DOI loop only for N up to this (it takes ~N/1.4 s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault-rate", type=float, default=0.3,
                        help="share of requests that misbehave in the faults run")
    args = parser.parse_args(argv)

    print("fake E-utilities: 3 requests/s limit (no key); client: default pacing and retries", flush=True)
    started = time.monotonic()
    for n in args.sizes:
        rows = {"batched": measure("batched", batched, n, args.seed)}
        show(rows["batched"])
        rows["pipeline"] = measure("pipeline", pipeline_run, n, args.seed)
        show(rows["pipeline"])
        rows["faults"] = measure("faults", pipeline_run, n, args.seed, fault_rate=args.fault_rate)
        show(rows["faults"])
        show_faults(rows["pipeline"], rows["faults"])
        if n <= args.naive_max:
            rows["naive"] = measure("naive", naive, n, args.seed)
            show(rows["naive"])
            slow = rows["naive"]
            for name in ("batched", "pipeline"):
                fast = rows[name]
                print(
                    f"  N={n}: naive/{name} = {slow['requests'] / fast['requests']:.1f}x requests, "
                    f"{slow['seconds'] / fast['seconds']:.1f}x wall time",
                    flush=True,
                )
        else:
            print(f"  N={n}: naive loop not run (--naive-max {args.naive_max})", flush=True)
    print(f"total benchmark time {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
