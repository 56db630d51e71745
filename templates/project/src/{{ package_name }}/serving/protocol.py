"""uvicorn's HTTP protocol with a deadline for the request headers (slowloris guard).

uvicorn times out idle keep-alive connections but not a client that opens a connection
and then sends its headers a byte at a time, or never finishes them: such a client holds
a connection (and a file descriptor) open indefinitely. :class:`HeaderTimeoutProtocol`
gives every request ``SERVING_HEADER_TIMEOUT`` seconds (default 5) from its connection
or its first byte to the end of its headers; past that a client that sent part of a
request gets ``408`` in the error shape, a silent one is disconnected. Reading the body
is bounded by ``SERVING_REQUEST_TIMEOUT`` (504, see :mod:`.limits`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import error_body

DEFAULT_HEADER_TIMEOUT = 5.0
HEADER_TIMEOUT_ENV = "SERVING_HEADER_TIMEOUT"


def header_timeout() -> float:
    """``SERVING_HEADER_TIMEOUT`` in seconds (default 5; 0 disables the deadline)."""
    raw = os.environ.get(HEADER_TIMEOUT_ENV)
    return float(raw) if raw else DEFAULT_HEADER_TIMEOUT


def _timeout_answer(seconds: float) -> bytes:
    body = error_body(f"request headers not received within {seconds:g} s")
    head = (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return head + body


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes connections whose request headers do not arrive in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_seconds = header_timeout()
        self._header_deadline: asyncio.TimerHandle | None = None
        self._request_begun = False

    def _arm_header_deadline(self) -> None:
        if self._header_seconds > 0 and self._header_deadline is None:
            self._header_deadline = self.loop.call_later(
                self._header_seconds, self._headers_timed_out
            )

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock: the first request's headers are due within the deadline."""
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A request's first byte arrived (keep-alive: the next request's): its headers are due."""
        super().on_message_begin()
        self._request_begun = True
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        """Headers complete: the deadline is met; the body is the app's (504) concern."""
        self._cancel_header_deadline()
        self._request_begun = False
        super().on_headers_complete()

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request is waiting behind one still being answered: wait for it.
            self._arm_header_deadline()
            return
        if self._request_begun:
            self.transport.write(_timeout_answer(self._header_seconds))
        self.transport.close()
