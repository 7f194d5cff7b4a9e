"""dft-runner wiring: DFT requests in, results out, outputs stored by CID."""

from materialabs import ports
from materialabs.runtime import ServiceSpec
from services.dft_runner.handlers import EMITS, HANDLERS, DftRunnerPorts


def build_ports() -> DftRunnerPorts:
    return DftRunnerPorts(store=ports.store(), dft_backends=ports.dft_backends())


SERVICE = ServiceSpec(name="dft_runner", handlers=HANDLERS, emits=EMITS, ports=build_ports,
                      ports_type=DftRunnerPorts)
