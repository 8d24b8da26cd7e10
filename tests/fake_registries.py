"""Local stand-ins for ClinicalTrials.gov (API v2 `/studies`) and Crossref (`/works`).

No machine here reaches either service, so the real clients run against these. They
answer in the services' JSON shapes (content written for these tests), enforce a
request rate with 429s (with or without Retry-After), log every request, and can be
told to misbehave for the next requests:

    with FakeCtgov([study("NCT01234567")]) as server:
        server.inject("500", times=2)   # the next two requests get HTTP 500
        ...
        assert server.count() == 3

Faults: "429" (with Retry-After: 0), "429-bare" (no Retry-After), "500", "503",
"truncated" (a 200 whose JSON stops early), "slow" (answers after `slow_seconds`),
"reset" (the connection drops before an answer), "html" (a 200 HTML page), "404".
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _FakeService:
    """Shared machinery: server thread, request log, rate limit, injected faults."""

    path_prefix = "/"

    def __init__(self, max_per_second=None, retry_after=True, slow_seconds=2.0):
        self.max_per_second = max_per_second
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.log = []  # (path, params) of every request that reached the handler
        self.faults = []
        self._lock = threading.Lock()
        self._recent = []
        self.server = None

    # ------------------------------------------------------------------ control

    def inject(self, fault, times=1):
        with self._lock:
            self.faults.extend([fault] * times)

    def reset(self):
        """Empty, with no log, faults or limits: as new, for the next test."""
        with self._lock:
            self.log, self.faults, self._recent = [], [], []
            self.max_per_second = None
            self.records.clear()

    def count(self, path=None):
        return sum(1 for p, _ in self.log if path is None or p.endswith(path))

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path_prefix}"

    def start(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                service._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ serving

    def _handle(self, handler):
        parts = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.log.append((parts.path, params))
            fault = self.faults.pop(0) if self.faults else None
            now = time.monotonic()
            self._recent = [t for t in self._recent if now - t < 1.0]
            over = self.max_per_second is not None and len(self._recent) >= self.max_per_second
            self._recent.append(now)
        if over and fault is None:
            fault = "429" if self.retry_after else "429-bare"
        if fault == "reset":
            # RST instead of FIN: the client sees the connection reset mid-request.
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            return
        if fault == "slow":
            time.sleep(self.slow_seconds)
        if fault in ("429", "429-bare"):
            headers = {"Retry-After": "0"} if fault == "429" else {}
            return self._send(handler, 429, {"message": "Too many requests"}, headers)
        if fault in ("500", "503", "404"):
            return self._send(handler, int(fault), {"message": f"fake error {fault}"})
        if fault == "html":
            return self._send(handler, 200, b"<html><body>Service page</body></html>", {}, "text/html")
        if not parts.path.startswith(self.path_prefix):
            return self._send(handler, 404, {"message": "no such path"})
        status, body, headers = self.answer(parts.path[len(self.path_prefix):], params)
        if fault == "truncated":
            data = json.dumps(body).encode()
            return self._send(handler, status, data[: len(data) // 2], headers)
        self._send(handler, status, body, headers)

    def _send(self, handler, status, body, headers=None, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def answer(self, path, params):
        raise NotImplementedError


# ---------------------------------------------------------------- ClinicalTrials.gov


def study(nct_id, title="A trial of a study drug in fibromyalgia", status="COMPLETED",
          primary_completion=("2019-06", "ACTUAL"), completion=("2019-08", "ACTUAL"),
          enrollment=(40, "ACTUAL"), primary_outcomes=("Pain intensity on a 0-10 numeric rating scale",),
          secondary_outcomes=(), interventions=(("DRUG", "Naltrexone", "Naltrexone 4.5 mg daily"),),
          last_update="2020-01-15", has_results=False, posted_primary=None, why_stopped=None,
          posted_secondary=None):
    """A study record in the v2 JSON shape (protocolSection modules, hasResults, resultsSection);
    `posted_primary` and `posted_secondary` are titles of posted outcome measures."""
    status_module = {
        "overallStatus": status,
        "startDateStruct": {"date": "2018-01", "type": "ACTUAL"},
        "lastUpdatePostDateStruct": {"date": last_update, "type": "ACTUAL"},
    }
    if primary_completion:
        status_module["primaryCompletionDateStruct"] = {"date": primary_completion[0], "type": primary_completion[1]}
    if completion:
        status_module["completionDateStruct"] = {"date": completion[0], "type": completion[1]}
    if why_stopped:
        status_module["whyStopped"] = why_stopped
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": nct_id, "briefTitle": title},
            "statusModule": status_module,
            "designModule": {"studyType": "INTERVENTIONAL",
                             "enrollmentInfo": {"count": enrollment[0], "type": enrollment[1]}},
            "armsInterventionsModule": {
                "armGroups": [{"label": "Active", "type": "EXPERIMENTAL", "interventionNames": ["Drug: Naltrexone"]}],
                "interventions": [
                    {"type": kind, "name": name, "description": text, "armGroupLabels": ["Active"]}
                    for kind, name, text in interventions
                ],
            },
            "outcomesModule": {
                "primaryOutcomes": [{"measure": m, "timeFrame": "12 weeks"} for m in primary_outcomes],
                "secondaryOutcomes": [{"measure": m, "timeFrame": "12 weeks"} for m in secondary_outcomes],
            },
        },
        "hasResults": has_results,
    }
    posted = [(kind, title) for kind, title in (("PRIMARY", posted_primary), ("SECONDARY", posted_secondary)) if title]
    if posted:
        record["resultsSection"] = {"outcomeMeasuresModule": {"outcomeMeasures": [{
            "type": kind, "title": title, "timeFrame": "12 weeks", "unitOfMeasure": "units",
            "groups": [{"id": "OG000", "title": "Active"}, {"id": "OG001", "title": "Placebo"}],
            "classes": [{"categories": [{"measurements": [
                {"groupId": "OG000", "value": "2.5", "spread": "1.1"},
                {"groupId": "OG001", "value": "3.0", "spread": "1.2"}]}]}],
            "analyses": [{"pValue": "0.2", "statisticalMethod": "ANCOVA"}],
        } for kind, title in posted]}}
    return record


class FakeCtgov(_FakeService):
    """`/api/v2/studies` with `filter.ids`, `filter.advanced` (LastUpdatePostDate RANGE), pageSize, pageToken."""

    path_prefix = "/api/v2/"

    def __init__(self, studies=(), max_page_size=1000, **options):
        super().__init__(**options)
        self.max_page_size = max_page_size
        self.studies = self.records = {}
        for record in studies:
            self.add(record)

    def add(self, record):
        self.studies[record["protocolSection"]["identificationModule"]["nctId"]] = record

    def answer(self, path, params):
        if path.startswith("studies/"):  # one study by id
            found = self.studies.get(path.split("/", 1)[1])
            return (200, found, {}) if found else (404, {"message": "study not found"}, {})
        if path != "studies":
            return 404, {"message": f"unknown endpoint {path}"}, {}
        ids = [i for i in params.get("filter.ids", "").split(",") if i]
        found = [self.studies[i] for i in ids if i in self.studies] if ids else list(self.studies.values())
        since = params.get("filter.advanced", "")
        if since:
            start = since.split("RANGE[", 1)[1].split(",", 1)[0]
            found = [s for s in found
                     if s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] >= start]
        size = min(int(params.get("pageSize", 10)), self.max_page_size)
        offset = int(base64.b64decode(params["pageToken"]).decode()) if params.get("pageToken") else 0
        page = {"studies": found[offset : offset + size]}
        if offset + size < len(found):
            page["nextPageToken"] = base64.b64encode(str(offset + size).encode()).decode()
        return 200, page, {}


# ---------------------------------------------------------------- Crossref


def work(doi, title="A paper", kind="journal-article", year=2020, updated_by=(), update_to=(),
         relation=None, container="Pain Rep"):
    """A Crossref work in the REST JSON shape."""
    record = {
        "DOI": doi, "type": kind, "title": [title], "container-title": [container],
        "short-container-title": [container], "issued": {"date-parts": [[year, 3, 1]]},
        "author": [{"given": "Ann B", "family": "Writer", "sequence": "first"}],
    }
    if updated_by:
        record["updated-by"] = [_update(*u) for u in updated_by]
    if update_to:
        record["update-to"] = [_update(*u) for u in update_to]
    if relation:
        record["relation"] = relation
    return record


def _update(doi, kind, source="publisher"):
    return {"DOI": doi, "type": kind, "source": source, "label": kind.replace("_", " ").title(),
            "updated": {"date-parts": [[2024, 5, 2]], "timestamp": 1714608000000}}


class FakeCrossref(_FakeService):
    """`/works?filter=doi:..,doi:..` and `/works?filter=updates:..`; announces its rate limit."""

    def __init__(self, works=(), rate_limit=("50", "1s"), **options):
        super().__init__(**options)
        self.works = self.records = {}
        self.rate_limit = rate_limit
        for record in works:
            self.add(record)

    def add(self, record):
        self.works[record["DOI"].lower()] = record

    def answer(self, path, params):
        headers = {"X-Rate-Limit-Limit": self.rate_limit[0], "X-Rate-Limit-Interval": self.rate_limit[1]}
        if path.startswith("works/"):  # one work by DOI
            found = self.works.get(path.split("/", 1)[1].lower())
            if not found:
                return 404, {"status": "error", "message": "Resource not found."}, headers
            return 200, {"status": "ok", "message-type": "work", "message": found}, headers
        if path != "works":
            return 404, {"status": "error", "message": "Resource not found."}, headers
        wanted = {"doi": set(), "updates": set()}
        for item in params.get("filter", "").split(","):
            name, _, value = item.partition(":")
            if name not in wanted:
                return 400, {"status": "failed", "message-type": "validation-failure",
                             "message": [{"type": "filter-not-available", "value": name}]}, headers
            wanted[name].add(value.lower())
        found = [
            w for d, w in self.works.items()
            if d in wanted["doi"] or any(u["DOI"].lower() in wanted["updates"] for u in w.get("update-to", []))
        ]
        rows, offset = int(params.get("rows", 20)), int(params.get("offset", 0))
        return 200, {
            "status": "ok", "message-type": "work-list", "message-version": "1.0.0",
            "message": {"facets": {}, "total-results": len(found), "items": found[offset : offset + rows],
                        "items-per-page": rows, "query": {"start-index": 0, "search-terms": None}},
        }, headers
