"""uvicorn's h11 HTTP/1.1 protocol with a deadline on each request head (a slowloris guard).

uvicorn (0.55, h11 and httptools alike) has a keep-alive timeout, armed only after a response,
and re-armed by every byte: a client that opens a connection and sends nothing, or sends its
request line and headers one byte a second, holds the connection (and a file descriptor)
forever. Here every request head must be complete within `header_timeout_s` of its first byte
(for the first request, of the connection being accepted); otherwise the server answers
408 when part of a head arrived, and closes. Bodies have their own limit in the app
(`Limits.body_timeout_s`), responses and idle keep-alive connections keep uvicorn's.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("graphopt.serve")

REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 34\r\nconnection: close\r\n\r\nrequest head not received in time\n")


class HeadDeadlineProtocol(H11Protocol):
    """H11Protocol + a timer from the start of each request head to its end (see module doc)."""

    header_timeout_s: float = 10.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in (or the connection is done)
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        partial = len(self.conn.trailing_data[0])
        if partial:
            self.transport.write(REQUEST_TIMEOUT)
        log.info("closed %s: request head not complete within %g s (%d bytes received)",
                 "%s:%d" % self.client if self.client else "a connection", self.header_timeout_s, partial)
        self.transport.close()


def head_deadline_protocol(header_timeout_s: float) -> type[HeadDeadlineProtocol]:
    """The protocol class to give uvicorn.Config(http=...): heads must arrive within the limit."""
    if not header_timeout_s > 0:
        raise ValueError(f"header timeout must be positive, got {header_timeout_s:g}")
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"header_timeout_s": float(header_timeout_s)})
