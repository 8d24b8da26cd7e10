"""A polite HTTP client shared by every web service we harvest (E-utilities, ClinicalTrials.gov, Crossref).

One `PoliteClient` per service owns a `requests.Session`, paces requests under the
service's rate limit, retries transient failures with exponential backoff and jitter
(honouring `Retry-After` and `X-RateLimit-Remaining: 0`), bounds the total time spent
retrying one request, scrubs secrets from every message, and counts requests and
retries. Service modules build requests and parse answers; they plug in only what is
theirs: a `classify` hook that recognises their own error bodies.

    client = PoliteClient("crossref", "https://api.crossref.org/", per_second=5,
                          secrets=[email], on_retry=print)
    response = client.request("works", {"filter": "updates:10.1/x"})

Every failure that is final raises `HttpError`, whose message is one line naming the
URL (secrets removed), what went wrong and, when known, what to do.

Transient vs permanent is decided in one place, `PoliteClient.judge`: the service's
hook first, then the generic rules (429, 408 and 5xx are transient; other 4xx are
permanent; a 200 whose XML or JSON body stops early is transient).
"""

import collections
import dataclasses
import email.utils
import json
import random
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import requests
import urllib3

CONNECT_TIMEOUT = 10.0  # an unreachable host fails within about this long (or max_retry_seconds, if shorter)
MIN_CONNECT_TIMEOUT = 0.1  # no connection attempt waits less, whatever is left of the budget
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
SECRET_PARAMS = ("api_key", "email", "mailto", "key", "token")
MAX_RETRY_AFTER = 60.0  # longer asks are capped (and still bounded by the retry budget)


class HttpError(Exception):
    """A request failed for good. The message is one line naming the URL, secrets removed.

    `service` names the client's service; `unreachable` is True when no usable answer came
    within the retries (host down, timeouts, 5xx or 429 to the end), False when the service
    answered and refused (a 4xx, an error body).
    """

    def __init__(self, message, service=None, unreachable=False):
        super().__init__(message)
        self.service = service
        self.unreachable = unreachable


@dataclass(frozen=True)
class Verdict:
    """Why a response or failure is not a usable answer.

    `transient` ones are retried; `reason` is short ("HTTP 429", "back-end timeout");
    `detail` says what the service said; `advice` what the user can do.
    """

    transient: bool
    reason: str
    detail: str = ""
    advice: str = ""
    retry_after: float | None = None  # seconds the service asked us to wait


@dataclass(frozen=True)
class RetryNotice:
    """One retry about to happen, for progress lines: str() gives
    'HTTP 429 from esearch; retry 2 of 6 in 2.0 s'."""

    service: str
    label: str
    reason: str
    attempt: int  # 1 for the first retry
    max_retries: int
    delay: float

    def __str__(self):
        return f"{self.reason} from {self.label}; retry {self.attempt} of {self.max_retries} in {self.delay:.1f} s"


def redact(url, names=SECRET_PARAMS):
    """The URL (or any text quoting one) with secret parameter values replaced by ***."""
    return re.sub(r"\b((?:%s)=)[^&\s'\"]*" % "|".join(map(re.escape, names)), r"\1***", url)


class RateLimiter:
    """Spaces calls at least 1/per_second apart, across threads; `hold` pauses everyone."""

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

    def hold(self, seconds):
        """No request before `seconds` from now (the service said our quota is spent)."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


class PoliteClient:
    """Paced, retried, secret-scrubbing HTTP for one service.

    service: short name used in messages and counts ("eutils", "crossref").
    per_second: pacing; stay under the service's published limit.
    timeout: read timeout in seconds (the connect timeout is CONNECT_TIMEOUT).
    max_retries: retries per request; max_retry_seconds: total time one request may
    spend waiting between retries (a wait that would pass it is not made), and also the
    whole time it may spend on a host that does not answer, connection attempts included
    (each waits only for what is left of the smaller of it and CONNECT_TIMEOUT).
    backoff: first backoff delay; it doubles each retry, plus up to 25% jitter.
    rate_window: how long to wait after `X-RateLimit-Remaining: 0` when the service
    gives no `Retry-After` (the length of its rate-limit window).
    secrets: values (API keys, e-mail addresses) never to show; secret_params: query
    parameter names whose values are hidden.
    classify(response) -> Verdict or None: the service's own judgement of a response
    (None: no opinion, the generic rules apply).
    on_retry(RetryNotice): called before each retry's wait, e.g. to print a line.
    post_above: send parameters as a form POST when their encoding is longer than this.
    """

    def __init__(
        self,
        service,
        base_url,
        per_second,
        timeout=30.0,
        max_retries=6,
        max_retry_seconds=120.0,
        backoff=1.0,
        rate_window=1.0,
        secrets=(),
        secret_params=SECRET_PARAMS,
        classify=None,
        on_retry=None,
        post_above=None,
        headers=None,
        session=None,
    ):
        self.service = service
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.limiter = RateLimiter(per_second)
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_seconds = max_retry_seconds
        self.backoff = backoff
        self.rate_window = rate_window
        self.secrets = [s for s in secrets if s]
        self.secret_params = secret_params
        self.classify = classify
        self.on_retry = on_retry
        self.post_above = post_above
        self.session = session or requests.Session()
        if headers:
            self.session.headers.update(headers)
        self.requests_made = 0
        self.retried = collections.Counter()  # reason -> times retried
        self._answered = collections.deque(maxlen=100)  # when recent requests ended, for rate windows

    # ------------------------------------------------------------------ public

    def request(self, path, params=None, label=None):
        """GET `base_url + path` (a form POST when long); the `requests.Response` of a usable answer.

        The body is read in full before returning. Raises HttpError when the answer
        is permanently bad or retries run out.
        """
        url = self.base_url + path
        params = {k: v for k, v in (params or {}).items() if v is not None}
        encoded = urlencode(params)
        use_post = self.post_above is not None and len(encoded) > self.post_above
        shown = self.scrub(f"{url}?{encoded}" if encoded else url)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        label = label or path.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0] or self.service
        unreachable_budget = min(CONNECT_TIMEOUT, self.max_retry_seconds)
        unreachable_since = None  # when the attempts that found no host began
        waited = 0.0
        attempt = 0
        while True:
            self.limiter.wait()
            self.requests_made += 1
            began = time.monotonic()
            spent = began - unreachable_since if unreachable_since is not None else 0.0
            connect_timeout = max(MIN_CONNECT_TIMEOUT, unreachable_budget - spent)
            try:
                if use_post:
                    response = self.session.post(url, data=params, timeout=(connect_timeout, self.timeout))
                else:
                    response = self.session.get(url, params=params, timeout=(connect_timeout, self.timeout))
                response.content  # reads the whole body: a reset or stall mid-body raises here
                verdict = self.judge(response)
            except requests.RequestException as error:
                response, verdict = None, _failure_verdict(error, connect_timeout)
            if verdict is not None and verdict.reason in _UNREACHABLE:
                unreachable_since = began if unreachable_since is None else unreachable_since
            else:
                unreachable_since = None
            # The service saw the request no later than now: the safe end for its rate window.
            self._answered.append(time.monotonic())
            if response is not None:
                self._honour_rate_headers(response, verdict)
            if verdict is None:
                return response
            if not verdict.transient:
                raise HttpError(self._final_line(verdict, shown), self.service)
            attempt += 1
            delay = self._delay(attempt, verdict)
            # An unreachable host is given up on within the smaller of the connect timeout and the
            # budget, counted from the first attempt that found no host, connection attempts included.
            if unreachable_since is not None:
                budget, spent = unreachable_budget, time.monotonic() - unreachable_since
            else:
                budget, spent = self.max_retry_seconds, waited
            if attempt > self.max_retries or spent + delay > budget:
                raise HttpError(self._give_up_line(verdict, shown, attempt, waited, budget), self.service,
                                unreachable=True)
            self.retried[verdict.reason] += 1
            if self.on_retry:
                self.on_retry(RetryNotice(self.service, label, verdict.reason, attempt, self.max_retries, delay))
            time.sleep(delay)
            waited += delay

    def judge(self, response):
        """None for a usable answer, else a Verdict: the one place that decides transient vs permanent."""
        retry_after = _retry_after(response.headers.get("Retry-After"))
        verdict = self.classify(response) if self.classify else None
        if verdict is not None:
            if verdict.transient and verdict.retry_after is None:
                verdict = dataclasses.replace(verdict, retry_after=retry_after)
            return verdict
        status = response.status_code
        if status in TRANSIENT_STATUS:
            return Verdict(True, f"HTTP {status}", summary(response.content), retry_after=retry_after)
        if status >= 400:
            return Verdict(False, f"HTTP {status}", summary(response.content))
        if status == 200 and looks_cut_off(response.content, response.headers.get("Content-Type", "")):
            return Verdict(True, "cut-off body")
        return None

    def scrub(self, text):
        """Text with our secrets removed (errors may quote the request or echo a key)."""
        for secret in self.secrets:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
        return redact(text, self.secret_params)

    def counts(self):
        """{"service", "requests", "retries"}: what this client did, for run logs and benchmarks."""
        return {"service": self.service, "requests": self.requests_made, "retries": sum(self.retried.values())}

    # ----------------------------------------------------------------- private

    def _honour_rate_headers(self, response, verdict):
        """After `X-RateLimit-Remaining: 0`, send nothing until the service's window has room.

        The window holds the last X-RateLimit-Limit requests; it has room again one
        `rate_window` after the oldest of them ended (or after Retry-After, when given).
        """
        if response.headers.get("X-RateLimit-Remaining", "").strip() != "0":
            return
        if verdict is not None and verdict.retry_after is not None:
            self.limiter.hold(verdict.retry_after)
            return
        try:
            limit = int(response.headers.get("X-RateLimit-Limit", ""))
        except ValueError:
            limit = 0
        oldest = self._answered[-limit] if 0 < limit <= len(self._answered) else time.monotonic()
        self.limiter.hold(oldest + self.rate_window - time.monotonic())

    def _delay(self, attempt, verdict):
        if verdict.retry_after is not None:
            return min(verdict.retry_after, MAX_RETRY_AFTER)
        return self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4)

    # `shown` is scrubbed already; the service's words are scrubbed on their own, so that
    # hiding a parameter value never swallows the punctuation after the URL.
    def _final_line(self, verdict, shown):
        text = f"{verdict.reason} from {shown}"
        if verdict.detail:
            text += f": {self.scrub(verdict.detail)}"
        if verdict.advice:
            text += f" ({verdict.advice})"
        return text

    def _give_up_line(self, verdict, shown, attempt, waited, budget):
        if verdict.reason in _UNREACHABLE or verdict.reason == "connection":
            return f"cannot reach {shown}: {self.scrub(verdict.detail or verdict.reason)}"
        text = f"giving up on {shown} after {attempt} attempts (last: {self.scrub(verdict.reason)})"
        if attempt <= self.max_retries:
            text += f"; retry time limit of {budget:g} s reached after {waited:.1f} s"
        return text


# Reasons meaning no answer came at all; their retries are bounded by the connect timeout.
_UNREACHABLE = {"connection refused", "connect timeout", "unknown host"}


def _failure_verdict(error, connect_timeout):
    """A Verdict for an exception from requests, in our words rather than the library's."""
    reason = _root_cause(error)
    # urllib3's NewConnectionError subclasses ConnectTimeoutError, so refusals are checked first.
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return Verdict(True, "unknown host", "host name not found")
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return Verdict(True, "connection refused", "connection refused")
    if isinstance(error, requests.ConnectTimeout) or isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return Verdict(True, "connect timeout", f"no connection within {connect_timeout:g} s")
    if isinstance(error, requests.Timeout):
        return Verdict(True, "timeout", "no answer within the read timeout")
    if isinstance(error, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return Verdict(True, "connection", "connection dropped")
    return Verdict(False, "request failed", type(error).__name__)


def _root_cause(error):
    """The urllib3 exception behind a requests exception (MaxRetryError unwrapped)."""
    cause = error.args[0] if error.args else None
    return getattr(cause, "reason", cause)


def _retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_PROLOG = re.compile(rb"^(?:\s*(?:<\?.*?\?>|<!DOCTYPE[^>]*>|<!--.*?-->))*\s*", re.S)
_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def looks_cut_off(body, content_type):
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


def summary(body):
    """The first words of a body with markup removed, for one-line messages."""
    text = re.sub(rb"<[^>]+>", b" ", body[:2000]).decode("utf-8", "replace")
    return " ".join(text.split())[:160] or "(empty body)"


def expect_json(response):
    """A `classify` hook for JSON services: a 200 that is not JSON at all (a proxy's HTML page)
    is permanent; JSON cut short is left to the generic rules (transient)."""
    if response.status_code == 200 and "json" not in response.headers.get("Content-Type", ""):
        return Verdict(False, "not JSON", summary(response.content))
    return None
