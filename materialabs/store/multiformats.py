"""CIDs as text and bytes: multibase, multicodec and multihash, just the parts we use.

A CIDv1 is ``varint(1) varint(codec) varint(hash code) varint(digest length) digest``,
written as text with a one-character multibase prefix; Kubo prints base32 (``b``).
A CIDv0 (``Qm...``) is a bare sha2-256 multihash in base58btc and always means dag-pb.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from materialabs.store.port import ContentError
from materialabs.store.protobuf import ProtobufError, decode_varint, encode_varint

CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
SHA2_256 = 0x12
SHA2_256_LENGTH = 32

CODEC_NAMES = {CODEC_RAW: "raw", CODEC_DAG_PB: "dag-pb"}
HASH_NAMES = {SHA2_256: "sha2-256"}

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: i for i, char in enumerate(_BASE58_ALPHABET)}


class InvalidCidError(ContentError, ValueError):
    """Text or bytes that are not a CID we can read; the message says what was expected.

    A ContentError too, so code that guards store reads with ``except ContentError``
    (an auditor walking ledger entries) treats a malformed CID as a failed check.
    """


def base32_encode(data: bytes) -> str:
    """RFC 4648 base32, lower case, no padding (multibase ``b``)."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def base32_decode(text: str) -> bytes:
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        data = base64.b32decode(padded)
    except (binascii.Error, ValueError) as error:
        raise InvalidCidError(f"not valid base32 ({error})") from None
    if base32_encode(data) != text.lower():  # leftover bits or an impossible length
        raise InvalidCidError("not canonical base32 (wrong length or trailing bits)")
    return data


def base58btc_encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_BASE58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def base58btc_decode(text: str) -> bytes:
    number = 0
    for position, char in enumerate(text):
        if char not in _BASE58_INDEX:
            raise InvalidCidError(f"character {char!r} at {position} is not base58btc")
        number = number * 58 + _BASE58_INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


@dataclass(frozen=True)
class Cid:
    version: int
    codec: int
    hash_code: int
    digest: bytes

    @property
    def multihash(self) -> bytes:
        return encode_varint(self.hash_code) + encode_varint(len(self.digest)) + self.digest

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return base58btc_encode(self.multihash)
        return "b" + base32_encode(self.to_bytes())

    def describe(self) -> str:
        codec = CODEC_NAMES.get(self.codec, hex(self.codec))
        hash_name = HASH_NAMES.get(self.hash_code, hex(self.hash_code))
        return f"CIDv{self.version} {codec} {hash_name} {self.digest.hex()}"

    @classmethod
    def from_bytes(cls, raw: bytes) -> Cid:
        """Binary CID as found in dag-pb links: CIDv0 multihash or CIDv1."""
        try:
            if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == SHA2_256_LENGTH:
                return cls(0, CODEC_DAG_PB, SHA2_256, bytes(raw[2:]))
            version, pos = decode_varint(raw, 0)
            if version != 1:
                raise InvalidCidError(f"CID version {version}; expected 1 (or a CIDv0 multihash)")
            codec, pos = decode_varint(raw, pos)
            hash_code, pos = decode_varint(raw, pos)
            length, pos = decode_varint(raw, pos)
        except ProtobufError as error:
            raise InvalidCidError(f"truncated CID bytes ({error})") from None
        digest = bytes(raw[pos:])
        if len(digest) != length:
            raise InvalidCidError(f"multihash says {length} digest bytes, but {len(digest)} follow")
        if hash_code == SHA2_256 and length != SHA2_256_LENGTH:
            raise InvalidCidError(f"a sha2-256 digest is 32 bytes, this one is {length}")
        return cls(1, codec, hash_code, digest)


def parse_cid(text: str) -> Cid:
    """Read a CID from text (CIDv1 in base32/base58btc, or CIDv0 ``Qm...``).

    Raises InvalidCidError naming the text and what was wrong with it.
    """
    if not isinstance(text, str):
        raise InvalidCidError(f"a CID is text, got {type(text).__name__}")
    stripped = text.strip()
    try:
        if not stripped:
            raise InvalidCidError("empty")
        if len(stripped) == 46 and stripped.startswith("Qm"):
            raw = base58btc_decode(stripped)
            if not (len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == SHA2_256_LENGTH):
                raise InvalidCidError("a CIDv0 must be a 34-byte sha2-256 multihash")
            return Cid.from_bytes(raw)
        prefix, body = stripped[0], stripped[1:]
        if prefix in "bB":
            raw = base32_decode(body)
        elif prefix == "z":
            raw = base58btc_decode(body)
        else:
            raise InvalidCidError(
                f"multibase prefix {prefix!r} is not supported; expected 'b' (base32, "
                "what `ipfs add --cid-version=1` prints), 'z' (base58btc) or a CIDv0 'Qm...'"
            )
        if raw[:1] == bytes((SHA2_256,)):
            raise InvalidCidError("a CIDv0 cannot carry a multibase prefix")
        return Cid.from_bytes(raw)
    except InvalidCidError as error:
        raise InvalidCidError(f"malformed CID {text!r}: {error}") from None
