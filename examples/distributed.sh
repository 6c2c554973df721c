#!/usr/bin/env bash
# Distributed replays. Each Locust process should stay under ~60 % of a core (watch Locust's CPU
# warning and the lateness column): the raw transport costs ~20-35 us of CPU per streamed token, so
# one process carries roughly 15-25k streamed tokens/s; add processes above that.
set -euo pipefail
HOST=${HOST:-}     # your server; empty: the embedded simulator
TRACE=${TRACE:-}   # a BurstGPT file, or empty for the bundled slice
SPEEDUP=${SPEEDUP:-20}
REPORT=${REPORT:-reports/processes}

# A. One machine, N worker processes (the master forks them; each replays whole conversations that the
#    master assigns; start times are aligned; metrics and books merge on the master):
locust -f locustfiles/burstgpt.py --headless ${HOST:+--host "$HOST"} --processes 4 \
  ${TRACE:+--burstgpt-trace "$TRACE"} --burstgpt-window busiest:1h --burstgpt-speedup "$SPEEDUP" \
  --burstgpt-report "$REPORT"

# B. Several machines: the same locustfile, trace file (same bytes, same path) and plugin version on each.
#    On the master host:
#      locust -f locustfiles/burstgpt.py --headless --master --expect-workers 3 --host "$HOST" \
#        --burstgpt-trace /data/BurstGPT_3.csv --burstgpt-window busiest:1h --burstgpt-speedup 20 \
#        --burstgpt-report reports/cluster
#    On each worker host (plugin options come from the master at test start):
#      locust -f locustfiles/burstgpt.py --worker --master-host <master-ip> --processes 2
#    Clocks must be NTP-synced: the master sends an absolute start time.
