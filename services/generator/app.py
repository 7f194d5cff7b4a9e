"""generator wiring: the campaign stream in, candidates out."""

from materialabs import ports
from materialabs.runtime import ServiceSpec
from services.generator.handlers import EMITS, HANDLERS, GeneratorPorts


def build_ports() -> GeneratorPorts:
    from materialabs.mlip import load_potential  # loads a model only when a campaign relaxes

    return GeneratorPorts(parents=ports.campaign_parents, pool=ports.campaign_pool,
                          relaxer=load_potential)


SERVICE = ServiceSpec(name="generator", handlers=HANDLERS, emits=EMITS, ports=build_ports,
                      ports_type=GeneratorPorts, stream_outputs=True)
