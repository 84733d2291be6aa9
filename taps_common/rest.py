"""The base stream every vendor's `client.py` builds on.

It overrides the SDK's hooks for what all five taps need: retries that honour
`Retry-After`, errors that name the setting to fix, no secret in any message,
JSON bodies checked inside the retry loop, pages counted from the response, and
date windows whose bookmark advances window by window. One loop is its own, on
purpose: the per-record loop of plain streams (`_sync_records`, issue 7).
It knows no vendor: each vendor's client sets `vendor_name` and the hooks.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import random
from dataclasses import dataclass
from functools import cached_property
import typing as t
from http import HTTPStatus
from urllib.parse import urlparse

import backoff
import orjson
import requests
from singer_sdk import RESTStream, metrics
from singer_sdk.streams.rest import PageContext
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.pagination import PageNumberPaginator

from taps_common.errors import (
    APIRequestError,
    APIUnavailableError,
    CredentialsError,
)
from taps_common.fetch_ahead import FetchAhead, sending_ahead
from taps_common.json_items import SplitBody, split_top_level_array
from taps_common.output import BufferedSingerWriter
from taps_common.records import number_fields, numbers_from_text
from taps_common.redaction import redact
from taps_common.retry import RETRIABLE_EXCEPTIONS, RetryPolicy, retry_after_of, wait_generator
from taps_common.timestamps import parse_timestamp, to_utc_iso, utc_now
from taps_common.windows import DateWindow

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from singer_sdk.helpers.types import Context, RequestFunc

_BODY_EXCERPT_CHARS = 300
_DECODED_ATTRIBUTE = "_taps_common_json"
_SPLIT_ATTRIBUTE = "_taps_common_split_json"


#: Before a body this big is decoded, the memory the allocator holds free goes back to the system
#: (see `release_free_memory`).
LARGE_BODY_BYTES = 1 << 20


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError, TypeError):  # another C library, or no way to load one
        return None


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the pages the C allocator holds free back to the system (glibc; elsewhere nothing).

    A big answer's objects are freed in pieces scattered over the heap, which the allocator keeps:
    without this, each big answer read leaves the process a little bigger than the one before
    (about 1 MiB per month of usage events), and its peak grows with the number of answers.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def decoded_json(response: requests.Response) -> t.Any:  # noqa: ANN401
    """The response body as JSON, decoded once (in `validate_response`) and cached.

    Raises:
        ValueError: when the body is not JSON (orjson's error is a ValueError).
    """
    if not hasattr(response, _DECODED_ATTRIBUTE):
        if len(response.content) > LARGE_BODY_BYTES:
            release_free_memory()  # what the last big answer left behind, before this one is built
        setattr(response, _DECODED_ATTRIBUTE, orjson.loads(response.content))
    return getattr(response, _DECODED_ATTRIBUTE)


def decoded_json_shell(response: requests.Response, items_key: str) -> t.Any:  # noqa: ANN401
    """The response body as JSON, without the items of its top-level `items_key` array if it can.

    When that array holds objects, it is left empty here and `lazily_decoded_items` gives
    its items one at a time (see `taps_common.json_items`); any other body is decoded whole, as by
    `decoded_json`. Decoded once and cached.

    Raises:
        ValueError: when the body is not JSON.
    """
    split = _split_body(response, items_key)
    return split.shell if split is not None else decoded_json(response)


def lazily_decoded_items(response: requests.Response, items_key: str) -> SplitBody | None:
    """The items of the body's top-level `items_key` array, each decoded when taken.

    None when the body cannot be split so (see `decoded_json_shell`): read it with `decoded_json`.
    """
    return _split_body(response, items_key)


def _split_body(response: requests.Response, items_key: str) -> SplitBody | None:
    """`split_top_level_array` of the body, done once and cached."""
    if not hasattr(response, _SPLIT_ATTRIBUTE):
        setattr(response, _SPLIT_ATTRIBUTE, split_top_level_array(response.content, items_key))
    return getattr(response, _SPLIT_ATTRIBUTE)


def body_excerpt(response: requests.Response) -> str:
    """The start of a response body, secrets masked, for error messages."""
    text = response.text.strip().replace("\n", " ")
    if len(text) > _BODY_EXCERPT_CHARS:
        text = text[:_BODY_EXCERPT_CHARS] + "..."
    return redact(text)


def describe_network_failure(failure: BaseException) -> str:
    """A short account of a network failure that holds no URL (URLs can hold keys)."""
    kinds: list[tuple[type[BaseException], str]] = [
        (requests.exceptions.ConnectTimeout, "the connection timed out"),
        (requests.exceptions.ReadTimeout, "no answer within request_timeout"),
        (requests.exceptions.SSLError, "the TLS handshake failed"),
        (requests.exceptions.ChunkedEncodingError, "the connection broke mid-body"),
        (requests.exceptions.ContentDecodingError, "the body could not be decoded"),
        (ConnectionResetError, "the connection was reset"),
    ]
    for kind, text in kinds:
        if isinstance(failure, kind):
            return text
    detail = str(failure)
    if "Name or service not known" in detail or "nodename nor servname" in detail or (
        "Failed to resolve" in detail
    ):
        return "the host name could not be resolved"
    if "Connection refused" in detail:
        return "the connection was refused"
    return f"a network error ({type(failure).__name__})"


class TotalPagesPaginator(PageNumberPaginator):
    """Page numbers until the count the response announces; no request past the last page.

    `first_page` is 1 for 1-based APIs and 0 for 0-based ones. An empty page
    before the announced last one does not end paging early.
    """

    def __init__(
        self,
        total_pages_of: Callable[[requests.Response], int],
        first_page: int = 1,
        on_pages_known: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__(first_page)
        self._first_page = first_page
        self._total_pages_of = total_pages_of
        #: Told (next page, last page) once a response says how many there are.
        self.on_pages_known = on_pages_known

    def has_more(self, response: requests.Response) -> bool:  # noqa: D102
        pages_read = self.current_value - self._first_page + 1
        total = self._total_pages_of(response)
        if self.on_pages_known is not None and pages_read < total:
            self.on_pages_known(self.current_value + 1, self._first_page + total - 1)
        return pages_read < total

    def continue_if_empty(self, response: requests.Response) -> bool:  # noqa: D102
        return self.has_more(response)


class RecordCounter(metrics.Counter):
    """The SDK's record counter (`record_count` logged every `log_interval` seconds), cheaper per record.

    The SDK's reads the clock at every record; this one every `CLOCK_EVERY` records, so the count
    is logged as often, at most that many records late.
    """

    CLOCK_EVERY = 1000
    _until_clock = CLOCK_EVERY

    def increment(self, value: int = 1) -> None:  # noqa: D102
        self.value += value
        self._until_clock -= 1
        if self._until_clock <= 0:
            self._until_clock = self.CLOCK_EVERY
            if self._ready_to_log():
                self._pop()

    def add(self, records: int) -> None:
        """Count `records` at once, looking at the clock (for loops that count in blocks)."""
        self.value += records
        if records and self._ready_to_log():
            self._pop()


@dataclass(frozen=True)
class DirectRecordPlan:
    """What writing a stream's records directly needs: its properties and its boolean ones."""

    properties: frozenset[str]
    #: Top-level booleans, which the SDK's conformance turns 0/1 into false/true.
    boolean_properties: tuple[str, ...]


def direct_record_plan(schema: t.Mapping[str, t.Any]) -> DirectRecordPlan | None:
    """The plan for a schema whose records need no conformance beyond top-level booleans.

    None when a nested property is boolean: the SDK would conform it, and records
    with such fields take the SDK's path.
    """

    def is_boolean(definition: t.Mapping[str, t.Any]) -> bool:
        types = definition.get("type", [])
        types = [types] if isinstance(types, str) else types
        return "boolean" in types and not ({"integer", "number", "string"} & set(types))

    def has_nested_boolean(definition: t.Mapping[str, t.Any]) -> bool:
        children = list((definition.get("properties") or {}).values())
        if isinstance(definition.get("items"), dict):
            children.append(definition["items"])
        children += definition.get("anyOf", []) + definition.get("oneOf", [])
        return any(is_boolean(child) or has_nested_boolean(child) for child in children)

    properties = schema.get("properties", {})
    if any(has_nested_boolean(definition) for definition in properties.values()):
        return None
    booleans = tuple(name for name, definition in properties.items() if is_boolean(definition))
    return DirectRecordPlan(frozenset(properties), booleans)


class BaseAPIStream(RESTStream):
    """What every vendor stream shares: retries, errors, redaction, windows."""

    #: The vendor's name as users know it, for messages ("Unleash live").
    vendor_name: str = "the API"
    #: Setting names that hold credentials, named in 401/403 messages.
    credential_settings: tuple[str, ...] = ()
    #: The response bodies are JSON; decode them inside the retry loop.
    decode_json_bodies: bool = True
    #: A redirect would carry credentials (headers, query) to another host.
    allow_redirects: bool = False
    #: Windowed streams move their bookmark only at window ends (see `checkpoint`).
    bookmark_at_window_ends: bool = False
    #: True where `parse_response` already turns every number field into a number (or None):
    #: `post_process` then has no numbers sent as text to look for, record after record.
    numbers_are_parsed: bool = False
    #: The top-level key of an array of objects whose items are decoded one at a time when
    #: taken (`lazily_decoded_items`), so that a big answer is never all decoded at once; None
    #: decodes bodies whole.
    items_decoded_when_taken: str | None = None

    # --- settings -----------------------------------------------------------

    @property
    def url_base(self) -> str:  # noqa: D102
        return str(self.config["api_url"]).rstrip("/")

    @property
    def requests_session(self) -> requests.Session:
        """The SDK's session, with the environment's proxy settings read once, not per request.

        requests reads `HTTPS_PROXY`, `NO_PROXY` and the like from the environment again for every
        request it sends (about 0.2 ms each on the development machine, whose environment is big).
        Every request of a stream goes to `url_base`, so the proxy they would choose is chosen
        once, and the session reads the environment no more (`trust_env`): the proxy variables
        still apply, as they were when the stream started. (`trust_env` also looks up `.netrc`
        credentials, but only for a session without auth, and the SDK gives it the authenticator.)
        """
        session = super().requests_session
        if session.trust_env:  # as `requests.utils.resolve_proxies` chooses, for url_base
            scheme = urlparse(self.url_base).scheme
            environment = requests.utils.get_environ_proxies(self.url_base)
            proxy = environment.get(scheme, environment.get("all"))
            if proxy:
                session.proxies.setdefault(scheme, proxy)
            session.trust_env = False
        return session

    @property
    def retry_policy(self) -> RetryPolicy:
        """Tries and waits from the settings."""
        return RetryPolicy(
            max_tries=int(self.config.get("max_tries", 5)),
            base_seconds=float(self.config.get("backoff_base_seconds", 2.0)),
            max_backoff_seconds=float(self.config.get("backoff_max_seconds", 120.0)),
            retry_after_cap_seconds=float(self.config.get("retry_after_max_seconds", 300.0)),
        )

    @property
    def timeout(self) -> float:  # type: ignore[override]  # noqa: D102
        return float(self.config.get("request_timeout", 300))

    # --- retries ------------------------------------------------------------

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:  # noqa: D102
        return wait_generator(self.retry_policy)

    def backoff_max_tries(self) -> int:  # noqa: D102
        return self.retry_policy.max_tries

    def backoff_jitter(self, value: float) -> float:  # noqa: D102, PLR6301
        # Never shorter than asked (Retry-After is a floor), at most 10 % longer.
        return value * (1 + random.random() / 10)  # noqa: S311

    def backoff_handler(self, details: t.Mapping[str, t.Any]) -> None:  # noqa: D102
        failure = details.get("exception")
        response = getattr(failure, "response", None)
        if response is not None:
            reason = f"HTTP {response.status_code} {response.reason}"
        elif failure is not None:
            reason = describe_network_failure(failure)
        else:
            reason = "an unknown failure"
        if (ahead := self.fetch_ahead) is not None:
            ahead.gate.hold(float(details.get("wait", 0.0)))  # slow every worker, not just this one
        self.logger.warning(
            "%s: retrying %s in %.1f s (try %d of %d failed: %s)",
            self.vendor_name,
            self.path,
            details.get("wait", 0.0),
            details.get("tries", 0),
            self.backoff_max_tries(),
            reason,
        )

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """Retry transient failures; turn what is left into clear, secret-free errors.

        backoff's own log handlers are off (`logger=None`): they print exception
        texts, and requests puts full URLs, query strings included, in those.
        """
        retrying = backoff.on_exception(
            self.backoff_wait_generator,
            (RetriableAPIError, *RETRIABLE_EXCEPTIONS),
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(func)

        def request_with_clear_errors(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            tries = self.backoff_max_tries()
            try:
                return retrying(*args, **kwargs)
            except RetriableAPIError as failure:
                msg = f"{redact(str(failure))} (gave up after {tries} tries)"
                raise APIUnavailableError(msg) from None
            except RETRIABLE_EXCEPTIONS as failure:
                host = urlparse(self.url_base).netloc
                request = args[0] if args else None  # `_request(prepared_request, context)`
                path = urlparse(request.url).path if isinstance(request, requests.PreparedRequest) else self.path
                msg = (
                    f"{self.vendor_name}: could not reach {host} for {path}: "
                    f"{describe_network_failure(failure)} (gave up after {tries} tries). "
                    "Check the api_url setting and the network."
                )
                raise APIUnavailableError(redact(msg)) from None

        return request_with_clear_errors

    # --- responses ----------------------------------------------------------

    def validate_response(self, response: requests.Response) -> None:
        """Sort a response into retriable, credential, other client errors, or good.

        A good response's JSON is decoded here, inside the retry loop, so that a
        truncated or malformed body is retried like a dropped connection. An answer
        fetched ahead is decoded when the sync takes it (`_request`), within the
        sync's own retries all the same.
        """
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            raise CredentialsError(self.credentials_error_message(response))
        if HTTPStatus.MULTIPLE_CHOICES <= status < HTTPStatus.BAD_REQUEST:
            location = urlparse(response.headers.get("Location", "")).netloc or "elsewhere"
            msg = (
                f"{self.vendor_name} redirected {self.path} to {location}; redirects are not "
                "followed because they would carry the credentials along. Check api_url."
            )
            raise APIRequestError(msg)
        if status >= HTTPStatus.BAD_REQUEST:
            raise APIRequestError(self.response_error_message(response))
        if not sending_ahead():  # an answer fetched ahead is decoded when the sync takes it
            self.validate_response_content(response)

    def validate_response_content(self, response: requests.Response) -> None:
        """Decode a good response's JSON and let the vendor check the body (`validate_response_body`)."""
        if self.decode_json_bodies:
            try:
                self.decoded_body(response)
            except ValueError:
                msg = (
                    f"{self.vendor_name} answered {self.path} with a body that is not "
                    f"valid JSON ({len(response.content)} bytes): {body_excerpt(response)!r}"
                )
                raise RetriableAPIError(msg, response) from None
        self.validate_response_body(response)

    def validate_response_body(self, response: requests.Response) -> None:
        """Vendor hook: raise for errors reported inside a 2xx body."""

    def decoded_body(self, response: requests.Response) -> t.Any:  # noqa: ANN401
        """The body as JSON: only its shell for streams with `items_decoded_when_taken`."""
        if self.items_decoded_when_taken is None:
            return decoded_json(response)
        return decoded_json_shell(response, self.items_decoded_when_taken)

    def response_error_message(self, response: requests.Response) -> str:
        """Status, path (never the query string) and the start of the body."""
        return (
            f"{self.vendor_name} answered HTTP {response.status_code} {response.reason} "
            f"for {urlparse(response.url).path or self.path}: {body_excerpt(response)}"
        )

    def credentials_error_message(self, response: requests.Response) -> str:
        """Vendor hook: what a 401/403 means and which setting to fix."""
        settings = " or ".join(f"`{name}`" for name in self.credential_settings) or "credential"
        return (
            f"{self.vendor_name} refused the credentials (HTTP {response.status_code}: "
            f"{body_excerpt(response)}). Check the {settings} setting."
        )

    # --- one-off requests ---------------------------------------------------

    def probe(self, path: str) -> requests.Response:
        """GET `path` with this stream's auth, retries and error handling.

        Used for connection tests, whose answers need not be JSON.
        """
        request = self.build_prepared_request(
            method="GET", url=f"{self.url_base}{path}", headers=self.http_headers
        )
        previous, self.decode_json_bodies = self.decode_json_bodies, False
        try:
            return self.request_decorator(self._request)(request, None)
        finally:
            self.decode_json_bodies = previous

    # --- fetching ahead -----------------------------------------------------

    @property
    def fetch_ahead(self) -> FetchAhead | None:
        """The tap's workers for fetching ahead, when it has them and they are on."""
        ahead = getattr(self._tap, "fetch_ahead", None)
        return ahead if isinstance(ahead, FetchAhead) and ahead.enabled else None

    def page_count_paginator(
        self, total_pages_of: Callable[[requests.Response], int], first_page: int = 1
    ) -> TotalPagesPaginator:
        """A `TotalPagesPaginator` whose next pages are fetched ahead once their count is known."""
        return TotalPagesPaginator(total_pages_of, first_page, on_pages_known=self.fetch_pages_ahead)

    def request_records(self, context: Context | None) -> Iterable[dict]:
        """The SDK's records of `context`'s pages; their context is kept for fetching pages ahead.

        Not a generator of its own (one layer less per record): every caller reads the records at
        once, so the context kept is the one of the pages being read.
        """
        self._paging_context = context
        self._pages_sent_ahead_through = 0
        return super().request_records(context)

    def _request(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        ahead = self.fetch_ahead
        future = ahead.take(prepared_request) if ahead is not None else None
        if future is not None:
            response = future.result()  # a failure is retried by the caller, as if sent now
            self.validate_response_content(response)  # decoded now, in turn: a bad body is retried too
            return response
        response = super()._request(prepared_request, context)
        if ahead is not None:
            ahead.saw_answer(response, self.name)  # the credentials and the URL work: fetching ahead may start
        return response

    def _send_ahead(self, context: Context | None) -> Callable[[requests.PreparedRequest], requests.Response]:
        """What a worker runs: the request, once; a 429 or 5xx holds every worker back."""
        ahead = t.cast("FetchAhead", self.fetch_ahead)

        def send(request: requests.PreparedRequest) -> requests.Response:
            try:
                return super(BaseAPIStream, self)._request(request, context)
            except RetriableAPIError as failure:
                ahead.gate.hold(self.retry_policy.wait_seconds(0, retry_after_of(failure)))
                raise

        return send

    def _prepared_request_for(self, page: PageContext) -> requests.PreparedRequest:
        """The request the SDK would send for `page` (as its `_prepare_request` builds it)."""
        http_request = self.get_http_request(page=page)
        kwargs: dict[str, t.Any] = {
            "method": http_request.method,
            "url": http_request.url,
            "params": http_request.encode_params(),
            "headers": http_request.headers,
            ("json" if self.payload_as_json else "data"): http_request.data,
        }
        return self.build_prepared_request(**kwargs)

    #: The last page of the current paging context sent ahead (0: none yet).
    _pages_sent_ahead_through = 0

    def fetch_pages_ahead(self, next_page: int, last_page: int) -> None:
        """Send the requests of pages `next_page` to `last_page` (page numbers) early, as room allows.

        For paginators that learn the page count from a response (`on_pages_known`), called
        while a page of the stream is being read.
        """
        ahead = self.fetch_ahead
        if ahead is None:
            return
        context = self._paging_context
        # Pages already sent are not prepared again: preparing is most of a request's cost here.
        for page in range(max(next_page, self._pages_sent_ahead_through + 1), last_page + 1):
            if not ahead.has_room(self.name):
                return
            request = self._prepared_request_for(PageContext(context, page))
            if ahead.submit(request, self._send_ahead(context), self.name):
                self._pages_sent_ahead_through = page

    #: Set by the parent stream: this stream's partitions in the order they will be synced.
    upcoming_partitions: t.Sequence[dict] = ()

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """A parent's records; with fetching ahead, its children learn their partitions first."""
        records = super().get_records(context)
        if self.fetch_ahead is None or not self.child_streams:
            return records
        listed = list(records)  # a parent is a listing: small
        partitions = [c for r in listed for c in self.generate_child_contexts(r, context) if c]
        for child in self.child_streams:
            child.upcoming_partitions = partitions
        return iter(listed)

    def preprocess_context(self, context: Context) -> Context:
        """At the start of each partition, send the first requests of the next ones."""
        context = super().preprocess_context(context)
        ahead = self.fetch_ahead
        partitions = list(self.upcoming_partitions)
        if ahead is not None and context in partitions:
            following = partitions[partitions.index(context) + 1 :]
            for partition in following:
                if not ahead.has_room(self.name):
                    break
                request_context = self.first_request_context(partition)
                if request_context is not None:
                    paginator = self.get_new_paginator()
                    token = paginator.current_value if paginator is not None else None
                    page = PageContext(request_context, token)
                    ahead.submit(self._prepared_request_for(page), self._send_ahead(request_context), self.name)
        return context

    def first_request_context(self, context: Context) -> Context | None:
        """The context of a partition's first request (its first window's), or None if unknown."""
        windows = self.partition_windows(context)
        first = next(iter(windows), None) if windows is not None else None
        return None if first is None else self.window_request_context(context, first)

    def partition_windows(self, context: Context) -> Iterable[DateWindow] | None:
        """Stream hook: the date windows a partition is read in (None: not windowed)."""
        return None

    def window_request_context(self, context: Context | None, window: DateWindow) -> Context:
        """Stream hook: the context `request_records` is given for one window."""
        raise NotImplementedError

    # --- date windows and bookmarks -----------------------------------------

    @property
    def sync_end(self) -> dt.datetime:
        """The end of the range this sync reads: `end_date`, or now (frozen per sync)."""
        if not hasattr(self, "_sync_end"):
            end_date = self.config.get("end_date")
            self._sync_end = parse_timestamp(end_date) if end_date else utc_now()
        return self._sync_end

    def sync_start(self, context: Context | None, lookback: dt.timedelta) -> dt.datetime:
        """Where this partition's read starts: its bookmark (less `lookback`) or `start_date`.

        Read from the state as the sync began, without creating entries in it, so
        it can also be asked of partitions whose turn has not come (to fetch ahead).
        """
        start = parse_timestamp(self.config["start_date"])
        bookmark = self.incoming_bookmark(context)
        if bookmark:
            start = max(start, parse_timestamp(bookmark) - lookback)
        return start

    def incoming_bookmark(self, context: Context | None) -> str | None:
        """The partition's bookmark in the state this sync started from, or None."""
        stream_state = self.tap_state.get("bookmarks", {}).get(self.name, {})
        partition = self.state_manager.get_state_partition_context(context) if context else None
        if partition:
            matches = [p for p in stream_state.get("partitions", []) if p.get("context") == partition]
            stream_state = matches[0] if matches else {}
        if stream_state.get("replication_key") != self.replication_key:
            return None
        return stream_state.get("replication_key_value")

    def records_by_window(
        self,
        context: Context | None,
        windows: Iterable[DateWindow],
        read_window: Callable[[DateWindow], Iterable[dict]],
    ) -> Iterator[dict]:
        """Yield each window's records, then move the bookmark and emit STATE.

        Records within a window may come in any order, so the bookmark only
        moves once a window is complete: an interrupted sync resumes at the
        start of the window it was in, and loses nothing.
        """
        windows = list(windows)
        key = self.replication_key
        for index, window in enumerate(windows):
            self._fetch_windows_ahead(context, windows[index + 1 :])
            newest: str | None = None
            for record in read_window(window):
                yield record
                value = record.get(key) if key else None
                if value is not None and (newest is None or value > newest):
                    newest = value
            if newest is not None:
                self.checkpoint(context, newest)

    def _fetch_windows_ahead(self, context: Context | None, upcoming: list[DateWindow]) -> None:
        """Send the first requests of the next windows early (streams with `window_request_context`)."""
        ahead = self.fetch_ahead
        if ahead is None or type(self).window_request_context is BaseAPIStream.window_request_context:
            return
        for window in upcoming:
            if not ahead.has_room(self.name):
                return
            request_context = self.window_request_context(context, window)
            paginator = self.get_new_paginator()
            token = paginator.current_value if paginator is not None else None
            page = PageContext(request_context, token)
            ahead.submit(self._prepared_request_for(page), self._send_ahead(request_context), self.name)

    def checkpoint(self, context: Context | None, value: str) -> None:
        """Move the bookmark forward to `value` (never past the sync's end) and emit STATE."""
        # Dates (`2024-05-01`) are capped by the end's date, timestamps by the end itself.
        end = self.sync_end.date().isoformat() if len(value) == len("2024-05-01") else to_utc_iso(self.sync_end)
        value = min(value, end)
        state = self.get_context_state(context)
        current = state.get("replication_key_value")
        if current is not None and current >= value:
            return
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value
        # Every record up to here has been written: the SDK writes each record
        # before asking the generator for the next one.
        self._tap.state_writer.write_state(self.tap_state)

    # --- output ---------------------------------------------------------------------------------

    @cached_property
    def _direct_record_plan(self) -> DirectRecordPlan | None:
        """How this stream's records may skip the SDK's per-record machinery, or None.

        Only when the result is the same: the buffered writer is in use, no stream map
        or flattening is configured, and every property is selected.
        """
        maps = self.stream_maps
        plain = (
            isinstance(self._tap.message_writer, BufferedSingerWriter)
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
            and all(self.mask.values())
        )
        return direct_record_plan(self.schema) if plain else None

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:  # noqa: ARG002
        """Numbers the API sent as text, read as the numbers the schema declares.

        Streams that override this call it too (`super().post_process(...)`).
        """
        for name in self._number_properties:
            if type(row.get(name)) is str:
                return numbers_from_text(row, self)
        return row

    @cached_property
    def _number_properties(self) -> tuple[str, ...]:
        """The top-level properties `numbers_from_text` reads (integer or number, never string).

        None of them for streams whose `parse_response` makes every number itself (`numbers_are_parsed`).
        """
        if self.numbers_are_parsed:
            return ()
        return tuple(name for name, _ in number_fields(self.schema))

    def _process_record(
        self,
        record: dict,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        # A stream without children only needs its partition keys on each record;
        # the SDK's path also builds (and copies) a child context per record.
        if self.child_streams:
            super()._process_record(record, child_context, partition_context)
            return
        for key, value in (partition_context or {}).items():
            if key not in record:
                record[key] = value

    def _write_record_message(self, record: dict) -> None:
        plan = self._direct_record_plan
        if plan is None or not plan.properties.issuperset(record):
            super()._write_record_message(record)  # the SDK's path drops unknown fields with a warning
            return
        for name in plan.boolean_properties:
            value = record.get(name)
            if value is not None and not isinstance(value, bool):
                record[name] = value != 0
        self._tap.message_writer.write_record(self.name, record, self._stream_version)  # a BufferedSingerWriter
        self.state_manager.is_flushed = False

    # --- the record loop ------------------------------------------------------------------------

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's record loop, or for plain streams a leaner one that writes the same messages.

        A deliberate exception to "override hooks, never loops" (issue 7): the SDK's loop costs
        about 1 µs a record in calls that do nothing for a plain stream, as much as the whole
        reference client spends on a record. `_plain_record_loop` says which streams qualify;
        every other stream, and `--test`, takes the SDK's own loop.
        """
        plan = self._direct_record_plan
        if not (write_messages and plan is not None and self._plain_record_loop):
            yield from super()._sync_records(context, write_messages=write_messages)
            return
        yield from self._sync_plain_records(context, plan)

    @property
    def _plain_record_loop(self) -> bool:
        """Whether the SDK's loop would do nothing per record beyond writing it and counting it.

        That is: the stream is selected, has no child streams to sync per record, has no
        record limit (`--test`), and does not move its bookmark per record (it has none, or
        moves it at window ends in `checkpoint`).
        """
        return (
            self.selected
            and not self.child_streams
            and self.ABORT_AT_RECORD_COUNT is None
            and (self.bookmark_at_window_ends or self.replication_method != "INCREMENTAL")
        )

    def _sync_plain_records(self, context: Context | None, plan: DirectRecordPlan) -> t.Iterator[dict]:
        """The SDK's `_sync_records` for a plain stream: the same messages, in the same order.

        Per partition: the starting replication value, then each record (post-processed, given
        its partition's keys, written before the next is read), a STATE every
        `STATE_MSG_FREQUENCY` records, and the partition's state finalized; then the stream's.
        Records are not yielded: the only caller, the SDK's `sync`, discards them.
        """
        record_counter = t.cast("RecordCounter", self.get_record_counter())
        timer = self.get_sync_timer()
        writer = t.cast("BufferedSingerWriter", self._tap.message_writer)
        write = writer.record_writer(self.name, self._stream_version)
        post_process, write_sdk_way = self.post_process, super()._write_record_message
        if type(self).post_process is BaseAPIStream.post_process and not self._number_properties:
            post_process = None  # it would return each record as it is
        properties, booleans = plan.properties, plan.boolean_properties
        state_every, count_every, written, stated = self.STATE_MSG_FREQUENCY, RecordCounter.CLOCK_EVERY, 0, 0
        next_stop = min(state_every, count_every)  # the next record count at which to count or write STATE
        with record_counter, timer:
            for partition in ([context] if context is not None else self.partitions) or [{}]:
                record_counter.with_context(partition)
                timer.with_context(partition)
                current = partition or None
                state_partition = self._get_state_partition_context(current)
                self._write_starting_replication_value(current)
                partition_keys = tuple((state_partition or {}).items())
                state_manager = self.state_manager
                counted = written
                try:
                    for raw in self.get_records(current):
                        record = raw if post_process is None else post_process(raw, current)
                        if record is None:
                            continue
                        for key, value in partition_keys:
                            if key not in record:
                                record[key] = value
                        # `_write_record_message`, inlined: a call a record is a fair part of its cost here.
                        if properties.issuperset(record):
                            for boolean in booleans:
                                value = record.get(boolean)
                                if value is not None and value.__class__ is not bool:
                                    record[boolean] = value != 0
                            write(record)
                        else:
                            write_sdk_way(record)  # drops the unknown fields, with the SDK's warning
                        written += 1
                        if written == next_stop:
                            if not written % count_every:
                                record_counter.add(written - counted)
                                counted = written
                            if not written % state_every:
                                state_manager.is_flushed = False
                                self._write_state_message()
                                stated = written
                            next_stop = min(
                                written + count_every - written % count_every,
                                written + state_every - written % state_every,
                            )
                finally:  # also when reading fails: what the SDK's loop would have left
                    record_counter.add(written - counted)
                    if written != stated:
                        state_manager.is_flushed = False  # records went out since the last STATE
                if current == state_partition:
                    self._finalize_state(self.get_context_state(current))
        if not context:
            self._finalize_state(self.stream_state)
        self._write_state_message()
        yield from ()

    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float = metrics.DEFAULT_LOG_INTERVAL
    ) -> metrics.Counter:
        """The SDK's record counter, looking at the clock once every `RecordCounter.CLOCK_EVERY` records."""
        tags: dict[str, t.Any] = {metrics.Tag.STREAM: self.name}
        if endpoint:
            tags[metrics.Tag.ENDPOINT] = endpoint
        return RecordCounter(metrics.Metric.RECORD_COUNT, tags, log_interval=log_interval)

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        # Windowed streams move the bookmark in `checkpoint` only; the SDK's
        # per-record bookmark would run ahead of records not yet read.
        if self.bookmark_at_window_ends:
            return
        super()._increment_stream_state(latest_record, context=context)

