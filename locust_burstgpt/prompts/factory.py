"""Choose and prepare a token-count backend, then return a ready prompt builder.

``backend``:

* ``local:<path>``: a ``tokenizer.json`` or a Hugging Face model folder (exact);
* ``server``: the target server's ``/tokenize`` (llama.cpp or vLLM shape; exact);
* ``simpletok``: the project's own tokenizer, which is what the embedded simulator counts with
  (exact for the simulator, with no request per turn);
* ``fallback``: ``simpletok`` counts calibrated from ``usage.prompt_tokens`` (estimate);
* ``auto`` (default): ``local`` if ``tokenizer`` is set, else ``simpletok`` if the server is the
  embedded simulator, else ``server`` if its ``/tokenize`` answers, else ``fallback``; the
  choice is logged.

With a client, setup also sends a few tiny probe requests (``max_tokens`` 1) so the server's own
``usage`` fixes what cannot be read from a tokenizer: the chat template overhead when the
backend cannot render the template, any constant difference (e.g. a BOS token) between the
backend's count and the server's, and the fallback's starting calibration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from locust_burstgpt.client.sidechannel import SideChannel
from locust_burstgpt.prompts.builder import PromptBuilder
from locust_burstgpt.prompts.counters import (
    PromptBackendError,
    TokenCounter,
    measure_template,
    probe_usage,
)
from locust_burstgpt.prompts.local import LocalCounter
from locust_burstgpt.prompts.server import detect_server_counter, served_model
from locust_burstgpt.prompts.simple import SimpletokCounter
from locust_burstgpt.prompts.sizing import CalibratedSizer, ExactSizer, exact_word_pool
from locust_burstgpt.prompts.text import WordPool, WordStream
from locust_burstgpt.prompts.words import unique_words
from locust_burstgpt.server_kinds import SIMULATOR_OWNER

log = logging.getLogger("locust_burstgpt.prompts")


@dataclass
class PromptConfig:
    """How prompts are sized and generated."""

    backend: str = "auto"  # auto | local:<path> | server | simpletok | fallback
    base_url: str | None = None  # the target server (for /tokenize and model discovery)
    model: str | None = None  # model name for vLLM's /tokenize and probe requests
    # ``owned_by`` of that model when the caller already asked ``/v1/models`` (then it is not asked
    # again); None: asked here when a server is given
    owner: str | None = None
    endpoint: str = "chat"  # chat | completions
    seed: int = 0
    api_key: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    tokenizer: str | None = None  # local tokenizer for ``auto``
    probe: bool = True  # send setup probe requests when a client is given
    request_timeout_s: float = 30.0


def make_prompt_builder(
    cfg: PromptConfig, client: Any = None, side: SideChannel | None = None
) -> PromptBuilder:
    """A prompt builder on the backend ``cfg.backend`` selects (see module docstring).

    ``side``: the caller's side channel to the server (else one is made from ``cfg``)."""
    if cfg.endpoint not in ("chat", "completions"):
        raise PromptBackendError(f"endpoint must be 'chat' or 'completions', got {cfg.endpoint!r}")
    backend = (cfg.backend or "auto").strip()
    http = None
    if cfg.base_url and (backend in ("auto", "server") or (client is not None and cfg.probe)):
        http = side or SideChannel(cfg.base_url, cfg.api_key, cfg.verify_tls, cfg.request_timeout_s)
    model, owner = cfg.model, cfg.owner
    if http is not None and (model is None or owner is None):
        listed, listed_owner = served_model(http)
        model = model or listed
        owner = owner if owner is not None else listed_owner
    counter: TokenCounter | None = None
    why = ""
    if backend.startswith("local:"):
        counter, why = LocalCounter(backend[len("local:") :]), "asked for"
    elif backend == "simpletok":
        counter, why = SimpletokCounter(), "asked for"
    elif backend == "auto":
        if cfg.tokenizer:
            counter, why = LocalCounter(cfg.tokenizer), "auto: a local tokenizer was given"
        elif owner == SIMULATOR_OWNER:
            counter, why = SimpletokCounter(), "auto: the server is the embedded simulator"
        elif http is not None:
            counter = detect_server_counter(http, model)
            why = "auto: the server's /tokenize answers" if counter else ""
    elif backend == "server":
        if http is None:
            raise PromptBackendError("prompt backend 'server' needs the server's base_url")
        counter = detect_server_counter(http, model)
        if counter is None:
            raise PromptBackendError(
                f"prompt backend 'server': {http.root}/tokenize answers neither the llama.cpp "
                "nor the vLLM request shape"
            )
        why = "asked for"
    elif backend != "fallback":
        raise PromptBackendError(
            f"unknown prompt backend {cfg.backend!r}; use auto, "
            "local:<path>, server, simpletok or fallback"
        )
    if counter is not None:
        builder = _exact_builder(counter, cfg, client, model)
    else:
        why = why or (
            "asked for"
            if backend == "fallback"
            else "auto: no local tokenizer and no usable /tokenize"
        )
        builder = _fallback_builder(cfg, client, model)
    log.info("prompt token counting: %s (%s)", builder.backend_name, why)
    return builder


def _exact_builder(
    counter: TokenCounter, cfg: PromptConfig, client: Any, model: str | None
) -> PromptBuilder:
    chat = cfg.endpoint == "chat"
    template = None
    if chat and counter.count_chat([{"role": "user", "content": "hi"}]) is None:
        if client is None or not cfg.probe:
            raise PromptBackendError(
                f"{counter.name} cannot render the chat template; give a model folder with its "
                "template, or a client so the template overhead can be measured from the server"
            )
        template = measure_template(client, model, counter)
    sizer = ExactSizer(counter, template)
    pool = exact_word_pool(counter, unique_words())
    if client is not None and cfg.probe and template is None:
        _measure_offset(sizer, pool, client, model, chat)
    return PromptBuilder(sizer, pool, cfg.endpoint, cfg.seed)


def _measure_offset(
    sizer: ExactSizer, pool: WordPool, client: Any, model: str | None, chat: bool
) -> None:
    """Compare one count with the server's usage; a constant difference becomes the offset."""
    text = WordStream(pool, 0, "offset-probe").text(12)
    if chat:
        messages = [{"role": "user", "content": text}]
        ours = sizer.chat(messages)
        theirs = probe_usage(client, model, {"messages": messages}, "offset")
    else:
        ours = sizer.completion(text)
        theirs = probe_usage(client, model, {"prompt": text}, "offset")
    if theirs != ours:
        log.warning(
            "%s counts %d prompt tokens where the server's usage says %d; correcting by %+d",
            sizer.name,
            ours,
            theirs,
            theirs - ours,
        )
        sizer.offset = theirs - ours


def _fallback_builder(cfg: PromptConfig, client: Any, model: str | None) -> PromptBuilder:
    chat = cfg.endpoint == "chat"
    sizer = CalibratedSizer(chat)
    words = unique_words()
    pool = WordPool(words, words)
    builder = PromptBuilder(sizer, pool, cfg.endpoint, cfg.seed)
    if client is not None and cfg.probe:
        # a few tiny requests of different shapes give the calibration a measured start
        for i, (n, turns) in enumerate(((8, 1), (64, 1), (8, 2))):
            stream = WordStream(pool, cfg.seed, f"calibration-probe-{i}")
            text = stream.text(n)
            if chat:
                messages: list[dict[str, Any]] = []
                for t in range(turns - 1):
                    messages += [
                        {"role": "user", "content": text},
                        {"role": "assistant", "content": stream.text(n + t + 1)},
                    ]
                messages.append({"role": "user", "content": text})
                _, state = sizer.probe_chat(messages)
                actual = probe_usage(client, model, {"messages": messages}, f"calibration-{i}")
            else:
                _, state = sizer.probe_completion("", text)
                actual = probe_usage(client, model, {"prompt": text}, f"calibration-{i}")
            sizer.observe(state, actual)
    return builder
