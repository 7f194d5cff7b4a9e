"""Property tests of the hand-written protobuf, dag-pb and UnixFS codecs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from materialabs.store.multiformats import CODEC_RAW, SHA2_256, Cid
from materialabs.store.protobuf import (
    ProtobufError,
    bytes_field,
    decode_varint,
    encode_varint,
    iter_fields,
    varint_field,
)
from materialabs.store.unixfs import (
    UNIXFS_FILE,
    PBLink,
    PBNode,
    UnixFSData,
    decode_pb_node,
    decode_unixfs,
    encode_file_node,
    encode_pb_node,
    encode_unixfs,
)

uint64 = st.integers(min_value=0, max_value=2**64 - 1)
digests = st.binary(min_size=32, max_size=32)


@given(uint64)
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(encoded) == (value, len(encoded))
    assert len(encoded) == max(1, (value.bit_length() + 6) // 7)
    assert all(byte & 0x80 for byte in encoded[:-1]) and encoded[-1] < 0x80


@given(uint64, st.binary(max_size=8))
def test_varint_decodes_at_offset_and_ignores_what_follows(value: int, tail: bytes) -> None:
    prefix = b"\x05\x06"
    buf = prefix + encode_varint(value) + tail
    assert decode_varint(buf, len(prefix)) == (value, len(buf) - len(tail))


def test_varint_rejects_truncated_overlong_and_negative() -> None:
    with pytest.raises(ProtobufError, match="runs past the end"):
        decode_varint(b"\x80\x80")
    with pytest.raises(ProtobufError, match="minimally"):
        decode_varint(b"\x81\x00")
    with pytest.raises(ProtobufError, match="longer than"):
        decode_varint(b"\xff" * 11)
    with pytest.raises(ValueError):
        encode_varint(-1)


fields = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=2**29 - 1),
        st.one_of(uint64, st.binary(max_size=300)),
    ),
    max_size=20,
)


@given(fields)
def test_fields_round_trip(values: list[tuple[int, int | bytes]]) -> None:
    encoded = b"".join(
        varint_field(n, v) if isinstance(v, int) else bytes_field(n, v) for n, v in values
    )
    decoded = [(n, v) for n, _, v in iter_fields(encoded)]
    assert decoded == values


@given(st.binary(min_size=1, max_size=64))
def test_length_field_past_the_end_is_an_error(payload: bytes) -> None:
    encoded = bytes_field(1, payload)[:-1]
    with pytest.raises(ProtobufError, match="claims"):
        list(iter_fields(encoded))


def test_unknown_wire_type_is_an_error() -> None:
    with pytest.raises(ProtobufError, match="wire type 5"):
        list(iter_fields(b"\x0d\x00\x00\x00\x00"))


raw_cids = digests.map(lambda d: Cid(1, CODEC_RAW, SHA2_256, d).to_bytes())


@given(
    st.lists(
        st.builds(
            PBLink,
            cid=raw_cids,
            tsize=uint64,
            name=st.text(max_size=20),
        ),
        max_size=10,
    ),
    st.one_of(st.none(), st.binary(max_size=200)),
)
def test_pb_node_round_trip(links: list[PBLink], data: bytes | None) -> None:
    node = PBNode(links=links, data=data)
    assert decode_pb_node(encode_pb_node(node)) == node


@given(
    st.builds(
        UnixFSData,
        type=st.integers(min_value=0, max_value=5),
        data=st.binary(max_size=100),
        filesize=st.one_of(st.none(), uint64),
        blocksizes=st.lists(uint64, max_size=20),
    )
)
def test_unixfs_round_trip(data: UnixFSData) -> None:
    assert decode_unixfs(encode_unixfs(data)) == data


@given(st.lists(st.tuples(raw_cids, uint64, uint64), min_size=1, max_size=174))
def test_file_node_fast_encoder_matches_general_encoder(
    links: list[tuple[bytes, int, int]],
) -> None:
    """The importer's specialised encoder writes what the general codec would."""
    sizes = [size for _, _, size in links]
    general = encode_pb_node(
        PBNode(
            links=[PBLink(cid=cid, tsize=tsize) for cid, tsize, _ in links],
            data=encode_unixfs(UnixFSData(type=UNIXFS_FILE, filesize=sum(sizes), blocksizes=sizes)),
        )
    )
    assert encode_file_node(links) == general
    decoded = decode_unixfs(decode_pb_node(general).data or b"")
    assert decoded.blocksizes == sizes and decoded.filesize == sum(sizes)


def test_packed_blocksizes_are_read_too() -> None:
    packed = varint_field(1, UNIXFS_FILE) + bytes_field(4, encode_varint(5) + encode_varint(300))
    assert decode_unixfs(packed).blocksizes == [5, 300]
