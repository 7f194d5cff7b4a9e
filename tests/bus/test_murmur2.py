"""The embedded bus routes keys exactly as Kafka's default partitioner does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from materialabs.bus.murmur2 import murmur2, partition_for, to_positive

# From Apache Kafka's UtilsTest.testMurmur2 (Java's signed 32-bit results).
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS)
def test_matches_kafka_java_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@given(st.binary(max_size=64))
def test_agrees_with_kafka_python(key: bytes) -> None:
    assert to_positive(murmur2(key)) == kafka_python_murmur2(key) & 0x7FFFFFFF


@given(st.binary(min_size=1, max_size=40), st.integers(1, 64))
def test_partition_is_in_range_and_stable(key: bytes, partitions: int) -> None:
    first = partition_for(key, partitions)
    assert 0 <= first < partitions
    assert partition_for(key, partitions) == first
