"""A cap on the size of any request's body, in front of Gradio's routes.

Gradio caps each uploaded file (`max_file_size`), but reads any JSON body whole: a 50 MB label would be parsed
before a component refuses it. This ASGI middleware refuses a body over `max_bytes` with 413 before the app reads
it (by its Content-Length), or as soon as a body sent without one grows past it.
"""
from __future__ import annotations

import json


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app, *, max_bytes: int):
        if max_bytes < 1:
            raise ValueError(f"max_bytes={max_bytes!r} must be at least 1")
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._refuse(send)
        received, started = 0, False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send):
        body = json.dumps({"detail": f"The request is too large: at most {self.max_bytes:,} bytes are accepted"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body.encode()})
