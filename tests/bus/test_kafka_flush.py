"""A flush that fails inside confluent-kafka without saying why (a SystemError with no
cause, seen in CI when a fenced producer's purge raced its flush) still ends as a BusError
the runtime handles: Fenced when the producer was fenced, never a bare SystemError."""
from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from materialabs.bus.kafka import Fenced, _KafkaProducer
from materialabs.bus.port import BusError


class _BrokenProducer:
    """Just the calls flush makes, failing the way confluent-kafka 2.16 did."""

    def __init__(self, abort_error: KafkaError | None) -> None:
        self.abort_error = abort_error
        self.aborted = 0

    def flush(self, timeout: float) -> int:
        raise SystemError("<method 'flush' of 'cimpl.Producer' objects> returned NULL "
                          "without setting an exception")

    def abort_transaction(self, timeout: float) -> None:
        self.aborted += 1
        if self.abort_error is not None:
            raise KafkaException(self.abort_error)


def _producer(inner: Any, transactional_id: str | None, in_transaction: bool,
              failures: list[tuple[str, int]] | None = None) -> _KafkaProducer:
    producer = _KafkaProducer.__new__(_KafkaProducer)
    producer.bootstrap, producer.transactional_id = "127.0.0.1:1", transactional_id
    producer._producer, producer._failures = inner, list(failures or [])
    producer._closed, producer._in_transaction = False, in_transaction
    return producer


def test_a_fenced_producer_whose_flush_fails_without_a_cause_is_fenced() -> None:
    fatal = KafkaError(KafkaError._FENCED, "producer fenced by a newer instance", fatal=True)
    inner = _BrokenProducer(abort_error=fatal)
    producer = _producer(inner, "leader-x", in_transaction=True)
    with pytest.raises(Fenced, match="fenced by a newer instance"):
        producer.flush(1)
    assert inner.aborted == 1 and not producer._in_transaction


def test_a_purged_record_that_names_the_fencing_decides_without_an_abort() -> None:
    inner = _BrokenProducer(abort_error=None)
    producer = _producer(inner, "leader-x", in_transaction=True,
                         failures=[("out: fenced", KafkaError._FENCED)])
    with pytest.raises(Fenced, match="out: fenced"):
        producer.flush(1)
    assert inner.aborted == 0


def test_an_unexplained_flush_failure_is_a_bus_error_and_the_batch_is_aborted() -> None:
    inner = _BrokenProducer(abort_error=None)
    producer = _producer(inner, "leader-x", in_transaction=True)
    with pytest.raises(BusError, match="returned NULL") as raised:
        producer.flush(1)
    assert not isinstance(raised.value, Fenced)
    assert inner.aborted == 1 and not producer._in_transaction


def test_a_plain_producer_reports_the_failure_without_aborting() -> None:
    inner = _BrokenProducer(abort_error=None)
    producer = _producer(inner, None, in_transaction=False,
                         failures=[("out: timed out", KafkaError._MSG_TIMED_OUT)])
    with pytest.raises(BusError, match="first failed record: out: timed out") as raised:
        producer.flush(1)
    assert not isinstance(raised.value, Fenced) and inner.aborted == 0
