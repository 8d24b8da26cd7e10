"""The E-utilities client (harvest.fetch) against the local fake E-utilities server.

Pacing is checked on the server's own arrival log; retries and failures are
driven by the server's scripted faults. Tests that are not about pacing let the
client go fast against a server with rate limiting off, to keep the file quick.
"""

import email.utils
import re
import socket
import time
import types

import pytest
import requests

from conftest import FIXTURE_FILES, fixture_bytes
from fake_eutils import (
    ESEARCH_DOCTYPE,
    FakeEutils,
    FakeRecord,
    record_dois,
    synthetic_records,
)
from harvest import fetch, http
from harvest.fetch import EsearchError, EutilsError
from harvest.parse import parse_pubmed_xml

PILOT = ("19453963", "10.1111/j.1526-4637.2009.00613.x")
CROSSOVER = ("23359310", "10.1002/art.37734")
SECRET_KEY = "k3y0123456789abcdef0123456789abcdef"
SECRET_EMAIL = "someone.private@example.org"


@pytest.fixture
def fast_server(make_fake_eutils):
    """Fixture records plus 30 synthetic ones; no rate limit, for tests about other things."""
    return make_fake_eutils(records=synthetic_records(30), load_fixtures=True, rate_limit=False)


@pytest.fixture
def fast_client(fast_server, make_client):
    return make_client(fast_server, per_second=200)


def statuses(server, endpoint=None):
    return [r.status for r in server.requests_to(endpoint)]


def one_line(error):
    text = str(error)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------- pacing


def test_pacing_without_key_keeps_every_second_to_three_requests(fake_eutils, client):
    for _ in range(4):
        client.esearch("naltrexone fibromyalgia")
        client.efetch([PILOT[0]])
    assert fake_eutils.count() == 8
    assert fake_eutils.max_in_window(1.0) <= 3
    assert set(statuses(fake_eutils)) == {200}


def test_pacing_with_key_uses_ncbi_keyed_limit(make_fake_eutils, make_client):
    server = make_fake_eutils(load_fixtures=True)
    client = make_client(server, api_key=SECRET_KEY)
    for _ in range(14):
        client.efetch([PILOT[0]])
    assert server.max_in_window(1.0) <= 10
    assert server.max_in_window(1.0) > 3  # the key's higher limit is actually used
    assert set(statuses(server)) == {200}


def test_retries_stay_paced(fake_eutils, client):
    fake_eutils.inject("429", times=2)
    fake_eutils.inject("503")
    for _ in range(3):
        client.efetch([PILOT[0]])
    assert statuses(fake_eutils) == [429, 429, 503, 200, 200, 200]
    assert fake_eutils.max_in_window(1.0) <= 3


def test_fake_server_accepts_get_and_post_alike(fast_server):
    params = {"db": "pubmed", "term": "naltrexone fibromyalgia", "retmax": "5", "retstart": "2"}
    by_get = requests.get(fast_server.base_url + "esearch.fcgi", params=params)
    by_post = requests.post(fast_server.base_url + "esearch.fcgi", data=params)
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.content == by_post.content
    assert b"<RetMax>5</RetMax><RetStart>2</RetStart>" in by_get.content
    assert [r.method for r in fast_server.requests_to()] == ["GET", "POST"]


def test_fake_server_enforces_ncbi_limit_with_ncbi_429_body(fake_eutils):
    with requests.Session() as session:
        answers = [session.get(fake_eutils.base_url + "esearch.fcgi", params={"term": "x"}) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    limited = answers[3]
    assert limited.status_code == 429
    assert "Retry-After" not in limited.headers
    assert limited.json() == {"error": "API rate limit exceeded", "api-key": "127.0.0.1", "count": "4", "limit": "3"}
    assert fake_eutils.count("esearch.fcgi") == 4


# --------------------------------------------------------------- credentials


def test_tool_email_and_key_sent_on_every_request(fast_server, make_client):
    client = make_client(fast_server, api_key=SECRET_KEY, email=SECRET_EMAIL, per_second=200)
    client.esearch(f'"{PILOT[1]}"[aid]')
    client.efetch([PILOT[0]])
    client.ecitmatch([{"journal": "Pain Med", "year": 2009, "volume": "10", "first_page": "663",
                       "author": "Younger J", "key": "pilot"}])
    logged = fast_server.requests_to()
    assert [r.endpoint for r in logged] == ["esearch.fcgi", "efetch.fcgi", "ecitmatch.cgi"]
    for request in logged:
        assert request.params["tool"] == fetch.TOOL_NAME
        assert request.params["email"] == SECRET_EMAIL
        assert request.params["api_key"] == SECRET_KEY


def test_no_key_or_email_sent_when_not_configured(fast_server, fast_client):
    fast_client.efetch([PILOT[0]])
    (request,) = fast_server.requests_to()
    assert "api_key" not in request.params and "email" not in request.params
    assert request.params["tool"] == fetch.TOOL_NAME


def test_redact_hides_key_and_email():
    url = f"https://x/esearch.fcgi?term=a&email=me%40example.org&api_key={SECRET_KEY}&tool=t"
    shown = http.redact(url)
    assert SECRET_KEY not in shown and "me%40example.org" not in shown
    assert "term=a" in shown and "tool=t" in shown


def test_give_up_message_names_url_without_secrets(fast_server, make_client):
    client = make_client(fast_server, api_key=SECRET_KEY, email=SECRET_EMAIL, per_second=200, max_retries=2)
    fast_server.inject("429", times=3)
    with pytest.raises(EutilsError) as caught:
        client.efetch([PILOT[0]])
    text = one_line(caught.value)
    assert fast_server.base_url + "efetch.fcgi" in text
    assert "3 attempts" in text
    assert SECRET_KEY not in text and "someone.private" not in text


def test_connection_error_message_has_no_secrets(make_client):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(
        None, base_url=f"http://127.0.0.1:{port}/entrez/eutils/", api_key="K3Y", email="a@b.io", max_retries=0
    )
    with pytest.raises(EutilsError) as caught:
        client.efetch(["1"])
    text = one_line(caught.value)
    assert "K3Y" not in text and "a@b" not in text
    assert not re.search(r"(?:email|api_key)=(?!\*\*\*)", text), text  # every value redacted


def test_invalid_key_error_does_not_echo_the_key(make_fake_eutils, make_client):
    server = make_fake_eutils(load_fixtures=True, rate_limit=False, valid_api_keys={"the-good-key"})
    client = make_client(server, api_key=SECRET_KEY, per_second=200)
    with pytest.raises(EutilsError) as caught:
        client.efetch([PILOT[0]])
    assert "HTTP 400" in str(caught.value)
    assert SECRET_KEY not in str(caught.value)


# ------------------------------------------------------------------- retries


def test_retries_a_burst_of_429_with_growing_backoff(fast_server, make_client):
    notices = []
    client = make_client(fast_server, per_second=200, max_retries=5, backoff=0.05, on_retry=notices.append)
    fast_server.inject("429", times=3)
    pmids, count = client.esearch(f'"{PILOT[1]}"[aid]')
    assert (pmids, count) == ([PILOT[0]], 1)
    assert statuses(fast_server) == [429, 429, 429, 200]
    delays = [n.delay for n in notices]
    assert [n.attempt for n in notices] == [1, 2, 3]
    # Each wait doubles (jitter adds at most 25%, so the order holds) and none is a made-up Retry-After.
    assert delays[0] < delays[1] < delays[2]
    assert all(0.05 * 2**i <= d <= 0.05 * 2**i * 1.25 for i, d in enumerate(delays)), delays
    assert str(notices[1]) == f"HTTP 429 from esearch; retry 2 of 5 in {delays[1]:.1f} s"


def test_honours_retry_after(fast_server, make_client, monkeypatch):
    client = make_client(fast_server, per_second=200)
    slept = []
    monkeypatch.setattr(http, "time", types.SimpleNamespace(sleep=slept.append, monotonic=http.time.monotonic, time=http.time.time))
    fast_server.inject("429", retry_after="7")
    fast_server.inject("503", retry_after="3")
    assert client.efetch([PILOT[0]]).count(b"<PubmedArticle>") == 1
    assert statuses(fast_server) == [429, 503, 200]
    assert 7.0 in slept and 3.0 in slept


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_retries_server_errors_with_html_pages(fast_server, fast_client, kind):
    fast_server.inject(kind)
    body = fast_client.efetch([PILOT[0], CROSSOVER[0]])
    records, _ = parse_pubmed_xml(body)
    assert [r["pmid"] for r in records] == [PILOT[0], CROSSOVER[0]]
    assert statuses(fast_server) == [int(kind), 200]


def test_retries_a_truncated_xml_body(fast_server, fast_client):
    fast_server.inject("truncate", endpoint="efetch.fcgi", fraction=0.6)
    body = fast_client.efetch([PILOT[0], CROSSOVER[0]])
    records, _ = parse_pubmed_xml(body)
    assert len(records) == 2
    assert [r.fault for r in fast_server.requests_to()] == ["truncate", None]


def test_retries_xml_cut_exactly_after_a_tag(fast_server, fast_client):
    fast_server.inject("truncate", endpoint="efetch.fcgi", fraction=0.5, at_tag=True)
    body = fast_client.efetch([PILOT[0], CROSSOVER[0]])
    assert fast_server.count("efetch.fcgi") == 2
    assert len(parse_pubmed_xml(body)[0]) == 2


def test_retries_esearch_cut_after_an_empty_element(fast_server, fast_client):
    fast_server.inject("truncate", endpoint="esearch.fcgi", cut_after=b"<TranslationSet/>")
    assert fast_client.esearch('"10.9999/unknown"[aid]') == ([], 0)
    assert [r.fault for r in fast_server.requests_to()] == ["truncate", None]


@pytest.mark.parametrize("kind", ["slow", "stall_mid_body"])
def test_retries_a_response_slower_than_the_timeout(fast_server, make_client, kind):
    client = make_client(fast_server, per_second=200, timeout=0.3)
    fast_server.inject(kind, delay=1.5)
    pmids, _ = client.esearch(f'"{CROSSOVER[1]}"[aid]')
    assert pmids == [CROSSOVER[0]]
    assert [r.fault for r in fast_server.requests_to()] == [kind, None]


@pytest.mark.parametrize("kind", ["reset", "reset_mid_body"])
def test_retries_a_connection_reset(fast_server, fast_client, kind):
    fast_server.inject(kind)
    records, _ = parse_pubmed_xml(fast_client.efetch([PILOT[0]]))
    assert records[0]["doi"] == PILOT[1]
    assert [r.fault for r in fast_server.requests_to()] == [kind, None]


def test_gives_up_with_one_line_naming_the_url(fast_server, make_client):
    client = make_client(fast_server, per_second=200, max_retries=2)
    fast_server.inject("500", times=3)
    with pytest.raises(EutilsError) as caught:
        client.esearch("fibromyalgia")
    text = one_line(caught.value)
    assert text.startswith("giving up on " + fast_server.base_url + "esearch.fcgi?")
    assert "after 3 attempts (last: HTTP 500)" in text
    assert fast_server.count() == 3 and fast_server.pending_faults == 0


def test_gives_up_on_repeated_resets_with_cannot_reach(fast_server, make_client):
    client = make_client(fast_server, per_second=200, max_retries=1)
    fast_server.inject("reset", times=2)
    with pytest.raises(EutilsError) as caught:
        client.efetch([PILOT[0]])
    text = one_line(caught.value)
    assert text.startswith("cannot reach " + fast_server.base_url + "efetch.fcgi")
    assert fast_server.count() == 2


def test_connection_refused_is_a_clear_error(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/entrez/eutils/"
    client = make_client(None, base_url=url, max_retries=1, per_second=200)
    with pytest.raises(EutilsError) as caught:
        client.esearch("naltrexone")
    text = one_line(caught.value)
    assert text.startswith(f"cannot reach {url}esearch.fcgi")
    assert client.requests_made == 2


def test_client_error_status_is_not_retried(fast_server, fast_client):
    fast_server.inject("status", status=400, body=b'{"error":"Invalid parameter"}', content_type="application/json")
    with pytest.raises(EutilsError) as caught:
        fast_client.efetch([PILOT[0]])
    assert one_line(caught.value).startswith("HTTP 400 from " + fast_server.base_url + "efetch.fcgi")
    assert "Invalid parameter" in str(caught.value)
    assert fast_server.count() == 1


# ------------------------------------------------------------ GET, POST, batching


def test_short_requests_use_get_long_ones_post(fast_server, fast_client):
    fast_client.efetch([PILOT[0]])
    pmids = [str(39000001 + 3 * i) for i in range(30)] + [str(10_000_000 + i) for i in range(170)]
    body = fast_client.efetch(pmids)
    get, post = fast_server.requests_to("efetch.fcgi")
    assert (get.method, post.method) == ("GET", "POST")
    assert post.params["id"].split(",") == pmids  # the whole list arrived in the form body
    assert body.count(b"<PubmedArticle>") == 30  # unknown PMIDs are simply absent


def test_doi_lookup_batches_esearch_and_efetch(make_fake_eutils, make_client):
    records = synthetic_records(450)
    server = make_fake_eutils(records=records, rate_limit=False)
    client = make_client(server, per_second=200)
    dois = record_dois(records)
    pmids = fetch.fetch_pmids_for_dois(client, dois)
    assert sorted(pmids) == sorted(r.pmid for r in records)
    searches = server.requests_to("esearch.fcgi")
    assert len(searches) == 3  # 200 + 200 + 50 DOIs
    assert [s.method for s in searches] == ["POST", "POST", "POST"]
    batches = list(fetch.fetch_records(client, pmids))
    assert [len(asked) for asked, _ in batches] == [200, 200, 50]
    assert sum(len(parse_pubmed_xml(xml)[0]) for _, xml in batches) == 450
    assert server.count("efetch.fcgi") == 3


def test_doi_lookup_finds_dois_in_elocation_only_and_any_case(fast_server, fast_client):
    upper = FakeRecord(pmid="39999999", title="Case test.", doi="10.5555/UPPER.Case-01",
                       elocation_doi=None)
    fast_server.add(upper)
    only_lid = "10.5555/irr.2018.0042"  # edge-case fixture: DOI only in ELocationID
    pmids = fetch.fetch_pmids_for_dois(fast_client, [PILOT[1], only_lid, "10.5555/upper.case-01", "10.5555/none"])
    assert sorted(pmids) == sorted([PILOT[0], "99000002", "39999999"])


def test_truncated_doi_wildcard_finds_the_completion(fast_server, fast_client):
    found = fetch.fetch_truncated_candidates(fast_client, ["10.1111/j.1526-4637.2009.00613."])
    assert found == [PILOT[0]]
    assert fast_server.requests_to()[0].params["term"] == "10.1111/j.1526-4637.2009.00613.*[aid]"


def test_changed_pmids_uses_mdat(fast_server, fast_client):
    # Fixture DateRevised: pilot 2022-03-31, crossover 2021-10-21, edge 99000001 2024-02-10
    changed = fetch.fetch_changed_pmids(fast_client, [PILOT[0], CROSSOVER[0], "99000001"], "2022/01/01")
    assert sorted(changed) == [PILOT[0], "99000001"]


def test_new_for_queries_uses_edat(fast_server, fast_client):
    found = fetch.fetch_new_for_queries(fast_client, ["low-dose naltrexone fibromyalgia", "Younger J[au]"], "2013/01/01")
    assert CROSSOVER[0] in found and PILOT[0] not in found
    every = fetch.fetch_new_for_queries(fast_client, ["Younger J[au]"])
    assert sorted(every) == sorted([PILOT[0], CROSSOVER[0]])


def test_ecitmatch_one_request_for_all_citations(fast_server, fast_client):
    found = fast_client.ecitmatch([
        {"journal": "Pain Med", "year": 2009, "volume": "10", "first_page": "663", "author": "Younger J", "key": "pilot"},
        {"journal": "Arthritis Rheum", "year": 2013, "volume": "65", "first_page": "529", "author": "Younger J", "key": "rct"},
        {"journal": "Arthritis Rheum", "year": 2013, "volume": "65", "first_page": "1", "author": "Younger J", "key": "wrong-page"},
        {"journal": "No Such J", "year": 2013, "volume": "1", "first_page": "1", "author": "X", "key": "bad-journal"},
    ])
    assert found == {"pilot": PILOT[0], "rct": CROSSOVER[0], "wrong-page": None, "bad-journal": None}
    (request,) = fast_server.requests_to()
    assert request.endpoint == "ecitmatch.cgi" and request.params["retmode"] == "xml"
    assert len(request.params["bdata"].split("\r")) == 4


def test_fake_ecitmatch_answers_in_ncbi_plain_text(fast_server):
    answer = requests.get(fast_server.base_url + "ecitmatch.cgi", params={
        "db": "pubmed", "retmode": "xml",
        "bdata": "pain med|2009|10|663|younger j|A1|\rno such j|2000|1|1|x|A2|",
    })
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text.splitlines() == [
        f"pain med|2009|10|663|younger j|A1|{PILOT[0]}",
        "no such j|2000|1|1|x|A2|NOT_FOUND;INVALID_JOURNAL",
    ]


# -------------------------------------------------------- errors inside HTTP 200


@pytest.mark.parametrize("term", ['("10.1002/art.37734"[aid] OR fibromyalgia', '"10.1002/art.37734[aid]', "naltrexone)"])
def test_malformed_term_error_inside_200_raises(fast_server, fast_client, term):
    with pytest.raises(EsearchError) as caught:
        fast_client.esearch(term)
    assert one_line(caught.value).startswith("esearch error:")
    assert statuses(fast_server) == [200]


def test_error_list_other_than_phrase_not_found_raises(fast_server, fast_client):
    with pytest.raises(EsearchError, match="FieldNotFound"):
        fast_client.esearch("naltrexone[nosuchfield]")


def test_phrase_not_found_is_not_an_error(fast_server, fast_client):
    assert fast_client.esearch('"10.9999/nothing"[aid]') == ([], 0)
    body = fast_server.esearch({"term": '"10.9999/nothing"[aid]'})[2]
    assert b"<ErrorList><PhraseNotFound>" in body and b"<OutputMessage>No items found.</OutputMessage>" in body
    pmids, count = fast_client.esearch(f'"10.9999/nothing"[aid] OR "{PILOT[1]}"[aid]')
    assert (pmids, count) == ([PILOT[0]], 1)


def test_fake_esearch_speaks_ncbi_format(fast_server):
    answer = requests.get(fast_server.base_url + "esearch.fcgi", params={"db": "pubmed", "term": "naltrexone", "retmax": 2})
    lines = answer.text.splitlines()
    assert lines[1] == ESEARCH_DOCTYPE
    assert re.search(r"<eSearchResult><Count>\d+</Count><RetMax>2</RetMax><RetStart>0</RetStart><IdList>", answer.text)
    assert "<TranslationSet/><QueryTranslation>naltrexone</QueryTranslation>" in answer.text
    assert fetch.parse_esearch(answer.content)[1] > 2


def test_fixture_records_are_served_in_id_order(fast_server, fast_client):
    body = fast_client.efetch([CROSSOVER[0], "1", PILOT[0]])
    records, _ = parse_pubmed_xml(body)
    assert [r["pmid"] for r in records] == [CROSSOVER[0], PILOT[0]]
    assert len(FIXTURE_FILES) == 3 and fixture_bytes(FIXTURE_FILES[0]).startswith(b"<?xml")


def test_server_stops_cleanly_and_refuses_afterwards(make_client):
    server = FakeEutils(records=synthetic_records(2), rate_limit=False).start()
    url = server.base_url
    server.stop()
    client = make_client(None, base_url=url, max_retries=0, per_second=200)
    with pytest.raises(EutilsError, match="cannot reach"):
        client.efetch(["1"])


# ------------------------------------------------------- the shared polite client


def test_total_retry_time_is_bounded(fast_server, make_client):
    notices = []
    client = make_client(fast_server, per_second=200, max_retries=10, backoff=0.1,
                         max_retry_seconds=0.5, on_retry=notices.append)
    fast_server.inject("503", times=10)
    with pytest.raises(EutilsError) as caught:
        client.efetch([PILOT[0]])
    # 0.1 + 0.2 fit in 0.5 s; the third wait (0.4 s or more) would pass it, so it is not made.
    assert len(notices) == 2 and fast_server.count() == 3
    assert "retry time limit of 0.5 s reached" in one_line(caught.value)


def test_unreachable_host_message_has_no_library_text(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(None, base_url=f"http://127.0.0.1:{port}/entrez/eutils/", max_retries=0)
    with pytest.raises(EutilsError) as caught:
        client.efetch(["1"])
    text = one_line(caught.value)
    assert text.endswith(": connection refused")
    assert not re.search(r"HTTPConnectionPool|Max retries|urllib3|object at 0x", text), text


def test_retry_counts_per_service(fast_server, fast_client):
    fast_server.inject("429", times=2)
    fast_client.efetch([PILOT[0]])
    assert fast_client.counts() == {"service": "eutils", "requests": 3, "retries": 2}


# ------------------------------------------------ E-utilities as it really behaves


@pytest.mark.parametrize("endpoint", ["esearch.fcgi", "efetch.fcgi"])
def test_a_back_end_timeout_reported_as_400_is_retried(fast_server, make_client, endpoint):
    notices = []
    client = make_client(fast_server, per_second=200, on_retry=notices.append)
    fast_server.inject("400_timeout", endpoint=endpoint)
    assert client.esearch(f'"{PILOT[1]}"[aid]') == ([PILOT[0]], 1)
    assert parse_pubmed_xml(client.efetch([PILOT[0]]))[0][0]["doi"] == PILOT[1]
    assert statuses(fast_server, endpoint) == [400, 200]
    assert [str(n).split(";")[0] for n in notices] == [f"HTTP 400 from {endpoint.split('.')[0]}"]


@pytest.mark.parametrize("text", ["Error reading from remote server", "Bad gateway", "Service unavailable",
                                  "Resource temporarily unavailable"])
@pytest.mark.parametrize("endpoint", ["esearch.fcgi", "efetch.fcgi"])
def test_transient_error_documents_inside_200_are_retried(fast_server, fast_client, endpoint, text):
    fast_server.inject("error_200", endpoint=endpoint, text=text)
    assert fast_client.esearch(f'"{CROSSOVER[1]}"[aid]') == ([CROSSOVER[0]], 1)
    assert len(parse_pubmed_xml(fast_client.efetch([PILOT[0], CROSSOVER[0]]))[0]) == 2
    assert statuses(fast_server, endpoint) == [200, 200]
    assert [r.fault for r in fast_server.requests_to(endpoint)] == ["error_200", None]


@pytest.mark.parametrize("options", [{}, {"plus": True}, {"cut": True}, {"text": "Bad gateway", "plus": True},
                                     {"text": "Service unavailable", "cut": True}])
@pytest.mark.parametrize("endpoint", ["esearch.fcgi", "efetch.fcgi"])
def test_error_text_inserted_mid_stream_is_retried(fast_server, fast_client, endpoint, options):
    fast_server.inject("midstream", endpoint=endpoint, **options)
    pmids, _ = fast_client.esearch("Younger J[au]")
    assert sorted(pmids) == sorted([PILOT[0], CROSSOVER[0]])
    records, _ = parse_pubmed_xml(fast_client.efetch([PILOT[0], CROSSOVER[0]]))
    assert [r["pmid"] for r in records] == [PILOT[0], CROSSOVER[0]]
    assert all("remote server" not in (r.get("abstract") or "") for r in records)
    assert [r.fault for r in fast_server.requests_to(endpoint)] == ["midstream", None]


def test_the_same_words_inside_a_record_are_data_not_an_error(fast_server, fast_client):
    fast_server.add(FakeRecord(pmid="39999998", title="When the pharmacy service unavailable at night matters.",
                               abstract=[(None, "Bad gateway hospitals and error reading from remote server logs.")]))
    records, _ = parse_pubmed_xml(fast_client.efetch(["39999998"]))
    assert records[0]["title"].startswith("When the pharmacy service unavailable")
    assert fast_server.count() == 1


def test_an_error_only_200_that_is_not_transient_stops_with_the_message(fast_server, fast_client):
    fast_server.inject("error_200", endpoint="efetch.fcgi", text="Supplied id parameter is empty.")
    with pytest.raises(EutilsError) as caught:
        fast_client.efetch([PILOT[0]])
    text = one_line(caught.value)
    assert text.startswith("E-utilities error from " + fast_server.base_url + "efetch.fcgi?")
    assert text.endswith(": Supplied id parameter is empty.")
    assert fast_server.count() == 1


def test_invalid_api_key_is_permanent_and_says_what_to_do(make_fake_eutils, make_client):
    server = make_fake_eutils(load_fixtures=True, rate_limit=False, valid_api_keys={"the-good-key"})
    client = make_client(server, api_key=SECRET_KEY, per_second=200)
    with pytest.raises(EutilsError) as caught:
        client.efetch([PILOT[0]])
    text = one_line(caught.value)
    assert "HTTP 400" in text and "NCBI rejected the API key" in text and "check NCBI_API_KEY" in text
    assert SECRET_KEY not in text and server.count() == 1


def test_rate_limit_headers_are_sent_and_remaining_zero_is_honoured(make_fake_eutils, make_client):
    server = make_fake_eutils(load_fixtures=True)  # NCBI's 3/s, announced in X-RateLimit-* headers
    answer = requests.get(server.base_url + "efetch.fcgi", params={"id": PILOT[0]})
    assert (answer.headers["X-RateLimit-Limit"], answer.headers["X-RateLimit-Remaining"]) == ("3", "2")
    server.clear_log()
    client = make_client(server, per_second=100)  # pacing far too fast: only the headers hold it back
    for _ in range(7):
        client.efetch([PILOT[0]])
    assert set(statuses(server)) == {200}
    assert server.max_in_window(1.0) <= 3


@pytest.mark.parametrize("retry_after", [None, "1"])
def test_429_with_and_without_retry_after_carries_ncbi_body(fast_server, make_client, retry_after):
    notices = []
    client = make_client(fast_server, per_second=200, backoff=0.05, on_retry=notices.append)
    fast_server.inject("429", retry_after=retry_after)
    client.efetch([PILOT[0]])
    assert statuses(fast_server) == [429, 200]
    assert notices[0].delay == 1.0 if retry_after else notices[0].delay < 0.1


def test_long_gets_get_414_so_long_lists_go_by_post(make_fake_eutils, make_client):
    server = make_fake_eutils(load_fixtures=True, rate_limit=False, max_get_url=1000)
    ids = ",".join(str(10_000_000 + i) for i in range(200))
    answer = requests.get(server.base_url + "efetch.fcgi", params={"db": "pubmed", "id": ids})
    assert answer.status_code == 414 and answer.headers["Content-Type"].startswith("text/html")
    client = make_client(server, per_second=200)
    assert client.efetch(ids.split(",") + [PILOT[0]]).count(b"<PubmedArticle>") == 1
    assert [r.method for r in server.requests_to()][-1] == "POST"
    with pytest.raises(EutilsError) as caught:  # were a GET ever too long, the 414 is final and said plainly
        make_client(server, per_second=200).request("efetch.fcgi", {"id": ids[:990]})
    assert one_line(caught.value).startswith("HTTP 414 from ")


def test_xml_without_charset_is_read_alike(make_fake_eutils, make_client):
    server = make_fake_eutils(load_fixtures=True, rate_limit=False, content_type="text/xml")
    client = make_client(server, per_second=200)
    assert client.esearch(f'"{PILOT[1]}"[aid]') == ([PILOT[0]], 1)
    assert parse_pubmed_xml(client.efetch([PILOT[0]]))[0][0]["pmid"] == PILOT[0]


@pytest.fixture
def unanswered_port():
    """A local port whose accept queue is full, so a new connection is never set up (a connect timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(5):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(listener.getsockname())
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.2)
    yield listener.getsockname()[1]
    for sock in [*fillers, listener]:
        sock.close()


@pytest.mark.parametrize("connect_timeout, max_retry_seconds", [
    (0.5, 120.0),  # the connect timeout (10 s in use; scaled down to keep the test quick)
    (http.CONNECT_TIMEOUT, 0.5),  # a retry budget smaller than the connect timeout bounds the attempt itself
])
def test_an_unreachable_host_fails_within_the_connect_timeout_or_the_retry_budget(
        unanswered_port, make_client, monkeypatch, connect_timeout, max_retry_seconds):
    monkeypatch.setattr(http, "CONNECT_TIMEOUT", connect_timeout)
    url = f"http://127.0.0.1:{unanswered_port}/entrez/eutils/"
    client = make_client(None, base_url=url, per_second=200, max_retries=6, backoff=0.05,
                         max_retry_seconds=max_retry_seconds)
    started = time.monotonic()
    with pytest.raises(EutilsError) as caught:
        client.esearch("naltrexone")
    elapsed = time.monotonic() - started
    # Retries of a host that does not answer stop once the smaller bound, 0.5 s, has passed, not after six.
    assert 0.5 <= elapsed < 1.5 and client.requests_made == 1
    assert one_line(caught.value) == (
        f"cannot reach {url}esearch.fcgi?db=pubmed&term=naltrexone&retmax=10000&retmode=xml&tool=ldn-kb: "
        "no connection within 0.5 s"
    )


def test_kb_harvest_max_retry_time_bounds_an_unreachable_host(unanswered_port, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from harvest.cli import cli

    monkeypatch.setenv("KB_EUTILS_URL", f"http://127.0.0.1:{unanswered_port}/entrez/eutils/")
    dois = tmp_path / "dois.txt"
    dois.write_text("10.1002/art.37734\n")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["harvest", "--db", str(tmp_path / "kb.db"), "--dois", str(dois),
                                      "--max-retry-time", "0.5", "--quiet"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1 and elapsed < 3, (elapsed, result.output)
    assert "no connection within 0.5 s" in result.stderr and not (tmp_path / "kb.db").exists()


def test_a_refused_connection_is_retried_within_max_retry_time(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notices = []
    client = make_client(None, base_url=f"http://127.0.0.1:{port}/entrez/eutils/", per_second=200, backoff=0.1,
                         max_retries=6, max_retry_seconds=0.5, on_retry=notices.append)
    with pytest.raises(EutilsError):
        client.efetch(["1"])
    # Waits of about 0.1, 0.2 (up to 25% more each) fit in 0.5 s with the refusals; a third (0.4 s) would not.
    assert [n.attempt for n in notices] == [1, 2] and client.requests_made == 3


def test_retry_after_as_an_http_date_is_honoured(fast_server, make_client):
    notices = []
    client = make_client(fast_server, per_second=200, on_retry=notices.append)
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    fast_server.inject("503", retry_after=when)
    client.efetch([PILOT[0]])
    assert statuses(fast_server) == [503, 200]
    assert 0.5 < notices[0].delay <= 2.0  # whole seconds in the date: up to 1 s already passed


def test_the_shared_client_serves_any_service_with_its_own_hook(fast_server):
    """How another service's client uses harvest.http: generic rules, its own hook, its own secrets."""
    notices = []

    def classify(response):  # this service's way of saying "busy" inside a 200
        return http.Verdict(True, "busy notice") if b'"busy"' in response.content else None

    client = http.PoliteClient("other", fast_server.base_url, per_second=200, backoff=0.01,
                               secrets=["me@example.org"], classify=classify, on_retry=notices.append)
    json_type = {"content_type": "application/json"}
    fast_server.inject("status", status=200, body=b'{"status": "busy"}', **json_type)
    fast_server.inject("status", status=200, body=b'{"items": [1, 2', **json_type)  # cut off: transient
    fast_server.inject("status", status=408, body=b"", **json_type)
    response = client.request("efetch.fcgi", {"id": PILOT[0], "mailto": "me@example.org"})
    assert response.status_code == 200 and b"<PubmedArticle>" in response.content
    assert [n.reason for n in notices] == ["busy notice", "cut-off body", "HTTP 408"]
    assert {n.label for n in notices} == {"efetch"} and client.counts()["retries"] == 3
    fast_server.inject("status", status=404, body=b"<html>gone</html>")
    with pytest.raises(http.HttpError) as caught:
        client.request("efetch.fcgi", {"id": PILOT[0], "mailto": "me@example.org"})
    text = one_line(caught.value)
    assert text.startswith("HTTP 404 from ") and text.endswith(": gone") and "mailto=***" in text
    assert "me@example.org" not in text and "me%40example.org" not in text
