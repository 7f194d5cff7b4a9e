"""Make a fresh Kubo repo config local-only: API and gateway on loopback ports, no peers.

usage: python3 configure.py CONFIG_PATH API_PORT GATEWAY_PORT

Edited in one pass rather than with many `ipfs config` calls (each one starts the binary).
"""

from __future__ import annotations

import json
import sys


def local_only(config: dict, api_port: int, gateway_port: int) -> dict:
    addresses = config.setdefault("Addresses", {})
    addresses["API"] = f"/ip4/127.0.0.1/tcp/{api_port}"
    addresses["Gateway"] = f"/ip4/127.0.0.1/tcp/{gateway_port}"
    # The daemon runs --offline, but keep the swarm on loopback in case someone drops the flag.
    addresses["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    addresses["Announce"] = []
    addresses["NoAnnounce"] = []
    config["Bootstrap"] = []
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    # AutoConf would fetch network defaults from the internet; nothing may be fetched at run time.
    config.setdefault("AutoConf", {})["Enabled"] = False
    config.setdefault("Routing", {})["Type"] = "none"
    return config


def main(argv: list[str]) -> int:
    path, api_port, gateway_port = argv[1], int(argv[2]), int(argv[3])
    with open(path) as handle:
        config = json.load(handle)
    with open(path, "w") as handle:
        json.dump(local_only(config, api_port, gateway_port), handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
