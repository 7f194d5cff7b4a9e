"""Read a UnixFS file back block by block, re-hashing every block before its bytes leave.

Each block is checked against the CID its parent links it by, and the root against the
CID asked for, so the bytes yielded are exactly the bytes the root CID commits to (a
Merkle DAG): nothing corrupt is ever yielded, and the error names the root and the
block that failed. Works for any UnixFS file DAG (any chunker or layout), not only ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from materialabs.store.multiformats import (
    CODEC_DAG_PB,
    CODEC_NAMES,
    CODEC_RAW,
    HASH_NAMES,
    SHA2_256,
    Cid,
    parse_cid,
)
from materialabs.store.port import ContentError
from materialabs.store.protobuf import ProtobufError
from materialabs.store.unixfs import (
    UNIXFS_FILE,
    UNIXFS_RAW,
    UNIXFS_TYPE_NAMES,
    decode_pb_node,
    decode_unixfs,
)

BlockGetter = Callable[[Cid], bytes]

_MAX_DEPTH = 64  # far beyond any real file (174**8 chunks); guards against hostile DAGs


def verify_block(root: str, cid: Cid, block: bytes) -> None:
    """Raise ContentError unless ``block`` hashes to ``cid``'s digest."""
    if cid.hash_code != SHA2_256:
        name = HASH_NAMES.get(cid.hash_code, hex(cid.hash_code))
        raise ContentError(f"CID {root}: block {cid} uses hash {name}; only sha2-256 is supported")
    actual = hashlib.sha256(block).digest()
    if actual != cid.digest:
        where = "the root block" if str(cid) == root else f"block {cid}"
        raise ContentError(
            f"CID {root}: {where} is corrupt: its {len(block)} bytes hash to "
            f"sha2-256 {actual.hex()}, but the CID says {cid.digest.hex()}"
        )


def stream_verified(root: str, get_block: BlockGetter) -> Iterator[bytes]:
    """Yield the file's bytes for CID text ``root``, each block verified first."""
    root_cid = parse_cid(root)
    root_text = str(root_cid)
    yield from _walk(root_text, root_cid, get_block, depth=0)


def _walk(root: str, cid: Cid, get_block: BlockGetter, depth: int) -> Iterator[bytes]:
    if depth > _MAX_DEPTH:
        raise ContentError(f"CID {root}: DAG deeper than {_MAX_DEPTH} levels at block {cid}")
    block = get_block(cid)
    verify_block(root, cid, block)
    if cid.codec == CODEC_RAW:
        yield block
        return
    if cid.codec != CODEC_DAG_PB:
        codec = CODEC_NAMES.get(cid.codec, hex(cid.codec))
        raise ContentError(f"CID {root}: block {cid} has codec {codec}; expected raw or dag-pb")
    try:
        node = decode_pb_node(block)
        if node.data is None:
            raise ProtobufError("dag-pb node has no UnixFS Data")
        unixfs = decode_unixfs(node.data)
    except ProtobufError as error:
        raise ContentError(f"CID {root}: block {cid} is not a UnixFS node: {error}") from None
    if unixfs.type not in (UNIXFS_FILE, UNIXFS_RAW):
        kind = UNIXFS_TYPE_NAMES.get(unixfs.type, str(unixfs.type))
        raise ContentError(f"CID {root}: block {cid} is a UnixFS {kind}, not a file")
    if len(unixfs.blocksizes) != len(node.links):
        raise ContentError(
            f"CID {root}: block {cid} lists {len(unixfs.blocksizes)} block sizes "
            f"for {len(node.links)} links"
        )
    declared = len(unixfs.data) + sum(unixfs.blocksizes)
    if unixfs.filesize is not None and unixfs.filesize != declared:
        raise ContentError(
            f"CID {root}: block {cid} says filesize {unixfs.filesize}, "
            f"its parts add up to {declared}"
        )
    if unixfs.data:
        yield unixfs.data
    for link, expected_size in zip(node.links, unixfs.blocksizes, strict=True):
        child = Cid.from_bytes(link.cid)
        produced = 0
        for piece in _walk(root, child, get_block, depth + 1):
            produced += len(piece)
            yield piece
        if produced != expected_size:
            raise ContentError(
                f"CID {root}: block {child} holds {produced} bytes of file data, "
                f"its parent {cid} says {expected_size}"
            )
