#!/usr/bin/env bash
# The explicit fresh start: stop everything (infra/down.sh), then delete the run folder's
# state: the services' home (ledger, keys, catalog), Kafka's log directory, Kubo's repo,
# pids and logs. The next `make up` begins from empty storage. Only the entries these scripts
# create are removed, so a MATERIALABS_RUN_DIR pointing at a folder with other files keeps them.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/lib/common.sh"
bash "$here/down.sh"
RUN="$(run_dir)"
removed=()
for entry in home kafka ipfs services logs; do
    if [[ -e "$RUN/$entry" ]]; then
        rm -rf "${RUN:?}/$entry"
        removed+=("$entry/")
    fi
done
rmdir "$RUN" 2>/dev/null || true
if ((${#removed[@]})); then
    echo "infra: removed ${removed[*]} from $RUN (ledger, keys, Kafka log, Kubo repo, logs)"
else
    echo "infra: nothing to remove in $RUN"
fi
