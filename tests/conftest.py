"""Shared fixtures: a fake E-utilities server, a client factory, fixture files, a tmp kb.db path.

Nothing in the test suite may reach NCBI: every test runs with the real
credentials removed from the environment and `KB_EUTILS_URL` pointing at a
closed local port unless a test starts the fake server (`fake_eutils` points
it there).
"""

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
SHARED_EUTILS = TESTS.parents[1] / "shared" / "fixtures" / "eutils"
FIXTURE_FILES = ["pubmed_19453963.xml", "pubmed_23359310.xml", "pubmed_edge_cases.xml"]
DEAD_URL = "http://127.0.0.1:9/entrez/eutils/"  # discard port: connection refused

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fake_eutils import FakeEutils  # noqa: E402
from fake_registries import FakeCrossref, FakeCtgov  # noqa: E402

from harvest.fetch import EutilsClient  # noqa: E402


def fixture_bytes(name):
    """The bytes of a file in tests/fixtures."""
    return (FIXTURES / name).read_bytes()


@pytest.fixture(autouse=True)
def _no_real_ncbi(monkeypatch):
    """No NCBI credentials from the developer's environment, no default NCBI URL."""
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.delenv("NCBI_EMAIL", raising=False)
    monkeypatch.setenv("KB_EUTILS_URL", DEAD_URL)
    monkeypatch.delenv("KB_CONTACT_EMAIL", raising=False)


@pytest.fixture(scope="session")
def _registry_servers():
    with FakeCtgov() as ctgov, FakeCrossref() as crossref:
        yield ctgov, crossref


@pytest.fixture(autouse=True)
def registries(_registry_servers, monkeypatch):
    """Empty fake ClinicalTrials.gov and Crossref servers, which every harvest reaches after
    PubMed; KB_CTGOV_URL and KB_CROSSREF_URL point at them. Tests add studies and works."""
    for server in _registry_servers:
        server.reset()
    ctgov, crossref = _registry_servers
    monkeypatch.setenv("KB_CTGOV_URL", ctgov.base_url)
    monkeypatch.setenv("KB_CROSSREF_URL", crossref.base_url)
    return _registry_servers


@pytest.fixture
def make_fake_eutils():
    """Factory: start a FakeEutils(**kwargs) (loaded with `records`); all are stopped at teardown."""
    servers = []

    def make(records=(), load_fixtures=False, **kwargs):
        server = FakeEutils(records=records, **kwargs)
        if load_fixtures:
            for name in FIXTURE_FILES:
                server.add_xml(fixture_bytes(name))
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fake_eutils(make_fake_eutils, monkeypatch):
    """A running fake E-utilities holding the hand-written fixture records, NCBI rate limits on.

    KB_EUTILS_URL points at it, so code that builds its own client finds it.
    """
    server = make_fake_eutils(load_fixtures=True)
    monkeypatch.setenv("KB_EUTILS_URL", server.base_url)
    return server


@pytest.fixture
def make_client():
    """Factory: an EutilsClient for a fake server with a small backoff and short timeout.

    make_client(server, api_key=None, email=None, **overrides); pacing stays the
    client's default (what NCBI allows) unless `per_second` is given.
    """

    def make(server=None, **overrides):
        options = {
            "base_url": server.base_url if server is not None else DEAD_URL,
            "api_key": "",
            "email": "",
            "backoff": 0.05,
            "timeout": 5.0,
            "max_retries": 3,
        }
        options.update(overrides)
        return EutilsClient(**options)

    return make


@pytest.fixture
def client(fake_eutils, make_client):
    """A client for `fake_eutils` with NCBI's default pacing, no key, small backoff."""
    return make_client(fake_eutils)


@pytest.fixture
def tmp_db_path(tmp_path):
    """Where a test's kb.db goes (not created)."""
    return tmp_path / "kb.db"


def rebuilt_committed_kb(path):
    """The committed kb.db copied to `path` and rebuilt offline from the curated files (kb build)."""
    import shutil

    import sqlite_utils

    from harvest import curate, pipeline

    shutil.copyfile(TESTS.parent / "kb.db", path)
    with pipeline.atomic_database(path) as db:
        pipeline.build(db, curate.load_curated())
    return sqlite_utils.Database(path)
