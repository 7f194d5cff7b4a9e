"""predictor wiring: candidates.generated in, candidates.predicted out."""

from ledger.view import LedgerView
from materialabs import config, ports
from materialabs.models import ModelRegistry
from materialabs.runtime import ServiceSpec
from services.predictor.handlers import EMITS, HANDLERS, PredictorPorts, score_batch


def build_ports() -> PredictorPorts:
    return PredictorPorts(models=ModelRegistry(ports.store(), LedgerView(config.ledger_dir())),
                          inference_threads=config.predictor_threads())


SERVICE = ServiceSpec(name="predictor", handlers=HANDLERS, emits=EMITS, ports=build_ports,
                      ports_type=PredictorPorts, before_batch=score_batch)
