"""Token counts from a local tokenizer: a ``tokenizer.json`` file or a Hugging Face model folder.

A model folder may also carry the chat template (``tokenizer_config.json`` ``chat_template``,
``chat_template.jinja`` or ``chat_template.json``); it is rendered with Jinja the way
``transformers``' ``apply_chat_template`` does, then tokenized without adding special tokens
(as vLLM does for chat requests). Without a template, the builder measures the template
overhead from the server instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from locust_burstgpt.prompts.counters import Message, PromptBackendError


class LocalCounter:
    """Counts with ``tokenizers.Tokenizer``; renders the folder's chat template if it has one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        file = self.path / "tokenizer.json" if self.path.is_dir() else self.path
        if not file.is_file():
            raise PromptBackendError(
                f"local tokenizer {self.path}: no tokenizer.json "
                f"({'folder has none' if self.path.is_dir() else 'file does not exist'})"
            )
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise PromptBackendError(
                "the local tokenizer backend needs the 'tokenizers' package "
                "(pip install 'locust-burstgpt[tokenizers]')"
            ) from None
        try:
            self._tok = Tokenizer.from_file(str(file))
        except Exception as e:  # noqa: BLE001 - tokenizers raises its own exception types
            raise PromptBackendError(f"local tokenizer {file}: cannot be loaded: {e}") from None
        self.name = f"local:{self.path}"
        folder = file.parent
        self._template, self._specials = _load_template(folder)

    @property
    def has_template(self) -> bool:
        return self._template is not None

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def count_chat(self, messages: Sequence[Message]) -> int | None:
        if self._template is None:
            return None
        text = self.render_chat(messages)
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def render_chat(self, messages: Sequence[Message]) -> str:
        if self._template is None:
            raise PromptBackendError(f"local tokenizer {self.path} has no chat template")
        msgs = [dict(m) for m in messages]
        return self._template.render(
            messages=msgs, add_generation_prompt=True, tools=None, **self._specials
        )

    def count_completion(self, prompt: str) -> int:
        return len(self._tok.encode(prompt, add_special_tokens=True).ids)


def _load_template(folder: Path) -> tuple[Any, dict[str, str]]:
    """The folder's chat template (compiled) and special-token strings, or (None, {})."""
    config_file = folder / "tokenizer_config.json"
    config: dict[str, Any] = {}
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise PromptBackendError(f"{config_file}: not valid JSON: {e}") from None
    source = config.get("chat_template")
    if isinstance(source, list):  # [{"name": "default", "template": "..."}, ...]
        named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
        source = named.get("default") or next(iter(named.values()), None)
    jinja_file, json_file = folder / "chat_template.jinja", folder / "chat_template.json"
    if not source and jinja_file.is_file():
        source = jinja_file.read_text(encoding="utf-8")
    if not source and json_file.is_file():
        try:
            source = json.loads(json_file.read_text(encoding="utf-8")).get("chat_template")
        except (OSError, ValueError) as e:
            raise PromptBackendError(f"{json_file}: not valid JSON: {e}") from None
    if not source:
        return None, {}
    specials = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            specials[key] = value
    return _compile(source, folder), specials


def _compile(source: str, folder: Path) -> Any:
    from jinja2 import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(
        x, ensure_ascii=False, indent=indent
    )
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except TemplateError as e:
        raise PromptBackendError(f"chat template in {folder}: {e}") from None
