"""Request limits, as pure ASGI middlewares: body size (413) and answer deadline (408/504).

Both answer in the error shape of :mod:`.errors`, whatever route was asked for. The third
limit, on how long a client may take to send its request headers (408), lives in the
HTTP protocol (:mod:`.protocol`): it must act before any ASGI app sees the request.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BodyTooLarge, send_error


class BodyLimitMiddleware:
    """Answer 413 for a body over ``max_bytes``: by its Content-Length before it is read,
    or, for a chunked body, as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes the app reads."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        message = f"request body over {limit} bytes (SERVING_MAX_BODY_BYTES)"
        for name, value in scope["headers"]:
            if name == b"content-length":
                if int(value) > limit:  # uvicorn has refused a non-numeric length already
                    # No "connection: close": uvicorn discards the unread body and keeps the
                    # connection (closing with unread data would reset it before the client
                    # reads this answer).
                    await send_error(send, 413, message)
                    return
                break
        received = 0
        tripped = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, tripped
            request = await receive()
            if request["type"] == "http.request":
                received += len(request.get("body", b""))
                if received > limit:
                    tripped = True
                    raise BodyTooLarge
            return request

        async def guarded_send(response: Message) -> None:
            nonlocal started
            if tripped:  # the app's own answer to BodyTooLarge (a 500) is dropped
                return
            if response["type"] == "http.response.start":
                started = True
            await send(response)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not tripped:
                raise
        if tripped and not started:
            await send_error(send, 413, message)


class RequestTimeoutMiddleware:
    """Answer when the app has not started its response within ``seconds``.

    408 when the deadline passed while the app was waiting for the request body (the
    client stalled), else 504 (the server was too slow). Work running on the event loop
    cannot be interrupted; that is why slow model calls and feature lookups run in a
    worker thread (the thread finishes, its result is dropped).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under a deadline; send 504 if nothing was sent by then."""
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False
        reading = False

        async def receive_marking_wait() -> Message:
            nonlocal reading
            reading = True
            message = await receive()  # a timeout cancels it here, leaving `reading` set
            reading = False
            return message

        async def send_marking_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive_marking_wait, send_marking_start)
        except TimeoutError:
            if started:
                raise
            if reading:
                message = f"request body not received within {self.seconds:g} s"
                await send_error(send, 408, message, [(b"connection", b"close")])
            else:
                await send_error(send, 504, f"request timed out after {self.seconds:g} s")
