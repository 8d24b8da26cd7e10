"""Conformance with the live E-utilities: real exchanges recorded by other projects, replayed.

Each recorded response (status, headers, body) is served from 127.0.0.1 and goes
through the real client (`EutilsClient.request`, its transient/permanent decision)
and the real parsers (`parse_esearch`, `parse_pubmed_xml`). The expected outcome of
every E-utilities exchange in ../shared/fixtures/recorded-eutils/ is listed below;
a cassette or exchange that is not listed fails the test, so a new recording cannot
slip in untested.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from harvest.fetch import EsearchError, EutilsClient, EutilsError, parse_esearch
from harvest.parse import ParseError, parse_pubmed_xml

RECORDED = Path(__file__).parents[2] / "shared" / "fixtures" / "recorded-eutils"
pytestmark = pytest.mark.skipif(
    not RECORDED.is_dir(), reason="../shared/fixtures/recorded-eutils (real E-utilities exchanges) is not beside the project"
)

# Framing and encoding are the replay server's own: the cassettes store bodies already decoded.
DROPPED_HEADERS = {"content-encoding", "transfer-encoding", "content-length", "connection", "keep-alive", "status"}

# (cassette, exchange index) -> expected outcome. Kinds:
#   ("records", [pmids])   efetch parsed into these PubMed records
#   ("ids", count, n)      esearch parsed: Count and number of ids
#   ("permanent", text)    the client stops at once; its one line contains text
#   ("not_pubmed",)        a usable answer that is not a PubmedArticleSet: the parser says so
#   ("not_eutils",)        an exchange with another service, recorded in the same cassette
EXPECTED = {
    ("biocommons-eutils__efetch_pubmed_29915538.vcrpy.yaml", 0): ("records", ["29915538"]),
    ("biocommons-eutils__esearch_medgen_translationstack.vcrpy.yaml", 0): ("ids", 5, 5),
    ("biocommons-eutils__test_esearchresult.vcrpy.yaml", 0): ("not_pubmed",),
    ("biocommons-eutils__test_esearchresult.vcrpy.yaml", 1): ("ids", 34, 34),
    ("sul_pub__efetch_empty_id_ERROR_200.vcr.yml", 0): ("permanent", "Supplied id parameter is empty."),
    ("sul_pub__efetch_empty_id_ERROR_200.vcr.yml", 1): ("records", ["12529422"]),
    ("sul_pub__efetch_empty_id_ERROR_200.vcr.yml", 2): ("records", ["12529422"]),
    ("sul_pub__efetch_invalid_api_key_400.vcr.yml", 0): ("permanent", "check NCBI_API_KEY"),
    ("sul_pub__efetch_no_id_400_webenv_required_2016.vcr.yml", 0): ("not_eutils",),
    ("sul_pub__efetch_no_id_400_webenv_required_2016.vcr.yml", 1): ("permanent", "WebEnv parameter is required"),
    ("sul_pub__efetch_no_id_400_webenv_required_2016.vcr.yml", 2): ("not_eutils",),
    ("sul_pub__efetch_no_id_400_webenv_required_2016.vcr.yml", 3): ("permanent", "WebEnv parameter is required"),
    ("sul_pub__efetch_unknown_pmids_empty_set.vcr.yml", 0): ("records", []),
    ("sul_pub__esearch_post_pretty_printed_2019.vcr.yml", 0): ("ids", 4, 4),
    ("sul_pub__esearch_post_pretty_printed_2019.vcr.yml", 1): ("ids", 4, 4),
    ("taxize__esearch_phrasenotfound_warninglist.rvcr.yml", 0): ("ids", 1, 1),
    ("taxize__esearch_phrasenotfound_warninglist.rvcr.yml", 1): ("ids", 0, 0),
    ("taxize__esearch_phrasenotfound_warninglist.rvcr.yml", 2): ("ids", 1, 1),
    ("taxize__esearch_phrasenotfound_warninglist.rvcr.yml", 3): ("ids", 1, 1),
}


def load_exchanges():
    """(cassette name, index, request dict, response dict) for every recorded exchange.

    Reads the three cassette dialects present: vcrpy (`interactions`), Ruby VCR and
    R vcr (`http_interactions`); statuses as `code` or `status_code`, header values
    as lists or strings.
    """
    if not RECORDED.is_dir():
        return []
    exchanges = []
    for path in sorted(RECORDED.glob("*.y*ml")):
        cassette = yaml.safe_load(path.read_text(encoding="utf-8"))
        for index, exchange in enumerate(cassette.get("interactions") or cassette.get("http_interactions")):
            exchanges.append((path.name, index, exchange["request"], exchange["response"]))
    return exchanges


def recorded_response(response):
    status = int(response["status"].get("code") or response["status"].get("status_code"))
    headers = []
    for name, values in response["headers"].items():
        if name.lower() in DROPPED_HEADERS:
            continue
        for value in values if isinstance(values, list) else [values]:
            headers.append((name, str(value)))
    body = response["body"]["string"]
    return status, headers, body.encode("utf-8") if isinstance(body, str) else bytes(body)


def endpoint_and_params(request):
    """The E-utilities endpoint and the parameters the recorded request sent (query and form body)."""
    url = urlsplit(request["uri"])
    body = request.get("body")
    body = body.get("string") if isinstance(body, dict) else body
    params = dict(parse_qsl(url.query)) | dict(parse_qsl(body or ""))
    params.pop("api_key", None)  # placeholders in the recordings; the client adds its own
    if not url.path.startswith("/entrez/eutils/"):
        return None, params
    return url.path.rsplit("/", 1)[-1], params


class Replay:
    """Answers every request with one recorded response; logs arrival times."""

    def __init__(self):
        replay = self
        self.answer = None
        self.arrivals = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._reply()

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._reply()

            def _reply(self):
                replay.arrivals.append(time.monotonic())
                status, headers, body = replay.answer
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/entrez/eutils/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def replay():
    server = Replay()
    yield server
    server.close()


EXCHANGES = load_exchanges()


def test_every_recorded_exchange_has_an_expected_outcome():
    assert {(name, index) for name, index, _, _ in EXCHANGES} == set(EXPECTED)


@pytest.mark.parametrize("name, index, request_, response", EXCHANGES,
                         ids=[f"{name.split('.')[0]}#{index}" for name, index, _, _ in EXCHANGES])
def test_recorded_exchange_through_the_real_client_and_parser(replay, name, index, request_, response):
    expected = EXPECTED[(name, index)]
    endpoint, params = endpoint_and_params(request_)
    if expected[0] == "not_eutils":
        assert endpoint is None
        return
    replay.answer = recorded_response(response)
    # The invalid-key exchange is replayed with the key it was recorded with, to prove it is not echoed.
    key = "a_fake_pubmed_key" if "invalid_api_key" in name else ""
    client = EutilsClient(base_url=replay.base_url, api_key=key, email="", per_second=100, backoff=0.01)
    if expected[0] == "permanent":
        with pytest.raises(EutilsError) as caught:
            client.request(endpoint, params)
        text = str(caught.value)
        assert "\n" not in text and expected[1] in text and replay.base_url + endpoint in text
        assert not key or key not in text
        assert len(replay.arrivals) == 1  # permanent: not retried
        return
    body = client.request(endpoint, params)
    assert len(replay.arrivals) == 1  # usable at once: nothing transient in a good answer
    if expected[0] == "records":
        records, skipped = parse_pubmed_xml(body)
        assert [r["pmid"] for r in records] == expected[1] and skipped == []
        assert all(r["title"] for r in records)
    elif expected[0] == "ids":
        pmids, count = parse_esearch(body)
        assert (count, len(pmids)) == expected[1:]
        assert all(p.isdigit() for p in pmids)
    else:
        assert expected == ("not_pubmed",)
        with pytest.raises(ParseError, match="not a PubmedArticleSet"):
            parse_pubmed_xml(body)


def test_recorded_rate_limit_remaining_zero_holds_the_next_request(replay):
    name = "biocommons-eutils__esearch_medgen_translationstack.vcrpy.yaml"
    _, _, request_, response = next(e for e in EXCHANGES if e[0] == name)
    replay.answer = recorded_response(response)
    assert dict(replay.answer[1])["X-RateLimit-Remaining"] == "0"
    client = EutilsClient(base_url=replay.base_url, api_key="", email="", per_second=100)
    endpoint, params = endpoint_and_params(request_)
    client.request(endpoint, params)
    client.request(endpoint, params)
    # The recording says the quota (X-RateLimit-Limit: 3) is spent: the next request waits out the 1 s window.
    assert replay.arrivals[1] - replay.arrivals[0] >= 0.95


def test_recorded_zero_hit_search_with_error_and_warning_lists_is_empty_not_an_error():
    name = "taxize__esearch_phrasenotfound_warninglist.rvcr.yml"
    _, _, _, response = next(e for e in EXCHANGES if e[0] == name and e[1] == 1)
    body = recorded_response(response)[2]
    assert b"<IdList/>" in body and b"<PhraseNotFound>" in body and b"<WarningList>" in body
    assert parse_esearch(body) == ([], 0)
    # Were the ErrorList to name anything but a phrase not found, it would be reported.
    with pytest.raises(EsearchError):
        parse_esearch(body.replace(b"PhraseNotFound", b"FieldNotFound"))
