"""Benchmark: batched ClinicalTrials.gov and Crossref requests vs one request per id, against fakes.

The fake servers (tests/fake_registries.py) hold N studies and N works. Both paths
use the project's clients (harvest.ctgov / harvest.crossref on the shared polite
client); for each N:

  batched  ctgov.fetch_studies (up to 100 NCT ids per /studies request, pages followed)
           and crossref.fetch_works (one filter=doi: and one filter=updates: request
           per 50 DOIs);
  per id   GET /studies/{nct_id} for each id, and GET /works/{doi} plus
           /works?filter=updates:{doi} for each DOI (what per-record scripts do).

ClinicalTrials.gov pacing is lifted for both paths so the run is short; the time a
path would take at the service's ~40 requests/minute is requests x 1.5 s, printed as
such. Crossref pacing follows the fake's announced limit, as in a harvest.

    .venv/bin/python scripts/bench_registries.py                 # N = 20 and 100
    .venv/bin/python scripts/bench_registries.py --sizes 50
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_registries import FakeCrossref, FakeCtgov, study, work  # noqa: E402

from harvest import crossref, ctgov  # noqa: E402


def batched(ctgov_client, crossref_client, ids, dois):
    studies = {ctgov.nct_id(s) for s in ctgov.fetch_studies(ctgov_client, ids)}
    works = {w["DOI"] for _, m in crossref.fetch_works(crossref_client, dois) for w in crossref.items(m)}
    return studies, works


def per_id(ctgov_client, crossref_client, ids, dois):
    studies = {ctgov.nct_id(ctgov_client.request(f"studies/{i}", {"format": "json"}).json()) for i in ids}
    works = set()
    for doi in dois:
        works.add(crossref_client.request(f"works/{doi}").json()["message"]["DOI"])
        answer = crossref_client.request("works", crossref.updates_params([doi]))
        works.update(w["DOI"] for w in answer.json()["message"]["items"])
    return studies, works


def run(path, n):
    ids = [f"NCT{90000000 + i:08d}" for i in range(n)]
    dois = [f"10.5555/bench.{i}" for i in range(n)]
    with FakeCtgov([study(i) for i in ids]) as ctgov_server, FakeCrossref([work(d) for d in dois]) as crossref_server:
        ctgov_client = ctgov.make_client(ctgov_server.base_url, per_second=1000)
        crossref_client = crossref.make_client(crossref_server.base_url)
        started = time.monotonic()
        studies, works = path(ctgov_client, crossref_client, ids, dois)
        seconds = time.monotonic() - started
        assert studies == set(ids) and works >= set(dois), "a path lost records"
        return ctgov_client.requests_made, crossref_client.requests_made, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100])
    args = parser.parse_args()
    print(f"{'N':>5} {'path':>8} {'CT.gov req':>10} {'Crossref req':>12} {'seconds':>8} "
          f"{'CT.gov at 40/min':>17}")
    for n in args.sizes:
        results = {name: run(path, n) for name, path in (("batched", batched), ("per id", per_id))}
        for name, (ct, cr, seconds) in results.items():
            print(f"{n:>5} {name:>8} {ct:>10} {cr:>12} {seconds:>8.2f} {ct * 60 / ctgov.PER_MINUTE:>15.1f} s")
        (bct, bcr, bs), (nct, ncr, ns) = results["batched"], results["per id"]
        print(f"{n:>5} ratio: per id / batched = {(nct + ncr) / (bct + bcr):.1f}x requests, "
              f"{ns / bs:.1f}x time")


if __name__ == "__main__":
    main()
