#!/usr/bin/env bash
# Bring up the distributed stack locally: Kafka, Kubo, then the services, each as SCALE says
# (e.g. SCALE="predictor=3 dft_runner=2"; one instance of each by default).
# It starts what is not running and keeps what exists: Kafka's log directory, Kubo's repo and
# the services' home (ledger, keys, catalog) in the run folder all survive `make down` and a
# second `make up`, so the ledger and its keys stay the same. Nothing here deletes state; a
# fresh start is the explicit `make clean` (infra/clean.sh). On a stack that is already up,
# only the services change: `make up SCALE=...` again rescales it.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/lib/common.sh"
RUN="$(run_dir)"
# The home names models and datasets by CID and the services' progress lives in Kafka: a home
# kept beside a Kafka log or Kubo repo that is gone (deleted by hand) would make the services
# fail on content the new node does not hold. Say so instead of starting half a stack.
if [[ -e "$RUN/home/ledger" ]]; then
    missing=""
    [[ -f "$RUN/kafka/data/meta.properties" ]] || missing="Kafka's log directory $RUN/kafka/data"
    [[ -f "$RUN/ipfs/repo/config" ]] || missing="${missing:+$missing and }Kubo's repo $RUN/ipfs/repo"
    [[ -z "$missing" ]] ||
        die infra/up "$RUN/home holds a ledger but $missing is gone; run 'make clean' for a fresh start (it deletes $RUN's state) or restore what is missing"
fi
bash "$here/kafka/start.sh"
bash "$here/ipfs/start.sh"
bash "$here/services.sh" start
