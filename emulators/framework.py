"""What every vendor emulator shares: requests, responses, injected faults, a loopback HTTP server.

An emulator is an `EmulatorApp` subclass that turns a `Request` into a `Response`. The framework
adds what tests and benchmarks need around it, with no vendor knowledge: a request log, faults
that break the next matching requests the ways real networks and gateways do, a fixed added
latency, and control endpoints under `/_emulator/` so a test can drive an emulator running in
another process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import ipaddress
import json
import re
import socket
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

CONTROL_PREFIX = "/_emulator/"
"""Paths under this prefix drive the emulator itself: never logged, never faulted."""

FAULT_KINDS = frozenset({"status", "slow", "drop", "malformed", "empty", "transform"})

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Request:
    """One HTTP request as an emulator sees it.

    `headers` holds lower-cased names, so `header()` is case-insensitive like HTTP itself.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_path: str
    body: bytes = b""

    @classmethod
    def build(
        cls, method: str, raw_path: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> Request:
        """Split the request target into a percent-decoded path and its query parameters."""
        target = urlsplit(raw_path)
        return cls(
            method=method.upper(),
            path=unquote(target.path),
            query=parse_qs(target.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers},
            raw_path=raw_path,
            body=body,
        )

    def header(self, name: str, default: str | None = None) -> str | None:
        """Value of the header `name`, whatever its case, or `default` when absent."""
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    """Status, body and headers; the server adds Content-Length itself, so apps never set it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Set by an app when the request asked for a page after the last one: a request a client
    #: could have avoided. Never sent; `GET /_emulator/stats` counts them (`pages_past_last`).
    past_last_page: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """Compact JSON (no spaces), as API gateways send it and as byte-exact tests expect it."""
        body = json.dumps(obj, separators=(",", ":")).encode()
        return cls.raw(body, status, JSON_CONTENT_TYPE, headers)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> Response:
        """A UTF-8 text body."""
        return cls.raw(text.encode(), status, content_type, headers)

    @classmethod
    def raw(
        cls,
        body: bytes,
        status: int = 200,
        content_type: str = JSON_CONTENT_TYPE,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Bytes sent as they are: for vendor bodies that are not valid JSON but claim to be."""
        return cls(status, body, {"Content-Type": content_type, **(headers or {})})


@dataclass
class Fault:
    """A failure to inflict on the next `times` requests whose path matches `path_regex`.

    Kinds: "status" answers `status` (with `retry_after`, `headers` and `body` if given) instead of
    the app, so a 302 with a `Location` header is a redirect; "slow" waits `delay` seconds, then
    answers normally; "drop" announces the full body length, sends half the body and closes the
    connection; "malformed" answers 200 with the first half of the body; "empty" answers 200 with
    no body at all; "transform" passes the app's JSON body through `transform` (a function of the
    decoded body that returns the body to send), for schema drift: fields added, removed, nulled
    or retyped. A transform is Python code, so it can be injected in-process only, not through
    the control endpoint.
    """

    kind: str
    status: int = 500
    retry_after: str | None = None
    body: str | None = None
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] | None = None
    delay: float = 0.0
    times: int = 1
    path_regex: str = ""
    transform: Callable[[Any], Any] | None = field(default=None, compare=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    #: Fields that cannot come from JSON (the control endpoint).
    IN_PROCESS_ONLY: ClassVar[frozenset[str]] = frozenset({"transform"})

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {sorted(FAULT_KINDS)}")
        if (self.kind == "transform") != (self.transform is not None):
            raise ValueError('a "transform" fault needs a transform function, and only it takes one')
        if self.headers is not None and not (
            isinstance(self.headers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items())
        ):
            raise ValueError("fault headers must map header names to text values")
        if not 100 <= self.status <= 599:
            raise ValueError(f"fault status {self.status} is not an HTTP status")
        if self.delay < 0:
            raise ValueError("fault delay must not be negative")
        if self.retry_after is not None:
            # JSON callers naturally send seconds as a number; the header is text either way.
            self.retry_after = str(self.retry_after)
        try:
            self._pattern = re.compile(self.path_regex)
        except re.error as exc:
            raise ValueError(f"fault path_regex {self.path_regex!r}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Any) -> Fault:
        """Build a fault from decoded JSON, naming the offending field on bad input."""
        if not isinstance(data, dict):
            raise ValueError(f"a fault must be a JSON object, not {type(data).__name__}")
        allowed = {f.name for f in dataclasses.fields(cls) if f.init} - cls.IN_PROCESS_ONLY
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        try:
            return cls(**data)
        except TypeError as exc:  # a missing `kind`, or a value of the wrong type
            raise ValueError(str(exc)) from exc

    def matches(self, path: str) -> bool:
        """Whether this fault applies to a request for `path`."""
        return self._pattern.search(path) is not None

    def status_response(self) -> Response:
        """The response of a "status" fault: a JSON message unless a body was given."""
        headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
        headers.update(self.headers or {})
        if self.body is None:
            message = http.client.responses.get(self.status, "Injected fault")
            return Response.json({"message": message}, self.status, headers)
        return Response.raw(self.body.encode(), self.status, self.content_type, headers)


class Delivery(NamedTuple):
    """A response plus how to send it: `drop_after` bytes of body, then cut the connection."""

    response: Response
    drop_after: int | None = None


class EmulatorApp(ABC):
    """Base of every vendor emulator: subclasses implement `handle`, the framework the rest.

    All bookkeeping is guarded by one lock because the server answers each connection in its own
    thread.
    """

    def __init__(self, *, seed: int = 0, latency: float = 0.0) -> None:
        if latency < 0:
            raise ValueError("latency must not be negative")
        self.seed = seed
        self.latency = latency
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._faults: list[Fault] = []
        self._pages_past_last = 0
        self._memo: dict[tuple[Any, ...], Response] | None = None

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one request as the vendor's API would."""

    # Bookkeeping -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """A copy of the recorded requests, in arrival order (control endpoints excluded)."""
        with self._lock:
            return list(self._requests)

    def request_count(self, path_regex: str = "") -> int:
        """How many recorded requests have a path matching `path_regex` (all when empty)."""
        pattern = re.compile(path_regex)
        return sum(1 for request in self.requests if pattern.search(request.path))

    def reset_requests(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._requests.clear()

    def inject(self, fault: Fault) -> None:
        """Queue `fault`; a copy is kept so the caller's object never changes under it."""
        self.inject_many([fault])

    def inject_many(self, faults: Iterable[Fault]) -> None:
        """Queue several faults, in order."""
        copies = [dataclasses.replace(fault) for fault in faults]
        with self._lock:
            self._faults.extend(fault for fault in copies if fault.times > 0)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many faults are still queued."""
        with self._lock:
            return len(self._faults)

    # Serving -----------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Delivery:
        """Answer control endpoints directly, anything else through faults, latency and `handle`."""
        if request.path.startswith(CONTROL_PREFIX):
            return Delivery(self._control(request))
        fault = self._admit(request)
        if self.latency:
            time.sleep(self.latency)
        if fault is None:
            return Delivery(self._answer(request))
        if fault.kind == "status":
            return Delivery(fault.status_response())
        if fault.kind == "slow":
            time.sleep(fault.delay)
        response = self._answer(request)
        half = len(response.body) // 2
        if fault.kind == "drop":
            return Delivery(response, drop_after=half)
        if fault.kind == "malformed":
            return Delivery(Response(200, response.body[:half], response.headers))
        if fault.kind == "empty":
            return Delivery(Response(200, b"", response.headers))
        if fault.kind == "transform":
            return Delivery(self._transformed(response, fault))
        return Delivery(response)

    @staticmethod
    def _transformed(response: Response, fault: Fault) -> Response:
        """The app's answer with its JSON body passed through the fault's transform.

        Answers that are not JSON (an error page, a CSV report) go out unchanged.
        """
        assert fault.transform is not None  # checked when the fault was made
        try:
            decoded = json.loads(response.body)
        except ValueError:
            return response
        changed = fault.transform(decoded)
        return Response.json(changed, response.status, {**response.headers})

    def _admit(self, request: Request) -> Fault | None:
        """Record `request` and take one use of the oldest fault matching it, atomically."""
        with self._lock:
            self._requests.append(request)
            for index, fault in enumerate(self._faults):
                if fault.matches(request.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[index]
                    return fault
        return None

    def memoize(self, enabled: bool = True) -> None:
        """Answer a request seen before from memory (or stop, and forget the answers).

        For benchmarks: with the answers computed once, a client's timing measures the client and
        the loopback, not the emulator. Only for data that does not change while it is on.
        """
        with self._lock:
            self._memo = {} if enabled else None

    @property
    def pages_past_last(self) -> int:
        """How many answered requests asked for a page after the last one."""
        with self._lock:
            return self._pages_past_last

    def _answer(self, request: Request) -> Response:
        """The app's answer (remembered when memoizing), counting pages asked past the last one."""
        memo = self._memo
        if memo is None:
            response = self._handle_safely(request)
        else:
            key = _memo_key(request)
            if key not in memo:
                memo[key] = self._handle_safely(request)
            response = memo[key]
        if response.past_last_page:
            with self._lock:
                self._pages_past_last += 1
        return response

    def _handle_safely(self, request: Request) -> Response:
        """Run `handle`; a bug becomes a 500 the client can see, plus a traceback on stderr."""
        try:
            return self.handle(request)
        except Exception as exc:  # any emulator bug must still produce a response
            traceback.print_exc(file=sys.stderr)
            return Response.json(
                {"message": "Internal Server Error", "error": f"{type(exc).__name__}: {exc}"}, 500
            )

    # Control endpoints -------------------------------------------------------------------------

    _CONTROL_ROUTES: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", CONTROL_PREFIX + "stats"): "_control_stats",
        ("POST", CONTROL_PREFIX + "reset"): "_control_reset",
        ("POST", CONTROL_PREFIX + "faults"): "_control_faults",
        ("POST", CONTROL_PREFIX + "memoize"): "_control_memoize",
    }

    def _control(self, request: Request) -> Response:
        route = self._CONTROL_ROUTES.get((request.method, request.path))
        if route is None:
            known = [f"{method} {path}" for method, path in self._CONTROL_ROUTES]
            return Response.json({"error": "unknown control endpoint", "known": known}, 404)
        handler: Callable[[Request], Response] = getattr(self, route)
        return handler(request)

    def _control_stats(self, request: Request) -> Response:
        recorded = self.requests
        by_path = Counter(recorded_request.path for recorded_request in recorded)
        stats = {
            "requests": len(recorded),
            "by_path": dict(by_path),
            "pending_faults": self.pending_faults,
            "pages_past_last": self.pages_past_last,
        }
        return Response.json(stats)

    def _control_reset(self, request: Request) -> Response:
        self.reset_requests()
        self.clear_faults()
        with self._lock:
            self._pages_past_last = 0
        return Response.json({"reset": True})

    def _control_memoize(self, request: Request) -> Response:
        """`{"enabled": true}` turns memoizing on, `false` off (see `memoize`)."""
        try:
            enabled = json.loads(request.body or b"{}").get("enabled", True)
        except (ValueError, AttributeError):
            return Response.json({"error": 'expected a JSON object such as {"enabled": true}'}, 400)
        self.memoize(bool(enabled))
        return Response.json({"memoize": bool(enabled)})

    def _control_faults(self, request: Request) -> Response:
        try:
            decoded = json.loads(request.body or b"null")
            items = decoded if isinstance(decoded, list) else [decoded]
            faults = [Fault.from_dict(item) for item in items]  # all valid, or none injected
        except ValueError as exc:
            return Response.json({"error": f"bad fault: {exc}"}, 400)
        self.inject_many(faults)
        return Response.json({"injected": len(faults), "pending_faults": self.pending_faults})


_CLIENT_HEADERS = frozenset({"accept", "accept-encoding", "connection", "content-length", "host", "user-agent"})
"""Headers that name the client or the transport, not the question: left out of memo keys."""


def _memo_key(request: Request) -> tuple[Any, ...]:
    """What makes two requests the same question: method, target, body and the other headers."""
    headers = tuple(sorted((n, v) for n, v in request.headers.items() if n not in _CLIENT_HEADERS))
    return request.method, request.raw_path, request.body, headers


# HTTP server ------------------------------------------------------------------------------------


def require_loopback(host: str) -> str:
    """Return `host` if it is an IPv4 loopback address (or "localhost"); raise ValueError if not.

    Emulators hold fake credentials and answer anyone, so they never listen beyond this machine.
    """
    address = "127.0.0.1" if host == "localhost" else host
    try:
        is_loopback = ipaddress.IPv4Address(address).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise ValueError(f"emulators listen on IPv4 loopback only (e.g. 127.0.0.1), not {host!r}")
    return address


class _EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading server that knows its app and its open connections, so `stop` can end them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: EmulatorApp) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _EmulatorRequestHandler)

    def close_connections(self) -> None:
        """Wake every handler thread blocked on an idle keep-alive connection, so it ends."""
        with self.connections_lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (routine for retry tests); report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Reads a request, lets the app answer, writes the answer with Content-Length always set."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the taps' requests.Session expects
    disable_nagle_algorithm = True  # else ~40 ms stall per keep-alive request (Nagle + delayed ACK)
    server: _EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; benchmarks send thousands of requests."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_GET
    do_HEAD = do_GET

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(Delivery(Response.json({"error": "bad Content-Length"}, 400)))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length > 0 else b""
        request = Request.build(self.command, self.path, self.headers.items(), body)
        self._send(self.server.app.dispatch(request))

    def _send(self, delivery: Delivery) -> None:
        response = delivery.response
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if delivery.drop_after is None:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: delivery.drop_after])
        self.close_connection = True  # the client is still owed the rest of the body


class EmulatorServer:
    """Serves one `EmulatorApp` over HTTP/1.1 on loopback, from a background thread.

    The socket is bound on construction, so `url` is known (port 0 picks a free port) before
    `start()`. Use it as a context manager to be sure the socket and threads are released.
    """

    def __init__(self, app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._host = require_loopback(host)
        self._httpd = _EmulatorHTTPServer((self._host, port), app)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        """Base URL, e.g. "http://127.0.0.1:8101"."""
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The port actually bound (useful after asking for port 0)."""
        return int(self._httpd.server_address[1])

    def start(self) -> EmulatorServer:
        """Start answering in a daemon thread; returns self, for `EmulatorServer(app).start()`."""
        if self._stopped:
            raise RuntimeError("a stopped EmulatorServer cannot be restarted")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                # `stop` waits up to one interval for the loop to notice; tests stop hundreds.
                kwargs={"poll_interval": 0.01},
                name=f"emulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end open connections and close the socket; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
