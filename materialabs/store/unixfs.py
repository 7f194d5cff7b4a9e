"""dag-pb nodes carrying UnixFS file data: encode the way Kubo does, decode strictly.

dag-pb (``PBNode``): field 2 = repeated ``PBLink`` {1 Hash, 2 Name, 3 Tsize}, then
field 1 = Data. Kubo writes Links before Data and always writes the (empty) Name.
UnixFS ``Data`` (proto2): 1 Type, 2 Data, 3 filesize, 4 blocksizes (repeated, unpacked).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from materialabs.store.multiformats import Cid, InvalidCidError
from materialabs.store.protobuf import (
    LENGTH_DELIMITED,
    VARINT,
    ProtobufError,
    bytes_field,
    decode_varint,
    encode_varint,
    iter_fields,
    varint_field,
)

UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2
UNIXFS_TYPE_NAMES = {0: "raw", 1: "directory", 2: "file", 3: "metadata", 4: "symlink", 5: "hamt"}

_TYPE_FILE = varint_field(1, UNIXFS_FILE)
_EMPTY_NAME = bytes_field(2, b"")
_BLOCKSIZE_KEY = b"\x20"  # field 4, varint


@dataclass(frozen=True)
class PBLink:
    cid: bytes  # binary CID
    tsize: int  # bytes of the whole sub-DAG below this link, blocks included
    name: str = ""


@dataclass(frozen=True)
class PBNode:
    links: list[PBLink] = field(default_factory=list)
    data: bytes | None = None


@dataclass(frozen=True)
class UnixFSData:
    type: int
    data: bytes = b""
    filesize: int | None = None
    blocksizes: list[int] = field(default_factory=list)


def encode_file_data(filesize: int, blocksizes: list[int]) -> bytes:
    """UnixFS Data of an interior file node (no inline bytes)."""
    sizes = b"".join(_BLOCKSIZE_KEY + encode_varint(size) for size in blocksizes)
    return _TYPE_FILE + varint_field(3, filesize) + sizes


def encode_link(cid: bytes, tsize: int) -> bytes:
    return bytes_field(2, bytes_field(1, cid) + _EMPTY_NAME + varint_field(3, tsize))


def encode_file_node(links: list[tuple[bytes, int, int]]) -> bytes:
    """dag-pb bytes of a file node over ``(child CID bytes, child Tsize, child filesize)``."""
    encoded_links = b"".join(encode_link(cid, tsize) for cid, tsize, _ in links)
    data = encode_file_data(sum(size for _, _, size in links), [size for _, _, size in links])
    return encoded_links + bytes_field(1, data)


def encode_pb_node(node: PBNode) -> bytes:
    """General dag-pb encoding (canonical order: Links, then Data)."""
    out = bytearray()
    for link in node.links:
        body = (
            bytes_field(1, link.cid)
            + bytes_field(2, link.name.encode())
            + varint_field(3, link.tsize)
        )
        out += bytes_field(2, body)
    if node.data is not None:
        out += bytes_field(1, node.data)
    return bytes(out)


def encode_unixfs(data: UnixFSData) -> bytes:
    out = bytearray(varint_field(1, data.type))
    if data.data:
        out += bytes_field(2, data.data)
    if data.filesize is not None:
        out += varint_field(3, data.filesize)
    for size in data.blocksizes:
        out += _BLOCKSIZE_KEY + encode_varint(size)
    return bytes(out)


def _expect(wire_type: int, expected: int, what: str) -> None:
    if wire_type != expected:
        kind = "varint" if expected == VARINT else "bytes"
        raise ProtobufError(f"{what} has wire type {wire_type}; expected {kind}")


def decode_pb_link(raw: bytes) -> PBLink:
    cid: bytes | None = None
    name = ""
    tsize = 0
    for number, wire_type, value in iter_fields(raw):
        if number == 1:
            _expect(wire_type, LENGTH_DELIMITED, "PBLink.Hash")
            assert isinstance(value, bytes)
            cid = value
        elif number == 2:
            _expect(wire_type, LENGTH_DELIMITED, "PBLink.Name")
            assert isinstance(value, bytes)
            name = value.decode("utf-8", errors="replace")
        elif number == 3:
            _expect(wire_type, VARINT, "PBLink.Tsize")
            assert isinstance(value, int)
            tsize = value
        else:
            raise ProtobufError(f"PBLink has unknown field {number}")
    if cid is None:
        raise ProtobufError("PBLink has no Hash")
    try:
        Cid.from_bytes(cid)
    except InvalidCidError as error:
        raise ProtobufError(f"PBLink.Hash is not a CID: {error}") from None
    return PBLink(cid=cid, tsize=tsize, name=name)


def decode_pb_node(block: bytes | memoryview) -> PBNode:
    links: list[PBLink] = []
    data: bytes | None = None
    for number, wire_type, value in iter_fields(block):
        if number == 2:
            _expect(wire_type, LENGTH_DELIMITED, "PBNode.Links")
            assert isinstance(value, bytes)
            links.append(decode_pb_link(value))
        elif number == 1:
            _expect(wire_type, LENGTH_DELIMITED, "PBNode.Data")
            assert isinstance(value, bytes)
            data = value
        else:
            raise ProtobufError(f"PBNode has unknown field {number}")
    return PBNode(links=links, data=data)


def decode_unixfs(raw: bytes) -> UnixFSData:
    kind: int | None = None
    data = b""
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, wire_type, value in iter_fields(raw):
        if number == 1:
            _expect(wire_type, VARINT, "UnixFS.Type")
            assert isinstance(value, int)
            kind = value
        elif number == 2:
            _expect(wire_type, LENGTH_DELIMITED, "UnixFS.Data")
            assert isinstance(value, bytes)
            data = value
        elif number == 3:
            _expect(wire_type, VARINT, "UnixFS.filesize")
            assert isinstance(value, int)
            filesize = value
        elif number == 4:
            if wire_type == LENGTH_DELIMITED:  # packed encoding is legal protobuf too
                assert isinstance(value, bytes)
                blocksizes.extend(_decode_packed_varints(value))
            else:
                assert isinstance(value, int)
                blocksizes.append(value)
        # fields 5-8 (hashType, fanout, mode, mtime) do not change a file's bytes
    if kind is None:
        raise ProtobufError("UnixFS Data has no Type")
    return UnixFSData(type=kind, data=data, filesize=filesize, blocksizes=blocksizes)


def _decode_packed_varints(raw: bytes) -> list[int]:
    values = []
    pos = 0
    while pos < len(raw):
        value, pos = decode_varint(raw, pos)
        values.append(value)
    return values
