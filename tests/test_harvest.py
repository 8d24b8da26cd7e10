"""`kb harvest` end to end: the real client, parser, tagger and store against the fake E-utilities."""

import hashlib
import math
import re
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from fake_eutils import FakeEutils, realistic_faults, record_dois, synthetic_records
from harvest import pipeline
from harvest.cli import cli
from harvest.dois import read_doi_lines
from harvest.fetch import EutilsClient

FIXTURES = Path(__file__).parent / "fixtures"
TRUNCATED = "10.1111/j.1526-4637.2009.00613."
UNKNOWN = "10.9999/not.in.pubmed"


@pytest.fixture
def server():
    with FakeEutils() as fake:
        fake.add_xml((FIXTURES / "pubmed_19453963.xml").read_bytes(), mdat="2024/01/10", edat="2009/05/01")
        fake.add_xml((FIXTURES / "pubmed_23359310.xml").read_bytes(), mdat="2024/01/10", edat="2013/01/20")
        for record in synthetic_records(30, seed=3):
            fake.add(record)
        yield fake


def doi_file(tmp_path, lines):
    path = tmp_path / "dois.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def table_digest(db_path, tables=("papers", "authors", "abstract_sections", "tags", "unresolved_dois")):
    db = sqlite_utils.Database(db_path)
    digest = hashlib.sha256()
    for table in tables:
        for row in db.execute(f"select * from {table} order by 1, 2"):
            digest.update(repr(row).encode())
    return digest.hexdigest()


def run_harvest(server, db_path, dois_path, monkeypatch, *extra):
    monkeypatch.setenv("KB_EUTILS_URL", server.base_url)
    return CliRunner().invoke(cli, ["harvest", "--db", str(db_path), "--dois", str(dois_path), "--quiet", *extra])


def test_harvest_fills_papers_and_records_unresolved_dois(server, tmp_path, monkeypatch):
    synthetic = record_dois(synthetic_records(30, seed=3))[:20]
    lines = [
        "# the two DOIs cited by the 2016 article, as printed",
        f"doi:{TRUNCATED}",
        "https://doi.org/10.1002/ART.37734.",
        UNKNOWN,
        "10.12/too-short-prefix",
        *synthetic,
    ]
    db_path = tmp_path / "kb.db"
    result = run_harvest(server, db_path, doi_file(tmp_path, lines), monkeypatch)
    assert result.exit_code == 3, result.output  # harvested, with inputs left unresolved (listed)
    assert f"unresolved {UNKNOWN}: PubMed has no record with this DOI" in result.stdout

    db = sqlite_utils.Database(db_path)
    papers = {row["doi"]: row for row in db["papers"].rows}
    assert papers["10.1111/j.1526-4637.2009.00613.x"]["pmid"] == "19453963"
    assert papers["10.1002/art.37734"]["journal_iso"] == "Arthritis Rheum"
    assert all(doi in papers for doi in synthetic)
    assert len(papers) == 22

    lookup = db["doi_lookups"].get("10.1111/j.1526-4637.2009.00613.x")
    assert lookup["repaired_from"] == "10.1111/j.1526-4637.2009.00613"
    unresolved = {row["input"]: row for row in db["unresolved_dois"].rows}
    assert "no record" in unresolved[UNKNOWN]["reason"]
    assert unresolved["10.12/too-short-prefix"]["line"] == 5
    assert "malformed" in unresolved["10.12/too-short-prefix"]["reason"]

    # 23 well-formed DOIs: one esearch + one efetch, plus one repair search + one repair fetch.
    asked = 23
    assert server.count() <= 2 * math.ceil(asked / 200) + 2
    assert "repaired DOI 10.1111/j.1526-4637.2009.00613 -> 10.1111/j.1526-4637.2009.00613.x" in result.output

    run = db["harvest_runs"].get(1)
    assert (run["dois_asked"], run["found"], run["unresolved"], run["status"]) == (23, 22, 2, "ok")
    assert db.execute("select count(*) from tags where source = 'auto'").fetchone()[0] > 0


def test_second_run_adds_nothing_and_changes_nothing(server, tmp_path, monkeypatch):
    lines = [TRUNCATED, "10.1002/art.37734", UNKNOWN, *record_dois(synthetic_records(30, seed=3))[:5]]
    db_path = tmp_path / "kb.db"
    dois = doi_file(tmp_path, lines)
    assert run_harvest(server, db_path, dois, monkeypatch).exit_code == 3
    before = table_digest(db_path)
    updated_at = sqlite_utils.Database(db_path).execute("select max(updated_at) from papers").fetchone()
    server.clear_log()

    result = run_harvest(server, db_path, dois, monkeypatch)
    assert result.exit_code == 3, result.output
    assert table_digest(db_path) == before
    db = sqlite_utils.Database(db_path)
    assert db.execute("select max(updated_at) from papers").fetchone() == updated_at
    assert "papers new: 0, updated: 0" in result.output
    # Known DOIs are not looked up again; only the unknown one is asked for (search + repair-free).
    assert server.count("efetch.fcgi") == 0


def test_batches_stay_within_the_request_budget_for_many_dois(tmp_path):
    records = synthetic_records(450, seed=11)
    with FakeEutils(records=records) as fake:
        client = EutilsClient(base_url=fake.base_url, backoff=0.05)
        db_path = tmp_path / "kb.db"
        with pipeline.atomic_database(db_path) as db:
            summary = pipeline.harvest_dois(db, client, list(read_doi_lines(record_dois(records))))
        assert summary.found == 450
        assert fake.count() <= 2 * math.ceil(450 / 200) + 2
        assert fake.max_in_window(1.0) <= 3
        assert {len(r.params["id"].split(",")) for r in fake.requests_to("efetch.fcgi")} <= set(range(1, 201))


@pytest.mark.parametrize(
    "faults",
    [
        [("429", 3, {})],
        [("500", 2, {})],
        [("truncate", 1, {"endpoint": "efetch.fcgi", "fraction": 0.6})],
        [("reset", 1, {}), ("503", 1, {})],
        [("429", 1, {"retry_after": "1"}), ("truncate", 1, {"endpoint": "efetch.fcgi", "at_tag": True})],
    ],
    ids=["429-burst", "html-500", "truncated-xml", "reset-then-503", "retry-after-and-cut-at-tag"],
)
def test_faults_do_not_lose_records(server, tmp_path, faults):
    dois = ["10.1002/art.37734", *record_dois(synthetic_records(30, seed=3))]
    for kind, times, options in faults:
        server.inject(kind, times=times, **options)
    client = EutilsClient(base_url=server.base_url, backoff=0.05)
    db_path = tmp_path / "kb.db"
    with pipeline.atomic_database(db_path) as db:
        summary = pipeline.harvest_dois(db, client, list(read_doi_lines(dois)))
    assert summary.found == len(dois)
    assert sqlite_utils.Database(db_path)["papers"].count == len(dois)
    assert server.pending_faults == 0


def test_failed_harvest_leaves_kb_db_byte_identical(server, tmp_path, monkeypatch):
    db_path = tmp_path / "kb.db"
    dois = doi_file(tmp_path, ["10.1002/art.37734"])
    assert run_harvest(server, db_path, dois, monkeypatch).exit_code == 0
    before = db_path.read_bytes()

    more = doi_file(tmp_path, record_dois(synthetic_records(30, seed=3))[:10])
    server.inject("500", times=50)
    monkeypatch.setenv("KB_EUTILS_URL", server.base_url)
    monkeypatch.setattr(EutilsClient, "__init__", _fast_client_init(EutilsClient.__init__))
    result = CliRunner().invoke(cli, ["harvest", "--db", str(db_path), "--dois", str(more), "--quiet"])
    assert result.exit_code != 0
    assert "giving up" in result.output and server.base_url in result.output
    assert "api_key" not in result.output
    assert db_path.read_bytes() == before
    assert not list(tmp_path.glob(".kb.db.*"))


@pytest.mark.parametrize("quiet", [False, True])
def test_unreachable_network_is_one_clear_line(tmp_path, monkeypatch, quiet):
    db_path = tmp_path / "kb.db"
    db_path.write_bytes(b"")  # an existing (empty) database must survive untouched
    monkeypatch.setenv("KB_EUTILS_URL", "http://127.0.0.1:9/entrez/eutils/")
    monkeypatch.setattr(EutilsClient, "__init__", _fast_client_init(EutilsClient.__init__))
    result = CliRunner().invoke(
        cli, ["harvest", "--db", str(db_path), "--dois", str(doi_file(tmp_path, ["10.1002/art.37734"]))]
        + (["--quiet"] if quiet else [])
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    *retries, error = [line for line in result.stderr.splitlines() if line.strip()]
    assert "cannot reach http://127.0.0.1:9/entrez/eutils/esearch.fcgi" in error
    assert error.endswith(f"connection refused  ({db_path} left unchanged)")
    # One line per retry, unless --quiet (max_retries is 2 in these tests).
    assert retries == ([] if quiet else [
        "connection refused from esearch; retry 1 of 2 in 0.0 s",
        "connection refused from esearch; retry 2 of 2 in 0.0 s",
    ])
    assert db_path.read_bytes() == b""


def test_interrupted_harvest_leaves_kb_db_byte_identical(server, tmp_path, monkeypatch):
    db_path = tmp_path / "kb.db"
    assert run_harvest(server, db_path, doi_file(tmp_path, ["10.1002/art.37734"]), monkeypatch).exit_code == 0
    before = db_path.read_bytes()
    calls = []

    def interrupt_on_second_paper(db, record, source="pubmed"):
        calls.append(record["pmid"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(db, record, source)

    original = pipeline.store.save_paper
    monkeypatch.setattr(pipeline.store, "save_paper", interrupt_on_second_paper)
    result = run_harvest(server, db_path, doi_file(tmp_path, record_dois(synthetic_records(30, seed=3))[:5]), monkeypatch)
    assert result.exit_code == 1 and "interrupted" in result.output
    assert db_path.read_bytes() == before


def test_secrets_are_sent_but_never_stored(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NCBI_API_KEY", "k" * 36)
    monkeypatch.setenv("NCBI_EMAIL", "curator@example.org")
    db_path = tmp_path / "kb.db"
    assert run_harvest(server, db_path, doi_file(tmp_path, ["10.1002/art.37734"]), monkeypatch).exit_code == 0
    sent = server.requests_to("esearch.fcgi")[0].params
    assert sent["api_key"] == "k" * 36 and sent["email"] == "curator@example.org" and sent["tool"]
    stored = db_path.read_bytes()
    assert b"k" * 36 not in stored and b"curator@example.org" not in stored


def test_refresh_with_nothing_new_is_cheap_and_rewrites_nothing(server, tmp_path):
    client = EutilsClient(base_url=server.base_url, backoff=0.05)
    db_path = tmp_path / "kb.db"
    keep = pipeline.make_keep_rule({"all_of": [["naltrexone"], ["fibromyalgia"]]})
    queries = ["naltrexone AND fibromyalgia"]
    with pipeline.atomic_database(db_path) as db:
        pipeline.harvest_dois(db, client, list(read_doi_lines(["10.1002/art.37734"])))
        first = pipeline.refresh(db, client, queries, keep)
        pipeline.note_pubmed_harvest(db, "2026-01-01T00:00:00Z")
    kept = sqlite_utils.Database(db_path).execute("select count(*) from discoveries where kept = 1").fetchone()[0]
    assert first.new_papers == kept > 0
    before = table_digest(db_path)

    server.clear_log()
    with pipeline.atomic_database(db_path) as db:
        again = pipeline.refresh(db, client, queries, keep)
    assert server.count() <= 3
    assert again.new_papers == again.updated_papers == 0
    assert table_digest(db_path) == before


def test_refresh_fetches_records_changed_since_the_last_harvest(server, tmp_path):
    client = EutilsClient(base_url=server.base_url, backoff=0.05)
    db_path = tmp_path / "kb.db"
    with pipeline.atomic_database(db_path) as db:
        pipeline.harvest_dois(db, client, list(read_doi_lines(["10.1002/art.37734"])))
        pipeline.note_pubmed_harvest(db, "2026-01-01T00:00:00Z")
    revised = (FIXTURES / "pubmed_23359310.xml").read_text().replace(
        "Low-dose naltrexone for the treatment of fibromyalgia", "Low-dose naltrexone (revised) for the treatment of fibromyalgia"
    )
    server.add_xml(revised, mdat="2030/01/01", edat="2013/01/20")
    with pipeline.atomic_database(db_path) as db:
        summary = pipeline.refresh(db, client, [], None)
    assert summary.updated_papers == 1
    title = sqlite_utils.Database(db_path)["papers"].get("23359310")["title"]
    assert "(revised)" in title


def _fast_client_init(original):
    def init(self, *args, **kwargs):
        kwargs.setdefault("backoff", 0.01)
        kwargs.setdefault("max_retries", 2)
        original(self, *args, **kwargs)

    return init


def test_sources_harvest_discovers_by_saved_query_and_keeps_by_rule(server, tmp_path, monkeypatch):
    sources = tmp_path / "sources.yml"
    sources.write_text(
        "dois:\n"
        f"  - doi: \"{TRUNCATED}\"\n    note: as printed\n"
        "queries:\n  - naltrexone AND fibromyalgia\n"
        "keep:\n  all_of:\n    - [naltrexone]\n    - [fibromyalgia]\n"
    )
    monkeypatch.setenv("KB_EUTILS_URL", server.base_url)
    db_path = tmp_path / "kb.db"
    result = CliRunner().invoke(cli, ["harvest", "--db", str(db_path), "--sources", str(sources), "--quiet"])
    assert result.exit_code == 0, result.output
    db = sqlite_utils.Database(db_path)
    assert db["papers"].get("19453963")["doi"] == "10.1111/j.1526-4637.2009.00613.x"
    kept = [row["pmid"] for row in db.query("select pmid from discoveries where kept = 1")]
    assert kept and all(db["papers"].count_where("pmid = ?", [p]) for p in kept)
    for row in db.query("select p.title, p.abstract from papers p join discoveries d using (pmid)"):
        text = f"{row['title']} {row['abstract']}".lower()
        assert "naltrexone" in text and "fibromyalgia" in text
    assert db["harvest_runs"].get(1)["mode"] == "sources"


def test_refresh_follows_pubmed_links_to_errata_and_comments(tmp_path):
    from fake_eutils import FakeRecord

    erratum = FakeRecord(pmid="99000009", title="Erratum: an invented correction notice.",
                         publication_types=[("D016425", "Published Erratum")])
    with FakeEutils(records=[erratum]) as fake:
        fake.add_xml((FIXTURES / "pubmed_edge_cases.xml").read_bytes())
        client = EutilsClient(base_url=fake.base_url, backoff=0.05)
        db_path = tmp_path / "kb.db"
        with pipeline.atomic_database(db_path) as db:
            summary = pipeline.refresh(db, client, [], None, pmids=["99000001"])
        assert summary.new_papers == 2
        db = sqlite_utils.Database(db_path)
        assert db["papers"].get("99000009")["title"] == "Erratum: an invented correction notice."
        # The cited paper (a "Cites" link) is not followed; the comment target is ours to curate, not fetch.
        assert not db["papers"].count_where("paper_id = '19453963'")
        related = {(r["paper_id"], r["relation_code"], r["other_key"], r["other_in_kb"])
                   for r in db.query("select paper_id, relation_code, other_key, other_in_kb from related_papers")}
        assert ("99000001", "ErratumIn", "99000009", 1) in related
        assert ("99000009", "ErratumFor", "99000001", 1) in related
        fake.clear_log()
        with pipeline.atomic_database(db_path) as db:
            pipeline.refresh(db, client, [], None)
        assert fake.count("efetch.fcgi") == 0  # nothing left to follow


def test_harvest_runs_record_the_problems_that_were_retried(server, tmp_path, monkeypatch):
    monkeypatch.setattr(EutilsClient, "__init__", _fast_client_init(EutilsClient.__init__))
    server.inject("429", times=2)
    db_path = tmp_path / "kb.db"
    assert run_harvest(server, db_path, doi_file(tmp_path, ["10.1002/art.37734"]), monkeypatch).exit_code == 0
    run = sqlite_utils.Database(db_path)["harvest_runs"].get(1)
    assert run["errors"] == "HTTP 429 retried x2" and run["status"] == "ok"


# ------------------------------------------------------------ exit codes and files


def test_exit_0_when_every_input_resolves(server, tmp_path, monkeypatch):
    db_path = tmp_path / "kb.db"
    result = run_harvest(server, db_path, doi_file(tmp_path, ["10.1002/art.37734", f"doi:{TRUNCATED}"]), monkeypatch)
    assert result.exit_code == 0, result.output
    assert "unresolved: 0" in result.stdout and db_path.exists()


@pytest.mark.parametrize("case", ["missing", "not-utf8", "directory", "bad-yaml", "yaml-list", "bad-option"])
def test_exit_2_for_unreadable_input_and_usage_errors(server, tmp_path, monkeypatch, case):
    db_path = tmp_path / "kb.db"
    monkeypatch.setenv("KB_EUTILS_URL", server.base_url)
    bad = tmp_path / "input"
    if case == "not-utf8":
        bad.write_bytes(b"10.1002/art.37734\n10.5555/caf\xe9\n")
    elif case == "directory":
        bad.mkdir()
    elif case == "bad-yaml":
        bad.write_text("dois: [10.1002/art.37734\nqueries: {\n")
    elif case == "yaml-list":
        bad.write_text("- 10.1002/art.37734\n")
    args = {"bad-yaml": ["--sources", str(bad)], "yaml-list": ["--sources", str(bad)],
            "bad-option": ["--doi", str(bad)]}.get(case, ["--dois", str(bad)])
    result = CliRunner().invoke(cli, ["harvest", "--db", str(db_path), "--quiet", *args])
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert (str(bad) if case != "bad-option" else "--doi") in line
    if case in ("missing", "not-utf8", "bad-yaml", "yaml-list"):  # ours: one line, no usage text
        assert result.stderr.splitlines() == [line]
    assert server.count() == 0 and not db_path.exists()


def test_a_run_that_adds_nothing_creates_no_database(server, tmp_path, monkeypatch):
    db_path = tmp_path / "kb.db"
    result = run_harvest(server, db_path, doi_file(tmp_path, [UNKNOWN, "not a doi"]), monkeypatch)
    assert result.exit_code == 3, result.output
    assert not db_path.exists() and not list(tmp_path.glob(".kb.db.*"))
    assert f"no paper harvested, so {db_path} was not created" in result.stdout
    assert f"unresolved {UNKNOWN}: PubMed has no record with this DOI" in result.stdout
    assert "malformed DOI on line 2" in result.stdout
    assert "left unchanged" not in result.output


def test_a_failed_run_speaks_of_no_file_it_did_not_find(server, tmp_path, monkeypatch):
    db_path = tmp_path / "kb.db"
    server.inject("500", times=10)
    monkeypatch.setattr(EutilsClient, "__init__", _fast_client_init(EutilsClient.__init__))
    result = run_harvest(server, db_path, doi_file(tmp_path, ["10.1002/art.37734"]), monkeypatch)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"(no {db_path} created)")
    assert "left unchanged" not in result.output and not db_path.exists()


def test_max_retry_time_bounds_the_wait(server, tmp_path, monkeypatch):
    server.inject("429", times=10, retry_after="5")
    result = run_harvest(server, tmp_path / "kb.db", doi_file(tmp_path, ["10.1002/art.37734"]), monkeypatch,
                         "--max-retry-time", "1")
    assert result.exit_code == 1
    assert "retry time limit of 1 s reached after 0.0 s" in result.stderr
    assert server.count() == 1  # the service asked for 5 s; waiting would pass the 1 s limit


# ------------------------------------------------------- under the live service's faults


def _patient_client_init(original):
    """NCBI's pacing and the default number of retries, with short backoff to keep tests quick."""
    def init(self, *args, **kwargs):
        kwargs.setdefault("backoff", 0.02)
        original(self, *args, **kwargs)

    return init


@pytest.mark.parametrize("seed", range(4))
def test_harvest_under_the_realistic_fault_mix_gets_every_record_or_changes_nothing(server, tmp_path, monkeypatch, seed):
    db_path = tmp_path / "kb.db"
    assert run_harvest(server, db_path, doi_file(tmp_path, ["10.1002/art.37734"]), monkeypatch).exit_code == 0
    before = db_path.read_bytes()
    dois = [f"doi:{TRUNCATED}", *record_dois(synthetic_records(30, seed=3))]
    server.clear_log()
    server.random_faults(realistic_faults(retry_after="1"), rate=0.5, seed=seed)
    monkeypatch.setattr(EutilsClient, "__init__", _patient_client_init(EutilsClient.__init__))
    result = CliRunner().invoke(cli, ["harvest", "--db", str(db_path), "--dois", str(doi_file(tmp_path, dois))])
    faults = [r for r in server.requests_to() if r.fault or r.status != 200]
    assert len(faults) >= 2, "the mix served too few faults: the test would prove little"
    if result.exit_code == 0:
        db = sqlite_utils.Database(db_path)
        assert db["papers"].count == 1 + len(dois)
        assert db["doi_lookups"].get("10.1111/j.1526-4637.2009.00613.x")["pmid"] == "19453963"
        assert db["harvest_runs"].get(2)["errors"]  # the retried problems are on record
        # The batch budget for N DOIs, plus exactly one request per fault; the summary says so.
        assert server.count() - len(faults) <= 2 * math.ceil(len(dois) / 200) + 2
        assert f"requests: {server.count()} ({len(faults)} retries)" in result.stdout
    else:
        assert result.exit_code == 1 and db_path.read_bytes() == before
    # One line per retry on stderr, each in the documented form.
    retries = [line for line in result.stderr.splitlines() if "; retry " in line]
    assert len(retries) == len(faults) - (result.exit_code != 0)
    assert all(re.fullmatch(r"\S.* from (esearch|efetch); retry \d of 6 in \d+\.\d s", line) for line in retries)


def test_harvest_under_nothing_but_faults_fails_and_leaves_kb_db_byte_identical(server, tmp_path, monkeypatch):
    db_path = tmp_path / "kb.db"
    assert run_harvest(server, db_path, doi_file(tmp_path, ["10.1002/art.37734"]), monkeypatch).exit_code == 0
    before = db_path.read_bytes()
    server.random_faults([kind for kind in realistic_faults("1") if kind[0] != "429"], rate=1.0, seed=1)
    monkeypatch.setattr(EutilsClient, "__init__", _patient_client_init(EutilsClient.__init__))
    result = run_harvest(server, db_path, doi_file(tmp_path, record_dois(synthetic_records(30, seed=3))), monkeypatch,
                         "--quiet")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "after 7 attempts" in result.stderr
    assert db_path.read_bytes() == before
