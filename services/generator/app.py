"""generator wiring: the campaign stream in, candidates out."""

from materialabs import ports
from materialabs.runtime import ServiceSpec
from services.generator.handlers import EMITS, HANDLERS, GeneratorPorts


def build_ports() -> GeneratorPorts:
    return GeneratorPorts(parents=ports.campaign_parents, pool=ports.campaign_pool)


SERVICE = ServiceSpec(name="generator", handlers=HANDLERS, emits=EMITS, ports=build_ports,
                      ports_type=GeneratorPorts, stream_outputs=True)
