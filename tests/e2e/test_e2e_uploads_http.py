"""HTTP uploads into the distributed stack (real Kafka + Kubo, the services started through
infra/services.sh as `make up` does): two labs upload through the gateway while the gateway
and then the ledger service are SIGKILLed and restarted. Clients retry the same signed bytes;
every upload ends accepted with a receipt that verifies, and the ledger holds each once."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.e2e.uploads_stack import (
    Stack,
    Upload,
    check_receipts,
    dataset_entries,
    deliver,
    register_labs,
    signed,
)

LABS, UPLOADS = 2, 4


@pytest.mark.kafka
@pytest.mark.ipfs
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_http_uploads_survive_a_killed_gateway_and_ledger_service(
        kafka_bootstrap, kubo_api, tmp_path):
    stack = Stack(tmp_path / "run")
    stack.use_infra(kafka_bootstrap, kubo_api)
    labs = register_labs(stack.home, LABS)
    stack.start_services()
    try:
        plan = [[Upload(lab, signed(key, lab, li, ui)) for ui in range(UPLOADS)]
                for li, (lab, key) in enumerate(labs)]
        everything = [u for uploads in plan for u in uploads]
        stop_at = time.monotonic() + 400

        def client(uploads: list[Upload]) -> None:
            with httpx.Client(base_url=stack.url, timeout=30) as http:
                for upload in uploads:
                    deliver(http, upload, stop_at)

        threads = [threading.Thread(target=client, args=(u,), daemon=True) for u in plan]
        for thread in threads:
            thread.start()
        for instance, receipts in (("gateway-1", 2), ("ledger-1", 5)):
            while sum(bool(u.finished) for u in everything) < receipts:
                assert time.monotonic() < stop_at, [u.state for u in everything]
                time.sleep(0.1)
            stack.kill(instance)
            stack.start_services()
        for thread in threads:
            thread.join(timeout=max(1.0, stop_at - time.monotonic()))
        states = [u.state for u in everything]
        assert all(s.get("state") == "accepted" for s in states), states
        assert sum(u.posts for u in everything) > len(everything)  # the kill made retries
        entries, distinct = dataset_entries(stack.home)
        assert entries == distinct == LABS * UPLOADS
        assert len({s["ledger_seq"] for s in states}) == LABS * UPLOADS
        assert check_receipts(stack.home, everything) == 0
    finally:
        stack.stop()
