"""Request ids and the request's trace span, as one pure ASGI middleware.

Every HTTP request gets an id: the caller's ``X-Request-ID`` when it is printable ASCII of
at most 128 characters, a new 32-hex-digit id otherwise. It is echoed in the response's
``X-Request-ID`` and set in :data:`..telemetry.REQUEST_ID` for the request's log records.

When tracing is on (:func:`..telemetry.configure_tracing`), the request is a SERVER span
``METHOD /route`` (route template; a W3C ``traceparent`` from the caller is continued)
whose children are the handler's spans (``feature lookup``, ``model predict``); this
middleware makes it, not a generic ASGI instrumentation (which adds a span per
``receive`` and ``send``). When it is off, the middleware costs one header scan and one
counter-based id per request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import telemetry

REQUEST_ID_HEADER = telemetry.REQUEST_ID_HEADER.encode("latin-1")


class RequestContextMiddleware:
    """Sets the request id (in and out) and, when tracing is on, the request span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request with its id (and span)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        raw = next((value for key, value in headers if key == REQUEST_ID_HEADER), None)
        request_id = telemetry.request_id_from(raw)
        echoed = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = telemetry.REQUEST_ID.set(request_id)
        try:
            if not telemetry.tracing_enabled():
                await self.app(scope, receive, send_with_id)
                return
            method = scope["method"]
            attributes = {"http.request.method": method, "http.request.id": request_id}
            with telemetry.server_span(f"{method} {scope['path']}", headers, attributes) as span:
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    if span.is_recording():  # not when sampled out
                        route = getattr(scope.get("route"), "path", None)
                        if route is not None:
                            span.update_name(f"{method} {route}")
                            span.set_attributes(
                                {"http.route": route, "http.response.status_code": status}
                            )
                        else:
                            span.set_attribute("http.response.status_code", status)
        finally:
            telemetry.REQUEST_ID.reset(token)
