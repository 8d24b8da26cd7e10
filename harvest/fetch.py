"""Fetch stage: NCBI E-utilities over HTTP, paced, retried, with typed errors.

One `EutilsClient` owns the base URL (`KB_EUTILS_URL`), the credentials NCBI asks
for, the request pacing shared by every call, and retries. Functions named
`fetch_*` use it and return raw bytes or plain values; nothing here parses
PubMed records (that is `parse.py`).
"""

import collections
import json
import os
import random
import re
import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

import requests

DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
TOOL_NAME = "ldn-kb"
EFETCH_BATCH = 200  # NCBI's advice for efetch id lists sent in one request
ESEARCH_DOI_BATCH = 200
POST_ABOVE_CHARS = 1500  # long parameter lists go in a POST body, as NCBI asks
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
_SECRET_PARAMS = ("api_key", "email")


class EutilsError(Exception):
    """An E-utilities request failed for good; the message is one line naming the URL."""


def redact(url):
    """The URL with the API key and e-mail removed, safe to log or store."""
    return re.sub(r"((?:%s)=)[^&\s'\"]*" % "|".join(_SECRET_PARAMS), r"\1***", url)


class RateLimiter:
    """Spaces calls at least `interval` seconds apart, across threads."""

    def __init__(self, per_second):
        self.interval = 1.0 / per_second
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self):
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


class EutilsClient:
    """A client for esearch, efetch and ecitmatch.

    NCBI allows 3 requests/s without an API key and 10 with one; we stay a little
    under, so pacing, not retrying, keeps us within the limit.
    """

    def __init__(
        self,
        base_url=None,
        api_key=None,
        email=None,
        timeout=30.0,
        max_retries=5,
        backoff=1.0,
        session=None,
        per_second=None,
    ):
        base_url = base_url or os.environ.get("KB_EUTILS_URL") or DEFAULT_EUTILS_URL
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.api_key = api_key if api_key is not None else os.environ.get("NCBI_API_KEY")
        self.email = email if email is not None else os.environ.get("NCBI_EMAIL")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.session = session or requests.Session()
        # Under NCBI's 3/s (10/s with a key) with room for latency jitter between requests.
        self.limiter = RateLimiter(per_second or (8.0 if self.api_key else 2.5))
        self.requests_made = 0
        self.retried = collections.Counter()  # problem -> times retried, for harvest_runs.errors

    def _params(self, params):
        full = {k: v for k, v in params.items() if v is not None}
        full["tool"] = TOOL_NAME
        if self.email:
            full["email"] = self.email
        if self.api_key:
            full["api_key"] = self.api_key
        return full

    def request(self, endpoint, params):
        """GET (or POST when long) one endpoint; returns the body bytes of a 200.

        Retries 429, 5xx, timeouts, connection errors and cut-off bodies with
        exponential backoff and jitter, honouring Retry-After when present.
        """
        url = self.base_url + endpoint
        params = self._params(params)
        encoded = urlencode(params)
        use_post = len(encoded) > POST_ABOVE_CHARS
        shown = redact(f"{url}?{encoded}")
        if len(shown) > 200:
            shown = shown[:200] + "..."
        last_problem = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retried[str(last_problem[0])] += 1
                time.sleep(self._retry_delay(attempt, last_problem))
            self.limiter.wait()
            self.requests_made += 1
            try:
                if use_post:
                    response = self.session.post(url, data=params, timeout=self.timeout)
                else:
                    response = self.session.get(url, params=params, timeout=self.timeout)
                body = response.content  # reads the whole body: a reset mid-body raises here
            except requests.Timeout:
                last_problem = ("timeout", None)
                continue
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
                last_problem = ("connection", None)
                if attempt == self.max_retries:
                    raise EutilsError(f"cannot reach {shown}: {_short(self.scrub(str(error)))}") from None
                continue
            if response.status_code == 200:
                if _looks_cut_off(body, response.headers.get("Content-Type", "")):
                    last_problem = ("truncated", None)
                    continue
                return body
            if response.status_code in RETRYABLE_STATUS:
                last_problem = (response.status_code, response.headers.get("Retry-After"))
                continue
            raise EutilsError(f"HTTP {response.status_code} from {shown}: {self.scrub(_summary(body))}")
        kind = last_problem[0] if last_problem else "unknown"
        raise EutilsError(
            f"giving up on {shown} after {self.max_retries + 1} attempts (last: {kind})"
        )

    def scrub(self, text):
        """Text with our API key and e-mail removed (errors may quote the request or echo the key)."""
        for secret in (self.api_key, self.email):
            if secret:
                text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
        return redact(text)

    def _retry_delay(self, attempt, problem):
        retry_after = problem[1] if problem else None
        if retry_after:
            try:
                return min(float(retry_after), 60.0)
            except ValueError:
                pass  # an HTTP-date: fall back to backoff
        return self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4)

    def esearch(self, term, retmax=10000, **extra):
        """Run an esearch on PubMed; returns (pmids, count). Raises on errors reported inside a 200."""
        body = self.request(
            "esearch.fcgi",
            {"db": "pubmed", "term": term, "retmax": retmax, "retmode": "xml", **extra},
        )
        return parse_esearch(body)

    def efetch(self, pmids):
        """PubMed XML for up to EFETCH_BATCH PMIDs, as bytes."""
        return self.request(
            "efetch.fcgi", {"db": "pubmed", "id": ",".join(pmids), "retmode": "xml"}
        )

    def ecitmatch(self, citations):
        """Match citations {journal, year, volume, first_page, author, key} to PMIDs.

        Returns {key: pmid or None}. One request for the whole list.
        """
        lines = [
            "|".join(
                [
                    c.get("journal") or "",
                    str(c.get("year") or ""),
                    str(c.get("volume") or ""),
                    str(c.get("first_page") or ""),
                    c.get("author") or "",
                    c["key"],
                ]
            )
            + "|"
            for c in citations
        ]
        body = self.request(
            "ecitmatch.cgi", {"db": "pubmed", "retmode": "xml", "bdata": "\r".join(lines)}
        )
        found = {}
        for line in body.decode("utf-8", "replace").splitlines():
            fields = line.strip().split("|")
            if len(fields) >= 7:
                pmid = fields[6].strip()
                found[fields[5]] = pmid if pmid.isdigit() else None
        return found


class EsearchError(EutilsError):
    """esearch answered 200 with an ErrorList (e.g. a malformed query)."""


def parse_esearch(body):
    """(pmids, count) from an esearch XML body.

    Errors arrive inside HTTP 200: `ERROR` and `ErrorList` other than
    PhraseNotFound (which just means some terms matched nothing) raise.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise EutilsError(f"esearch returned malformed XML: {error}") from None
    fatal = root.findtext("ERROR")
    if fatal:
        raise EsearchError(f"esearch error: {fatal.strip()}")
    error_list = root.find("ErrorList")
    if error_list is not None:
        problems = [
            f"{child.tag}: {child.text}" for child in error_list if child.tag != "PhraseNotFound"
        ]
        if problems:
            raise EsearchError("esearch error: " + "; ".join(problems))
    pmids = [node.text for node in root.iterfind("IdList/Id")]
    return pmids, int(root.findtext("Count") or 0)


_PROLOG = re.compile(rb"^(?:\s*(?:<\?.*?\?>|<!DOCTYPE[^>]*>|<!--.*?-->))*\s*", re.S)
_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def _looks_cut_off(body, content_type):
    """A 200 whose XML or JSON body stops before its end (a dropped connection)."""
    text = body.strip()
    if not text:
        return True
    if "json" in content_type:
        try:
            json.loads(text)
        except ValueError:
            return True
        return False
    if text.startswith(b"<"):
        document = _PROLOG.sub(b"", text, count=1)
        root = _ROOT.match(document)
        if not root:
            return True
        return not (text.endswith(b"</" + root.group(1) + b">") or re.fullmatch(rb"<[^<>]*/>", document))
    return False


def _summary(body):
    text = re.sub(rb"<[^>]+>", b" ", body[:2000]).decode("utf-8", "replace")
    return " ".join(text.split())[:160] or "(empty body)"


def _short(error):
    text = str(error)
    return (text[:160] + "...") if len(text) > 160 else text


def batched(items, size):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def doi_term(dois):
    """One esearch term OR-ing every DOI as article id or location id."""
    return " OR ".join(f'"{doi}"[aid] OR "{doi}"[lid]' for doi in dois)


def fetch_pmids_for_dois(client, dois):
    """PMIDs whose records may carry these DOIs: one esearch per batch of 200 DOIs.

    The mapping back to DOIs is done from the fetched records, never from here.
    """
    pmids = []
    for batch in batched(dois, ESEARCH_DOI_BATCH):
        found, _ = client.esearch(doi_term(batch), retmax=len(batch) * 5 + 20)
        pmids.extend(p for p in found if p not in pmids)
    return pmids


def fetch_truncated_candidates(client, dois):
    """PMIDs whose DOIs start with one of these truncated DOIs (one wildcard esearch)."""
    if not dois:
        return []
    found, _ = client.esearch(" OR ".join(f"{doi}*[aid]" for doi in dois), retmax=200)
    return found


def fetch_records(client, pmids):
    """Yield (pmids_asked, xml_bytes) per efetch batch of up to 200 PMIDs."""
    for batch in batched(pmids, EFETCH_BATCH):
        yield batch, client.efetch(batch)


def fetch_changed_pmids(client, pmids, since):
    """Which of these PMIDs were modified in PubMed on or after `since` (YYYY/MM/DD)."""
    if not pmids:
        return []
    changed = []
    for batch in batched(pmids, 2000):
        ids = " OR ".join(f"{pmid}[uid]" for pmid in batch)
        found, _ = client.esearch(f'({ids}) AND ("{since}"[mdat] : "3000"[mdat])', retmax=len(batch))
        changed.extend(found)
    return changed


def fetch_new_for_queries(client, queries, since=None):
    """PMIDs matching any saved query, entered on or after `since` (all when None). One esearch."""
    if not queries:
        return []
    term = " OR ".join(f"({query})" for query in queries)
    if since:
        term = f'({term}) AND ("{since}"[edat] : "3000"[edat])'
    found, _ = client.esearch(term, retmax=10000)
    return found
