"""catalog wiring: the read model's one writer, over the home's catalog file."""

from ledger.view import LedgerView
from materialabs import config, ports
from materialabs.catalog import Catalog
from materialabs.runtime import ServiceSpec
from services.catalog.handlers import EMITS, HANDLERS, CatalogPorts


def build_ports() -> CatalogPorts:
    return CatalogPorts(catalog=Catalog(config.catalog_dir()), hull=ports.hull,
                        ledger=LedgerView(config.ledger_dir()))


SERVICE = ServiceSpec(name="catalog", handlers=HANDLERS, emits=EMITS, ports=build_ports,
                      ports_type=CatalogPorts,
                      # One writer of the catalog file: a leader and standbys.
                      single_active=True)
