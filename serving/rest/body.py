"""A request body's size limit and gzip decoding (the HTTP framing itself is httptools', in ``protocol``).

The limit is enforced before anything is buffered (a declared Content-Length over it is refused unread), while
a chunked body arrives, and again after gzip decoding, so neither a huge upload nor a small gzip bomb can exhaust memory. TF Serving's
libevent server decodes ``Content-Encoding: gzip`` bodies the same way (``auto_uncompress_input``).
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping

from serving.errors import InvalidArgument, ResourceExhausted


class PayloadTooLarge(ResourceExhausted):
    """A body over ``max_body_bytes``. REST answers 413 (not RESOURCE_EXHAUSTED's 429) and closes the connection."""

    @property
    def http_status(self) -> int:
        return 413


class BadFraming(InvalidArgument):
    """The body's framing cannot be trusted (bad Content-Length or chunk header): answer 400 and close."""


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The Content-Length header as an int (None when absent); a malformed value is a framing error."""
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        raise BadFraming(f"Invalid Content-Length header: {value!r}")
    return int(value)


def too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body of {size} bytes exceeds the limit of {limit} bytes")


def gunzip(data: bytes, limit: int) -> bytes:
    """Decode a gzip body (all members), refusing output over ``limit`` bytes and anything not gzip."""
    out = bytearray()
    while data:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += decoder.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidArgument(f"Failed to decompress the gzip request body: {exc}") from None
        if len(out) > limit or decoder.unconsumed_tail:
            raise PayloadTooLarge(f"Decompressed request body exceeds the limit of {limit} bytes")
        if not decoder.eof:
            raise InvalidArgument("Failed to decompress the gzip request body: truncated gzip stream")
        data = decoder.unused_data
    return bytes(out)


def decode_content(body: bytes, headers: Mapping[str, str], limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` (the only encoding TF Serving decodes); other bodies pass through."""
    if "gzip" in (headers.get("content-encoding") or "").lower():
        return gunzip(body, limit)
    return body
