"""dft-runner wiring: DFT requests in, results out, outputs stored by CID."""

from materialabs import ports
from materialabs.runtime import ServiceSpec
from services.dft_runner.handlers import handle


def build_ports() -> dict:
    return {"store": ports.store(), "dft_backends": ports.dft_backends()}


SERVICE = ServiceSpec(name="dft_runner", consumes=["dft.requested"], handler=handle,
                      produces=["dft.completed"],
                      ports=build_ports)
