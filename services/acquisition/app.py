"""acquisition wiring: the campaign stream, predictions and DFT results in."""

from materialabs import ports
from materialabs.runtime import ServiceSpec
from services.acquisition.handlers import EMITS, HANDLERS, AcquisitionPorts


def build_ports() -> AcquisitionPorts:
    return AcquisitionPorts(hull=ports.hull())


SERVICE = ServiceSpec(name="acquisition", handlers=HANDLERS, emits=EMITS, ports=build_ports,
                      ports_type=AcquisitionPorts,
                      # A leader and standbys: one book per campaign, fed by predictions keyed by
                      # structure hash.
                      single_active=True)
