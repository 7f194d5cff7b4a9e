"""generator wiring: the campaign stream in, candidates out."""

from materialabs import ports
from materialabs.runtime import ServiceSpec
from services.generator.handlers import handle


def build_ports() -> dict:
    return {"parents": ports.campaign_parents, "pool": ports.campaign_pool}


SERVICE = ServiceSpec(name="generator", consumes=["campaigns"], handler=handle,
                      produces=["candidates.generated"],
                      ports=build_ports, stream_outputs=True)
