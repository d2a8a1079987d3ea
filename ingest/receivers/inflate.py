"""Decompression with a hard cap on the output, so a small bomb cannot fill memory.

Never gzip.decompress(): it inflates everything before anyone can look at the size.
"""

import zlib

from .errors import DecodeError

GZIP_MAGIC = b"\x1f\x8b"


def _inflate_one(data: bytes | memoryview, wbits: int, room: int, what: str):
    inflater = zlib.decompressobj(wbits=wbits)
    try:
        # Asking for one byte more than allowed is how we learn the cap was exceeded.
        out = inflater.decompress(data, room + 1)
    except zlib.error as exc:
        raise DecodeError(f"corrupt {what} data") from exc
    if len(out) > room:
        raise DecodeError("decompressed size exceeds the limit")
    if not inflater.eof:
        raise DecodeError(f"truncated {what} data")
    return out, inflater.unused_data


def gunzip(data: bytes, limit: int) -> bytes:
    """gzip, including several members back to back (fluentd and concatenated batches send that)."""
    out = bytearray()
    rest: bytes = data
    while rest:
        if not rest.startswith(GZIP_MAGIC):
            raise DecodeError("data after the gzip stream is not gzip")
        chunk, rest = _inflate_one(rest, 16 + zlib.MAX_WBITS, limit - len(out), "gzip")
        out += chunk
    return bytes(out)


def inflate_zlib(data: bytes, limit: int) -> bytes:
    out, _ = _inflate_one(data, zlib.MAX_WBITS, limit, "zlib")
    return out


def looks_like_zlib(data: bytes) -> bool:
    # RFC 1950: deflate method 8 in the low nibble, header a multiple of 31.
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def decompress_detected(data: bytes, limit: int) -> bytes:
    """gzip, zlib or plain, told apart by the first bytes (GELF does not say which it used)."""
    if data.startswith(GZIP_MAGIC):
        return gunzip(data, limit)
    if looks_like_zlib(data):
        return inflate_zlib(data, limit)
    if len(data) > limit:
        raise DecodeError("message exceeds the size limit")
    return data
