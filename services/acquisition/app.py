"""acquisition wiring: the campaign stream, predictions and DFT results in."""

from materialabs import ports
from materialabs.runtime import ServiceSpec
from services.acquisition.handlers import handle


def build_ports() -> dict:
    return {"hull": ports.hull()}


SERVICE = ServiceSpec(name="acquisition",
                      consumes=["campaigns", "candidates.predicted", "dft.completed"],
                      handler=handle, produces=["dft.requested", "candidates.promoted"],
                      ports=build_ports,
                      # One book per campaign, fed by predictions keyed by structure hash.
                      single_active=True)
