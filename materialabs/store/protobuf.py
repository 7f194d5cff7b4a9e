"""The few protobuf wire-format pieces dag-pb and UnixFS need, written by hand.

Only two wire types occur in those schemas: varint (0) and length-delimited (2).
Anything else in a block we read is a malformed block, not a format to support.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT = 0
LENGTH_DELIMITED = 2

_MAX_VARINT_BYTES = 10  # a uint64 never needs more


class ProtobufError(ValueError):
    """Bytes that are not the protobuf we expect; the message says where and why."""


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as protobuf (and multiformats) write it."""
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    if value < 0x80:  # the common case: one byte, no loop
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Read one varint at ``pos``; return (value, position after it)."""
    result = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise ProtobufError(f"varint at byte {pos} runs past the end ({len(buf)} bytes)")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if i > 0 and byte == 0:
                raise ProtobufError(f"varint at byte {pos} is not minimally encoded")
            return result, pos + i + 1
        shift += 7
    raise ProtobufError(f"varint at byte {pos} is longer than {_MAX_VARINT_BYTES} bytes")


def field_key(number: int, wire_type: int) -> bytes:
    return encode_varint((number << 3) | wire_type)


def varint_field(number: int, value: int) -> bytes:
    return field_key(number, VARINT) + encode_varint(value)


def bytes_field(number: int, value: bytes) -> bytes:
    return field_key(number, LENGTH_DELIMITED) + encode_varint(len(value)) + value


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field; bytes values are copies."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = decode_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"field number 0 at byte {pos} is not allowed")
        if wire_type == VARINT:
            value, pos = decode_varint(buf, pos)
            yield number, wire_type, value
        elif wire_type == LENGTH_DELIMITED:
            length, pos = decode_varint(buf, pos)
            if pos + length > end:
                raise ProtobufError(
                    f"field {number} claims {length} bytes at byte {pos}, "
                    f"but only {end - pos} remain"
                )
            yield number, wire_type, bytes(buf[pos : pos + length])
            pos += length
        else:
            raise ProtobufError(
                f"field {number} has wire type {wire_type}; expected 0 (varint) or 2 (bytes)"
            )
