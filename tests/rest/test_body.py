"""Size limits and gzip decoding of REST request bodies (serving.rest.body); the framing is tested over the wire
(tests/rest/test_http.py, the catalogue)."""
from __future__ import annotations

import gzip

import pytest

from serving.errors import InvalidArgument
from serving.rest.body import BadFraming, PayloadTooLarge, declared_length, decode_content, gunzip, too_large


def headers(**fields: str) -> dict[str, str]:
    """Header names as the HTTP layer hands them over: lower-case."""
    return {name.replace("_", "-").lower(): value for name, value in fields.items()}


def test_declared_length_is_read_and_absent_means_none() -> None:
    assert declared_length(headers(Content_Length=" 7 ")) == 7
    assert declared_length(headers()) is None


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "12 13"])
def test_malformed_content_length_is_a_framing_error(value: str) -> None:
    with pytest.raises(BadFraming) as info:
        declared_length(headers(Content_Length=value))
    assert info.value.http_status == 400


def test_too_large_is_413_with_both_sizes() -> None:
    error = too_large(50, 10)
    assert isinstance(error, PayloadTooLarge) and error.http_status == 413
    assert error.message == "Request body of 50 bytes exceeds the limit of 10 bytes"


def test_gzip_round_trip_and_multi_member() -> None:
    assert gunzip(gzip.compress(b"hello"), 100) == b"hello"
    assert gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 100) == b"abcd"
    assert gunzip(b"", 100) == b""


def test_gzip_bomb_is_stopped_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (10 << 20))  # ~10 KiB compressed, 10 MiB decoded
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooLarge) as info:
        gunzip(bomb, 1 << 20)
    assert info.value.http_status == 413
    assert gunzip(gzip.compress(b"x" * 100), 100) == b"x" * 100  # exactly at the limit is fine


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(b"hello world", mtime=0)[:-6]],
                         ids=["garbage", "truncated"])
def test_garbage_or_truncated_gzip_is_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidArgument) as info:
        gunzip(data, 100)
    assert info.value.http_status == 400
    assert info.value.message.startswith("Failed to decompress the gzip request body")


def test_only_gzip_content_encoding_is_decoded() -> None:
    packed = gzip.compress(b"{}")
    assert decode_content(packed, headers(Content_Encoding="gzip"), 100) == b"{}"
    assert decode_content(packed, headers(Content_Encoding="br"), 100) == packed
    assert decode_content(b"{}", headers(), 100) == b"{}"
