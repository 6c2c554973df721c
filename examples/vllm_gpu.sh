#!/usr/bin/env bash
# Replay BurstGPT against vLLM on a GPU host. Run the server on the GPU box, the load from anywhere
# that reaches it. The same plugin flags are exercised against vLLM on CPU in tests/test_real_servers.py.
set -euo pipefail
GPU_HOST=${GPU_HOST:-http://gpu-box:8000}
MODEL=${MODEL:-meta-llama/Llama-3.1-8B-Instruct}

# 1. On the GPU host (prefix caching on, so multi-turn history reuse shows in vllm:prefix_cache_* metrics):
#    vllm serve "$MODEL" --host 0.0.0.0 --port 8000 --enable-prefix-caching --max-model-len 32768
#
# 2. Tokenizer: counting prompt tokens with the model's own tokenizer makes prompts exact without
#    asking the server. Point --burstgpt-tokenizer at a local copy of the model (or its tokenizer.json);
#    without it the plugin uses the server's /tokenize, which vLLM serves.
TOKENIZER=${TOKENIZER:+local:$TOKENIZER}

# 3. The replay: BurstGPT_3's busiest hour 10x faster, both trace models mapped to the one served model,
#    exact output lengths (ignore_eos + min_tokens are sent because the server identifies as vLLM).
locust -f locustfiles/burstgpt.py --headless --host "$GPU_HOST" \
  --burstgpt-window busiest:1h --burstgpt-speedup 10 \
  --burstgpt-model-map "ChatGPT=$MODEL,GPT-4=$MODEL" \
  ${TOKENIZER:+--burstgpt-tokenizer "$TOKENIZER"} \
  --burstgpt-slo "ttft_p99<=2s,tpot_p99<=80ms,goodput>=0.95" \
  --burstgpt-report "reports/vllm-$(date +%Y%m%d-%H%M%S)"
