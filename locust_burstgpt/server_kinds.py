"""The kinds of OpenAI-compatible server the plugin knows, in one table.

Why one table: the kind decides which request fields force an exact output length, which extra
endpoints exist (llama.cpp's ``/props``), and how ``/v1/models``'s ``owned_by`` is read; before,
four modules each kept their own list of names.
"""

from __future__ import annotations

from enum import Enum


class ServerKind(str, Enum):
    VLLM = "vllm"
    LLAMACPP = "llamacpp"
    SGLANG = "sglang"
    OPENAI = "openai"  # anything else: standard fields only
    SIM = "sim"  # the embedded simulator

    @property
    def ignores_eos(self) -> bool:
        """Honours ``ignore_eos`` (generates to ``max_tokens`` despite end-of-sequence tokens)."""
        return self in (ServerKind.VLLM, ServerKind.LLAMACPP, ServerKind.SGLANG, ServerKind.SIM)

    @property
    def has_min_tokens(self) -> bool:
        """Honours ``min_tokens`` (llama.cpp silently ignores it, so it is not sent there)."""
        return self in (ServerKind.VLLM, ServerKind.SIM)


#: ``owned_by`` of ``/v1/models`` entries -> kind (lower case).
OWNERS: dict[str, ServerKind] = {
    "vllm": ServerKind.VLLM,
    "llamacpp": ServerKind.LLAMACPP,
    "sglang": ServerKind.SGLANG,
    "burstgpt-sim": ServerKind.SIM,
}
#: What the embedded simulator answers as ``owned_by``.
SIMULATOR_OWNER = "burstgpt-sim"
#: The choices of ``--burstgpt-server-kind``.
CHOICES: tuple[str, ...] = ("auto", *(k.value for k in ServerKind))


def kind_for_owner(owner: str | None) -> ServerKind:
    """The kind an ``owned_by`` value names; unknown owners are plain OpenAI-compatible servers."""
    return OWNERS.get((owner or "").strip().lower(), ServerKind.OPENAI)


def parse_kind(value: str | ServerKind | None) -> ServerKind:
    """A kind from its name (a few common spellings accepted); unknown names are OPENAI."""
    if isinstance(value, ServerKind):
        return value
    name = (value or "").strip().lower()
    aliases = {"llama.cpp": "llamacpp", "simulator": "sim", "burstgpt-sim": "sim"}
    try:
        return ServerKind(aliases.get(name, name))
    except ValueError:
        return ServerKind.OPENAI
