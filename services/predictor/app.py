"""predictor wiring: candidates.generated in, candidates.predicted out."""

from ledger.view import LedgerView
from materialabs import config, ports
from materialabs.models import ModelRegistry
from materialabs.runtime import ServiceSpec
from services.predictor.handlers import handle, score_batch


def build_ports() -> dict:
    return {"models": ModelRegistry(ports.store(), LedgerView(config.ledger_dir())),
            "inference_threads": config.predictor_threads()}


SERVICE = ServiceSpec(name="predictor", consumes=["candidates.generated"], handler=handle,
                      produces=["candidates.predicted"], ports=build_ports,
                      before_batch=score_batch)
