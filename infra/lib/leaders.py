"""Print "SERVICE HOLDER" for each single-active service whose lease group has members.

usage: leaders.py BOOTSTRAP SERVICE...
HOLDER is the lease holder's client id, "<instance>/<pid>", or "-" while the group is
electing one. Services without lease members (scaled as plain group members, or not
running) are not printed. Needs the project on PYTHONPATH (infra/services.sh sets it).
"""

from __future__ import annotations

import socket
import sys

TIMEOUT_S = 5.0  # `make status` must answer promptly, broker or not


def broker_answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    bootstrap, services = argv[0], argv[1:]
    if not broker_answers(bootstrap):
        return 0  # roles unknown; kafka/status.sh says the broker is down
    from materialabs.runtime.leadership import lease_holders

    for service, holder in lease_holders(bootstrap, services, TIMEOUT_S).items():
        print(service, holder or "-")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
