"""Fetch stage: NCBI E-utilities requests, and how E-utilities says it failed.

One `EutilsClient` owns the base URL (`KB_EUTILS_URL`) and the credentials NCBI asks
for; pacing, retries and error lines come from the shared polite client (`http.py`),
taught E-utilities' own error bodies by `classify_eutils`. Functions named `fetch_*`
use it and return raw bytes or plain values; nothing here parses PubMed records
(that is `parse.py`).
"""

import os
import re
import xml.etree.ElementTree as ET

from .http import HttpError, PoliteClient, Verdict

DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
TOOL_NAME = "ldn-kb"
EFETCH_BATCH = 200  # NCBI's advice for efetch id lists sent in one request
ESEARCH_DOI_BATCH = 200
POST_ABOVE_CHARS = 1500  # long parameter lists go in a POST body, as NCBI asks


class EutilsError(HttpError):
    """An E-utilities request failed for good; the message is one line naming the URL."""


class EutilsClient(PoliteClient):
    """A client for esearch, efetch and ecitmatch.

    NCBI allows 3 requests/s without an API key and 10 with one; we stay a little
    under, so pacing, not retrying, keeps us within the limit. `classify_eutils`
    teaches the shared client E-utilities' own ways of failing.
    """

    def __init__(self, base_url=None, api_key=None, email=None, per_second=None, **options):
        base_url = base_url or os.environ.get("KB_EUTILS_URL") or DEFAULT_EUTILS_URL
        self.api_key = api_key if api_key is not None else os.environ.get("NCBI_API_KEY")
        self.email = email if email is not None else os.environ.get("NCBI_EMAIL")
        super().__init__(
            "eutils",
            base_url,
            # Under NCBI's 3/s (10/s with a key) with room for latency jitter between requests.
            per_second or (8.0 if self.api_key else 2.5),
            secrets=[self.api_key, self.email],
            classify=classify_eutils,
            post_above=POST_ABOVE_CHARS,
            **options,
        )

    def request(self, endpoint, params, label=None):
        """The body bytes of a usable answer from one endpoint; raises EutilsError."""
        full = {**params, "tool": TOOL_NAME, "email": self.email or None, "api_key": self.api_key or None}
        try:
            return super().request(endpoint, full, label).content
        except HttpError as error:
            raise EutilsError(str(error), error.service, error.unreachable) from None

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


# What E-utilities says when its back end, not our request, failed: seen as HTTP 400 bodies,
# as `<ERROR>` bodies of a 200, and as text inserted into a 200 mid-stream (sometimes with + for spaces).
_TRANSIENT_TEXT = re.compile(
    rb"error[+ ]reading[+ ]from[+ ]remote[+ ]server|bad[+ ]gateway|service[+ ]unavailable"
    rb"|resource[+ ]temporarily[+ ]unavailable|status:[+ ]*timeout|empty[+ ]response|timed[+ ]out",
    re.I,
)


def classify_eutils(response):
    """E-utilities' own failures, as a Verdict for the shared client (None: the generic rules decide).

    - The gateway's 400 for an invalid API key is permanent (and its body, which echoes
      the key, is not quoted).
    - Back-end trouble (a timeout reported as 400, "Bad gateway" and the like in an
      `<ERROR>` or inserted mid-stream into a 200) is transient. Such words inside a
      record's own text (an abstract about an unavailable service) are not trouble.
    - A 200 whose document is only an `<ERROR>` (e.g. an empty id list) is permanent;
      esearch's `<ERROR>` is left to `parse_esearch`, which raises EsearchError.
    """
    body = response.content
    status = response.status_code
    if status == 400 and b"api key" in body.lower() and b"invalid" in body.lower():
        return Verdict(False, "HTTP 400", "NCBI rejected the API key",
                       "check NCBI_API_KEY, or unset it to run without a key")
    trouble = _back_end_trouble(body)
    if trouble:
        reason = "HTTP 200 with an error" if status == 200 else f"HTTP {status}"
        return Verdict(True, reason, f"E-utilities back end: {trouble}")
    if status == 200:
        message = _error_only_document(body)
        if message:
            return Verdict(False, "E-utilities error", message)
    return None


def _back_end_trouble(body):
    """The transient error text in a body, unless it is only part of a record's text."""
    match = _TRANSIENT_TEXT.search(body)
    if not match:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return match.group().decode("utf-8", "replace")  # the inserted text broke the document
    # Text between records or ids, or in an ERROR element, is the service's; text inside a record is data.
    containers = [root, *root.iter("IdList")]
    loose = [node.text or "" for node in containers] + [child.tail or "" for node in containers for child in node]
    loose += [node.text or "" for node in root.iter("ERROR")]
    for text in loose:
        found = _TRANSIENT_TEXT.search(text.encode("utf-8"))
        if found:
            return found.group().decode("utf-8", "replace")
    return None


def _error_only_document(body):
    """The message of an `<ERROR>`-only answer (not esearch's, which its parser reports)."""
    if b"<ERROR>" not in body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    if root.tag == "eSearchResult":
        return None
    if root.tag == "ERROR" or [child.tag for child in root] == ["ERROR"]:
        return " ".join((root.findtext("ERROR") or root.text or "").split())
    return None


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
