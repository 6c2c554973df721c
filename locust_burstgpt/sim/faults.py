"""Fault injection: which fault (if any) a request gets, from the config's rules or a header.

Why it exists: clients, the plugin and CI gates must be tested against the failures real servers
show (5xx, 429 with Retry-After, overload 503, stalls, cut and malformed streams), both at a rate
(to look like production) and deterministically per request (so a test can force exactly one).

Header form (case-insensitive name ``x-sim-fault``)::

    x-sim-fault: stall_mid_stream; after=5; seconds=30
    x-sim-fault: http_429; retry_after=3
    x-sim-fault: none            (no fault, even if a config rule would pick one)

Config form (``faults`` list; the first matching rule wins)::

    {"kind": "http_500", "rate": 0.02}
    {"kind": "cut_mid_stream", "every": 50, "after": 10}
    {"kind": "stall_before_first_token", "windows": [[30, 40]], "seconds": 5}

``rate`` is a probability per request (seeded, so runs repeat), ``every`` picks every n-th request
(1-based count of completion requests), ``windows`` limits a rule to [start, end) seconds since
the server started. A rule with several conditions needs all of them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FAULT_KINDS: tuple[str, ...] = (
    "http_500",
    "http_429",
    "http_503",
    "stall_before_first_token",
    "stall_mid_stream",
    "cut_mid_stream",
    "malformed_sse",
)
_PARAMS = {"after": int, "seconds": float, "retry_after": int}


class FaultError(ValueError):
    """A fault header or rule that cannot be understood."""


@dataclass(frozen=True)
class Fault:
    """One fault to inject into one request (see docs for each kind's exact wire behaviour)."""

    kind: str
    after: int = 5  # content tokens before stall/cut/malformed event
    seconds: float = 10.0  # stall length
    retry_after: int = 1  # Retry-After header of http_429, seconds

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.after < 0 or self.seconds < 0 or self.retry_after < 0:
            raise FaultError(f"fault {self.kind}: after, seconds and retry_after must be >= 0")


@dataclass
class FaultRule:
    """A config rule: inject ``fault`` into requests that match every given condition."""

    fault: Fault
    rate: float = 1.0
    every: int | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)

    def matches(self, elapsed_s: float, request_number: int, rng: random.Random) -> bool:
        if self.windows and not any(a <= elapsed_s < b for a, b in self.windows):
            return False
        if self.every is not None and request_number % self.every != 0:
            return False
        return self.rate >= 1.0 or rng.random() < self.rate


class FaultPlan:
    """Chooses the fault of each completion request (header first, then the rules)."""

    def __init__(self, rules: Sequence[FaultRule], seed: int = 0) -> None:
        self.rules = list(rules)
        self._rng = random.Random(seed)
        self._count = 0

    def choose(self, header: str | None, elapsed_s: float) -> Fault | None:
        """The fault for the next request; raises FaultError for a bad header."""
        self._count += 1
        if header is not None:
            return parse_fault_header(header)
        for rule in self.rules:
            if rule.matches(elapsed_s, self._count, self._rng):
                return rule.fault
        return None


def parse_fault_header(value: str) -> Fault | None:
    """``kind; key=value; ...`` -> Fault (None for ``none``)."""
    parts = [p.strip() for p in value.split(";") if p.strip()]
    if not parts:
        raise FaultError("empty x-sim-fault header")
    kind = parts[0].lower()
    if kind == "none":
        return None
    params: dict[str, object] = {}
    for part in parts[1:]:
        key, sep, raw = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in _PARAMS:
            raise FaultError(
                f"x-sim-fault: bad parameter {part!r}; expected one of "
                + ", ".join(f"{k}=<{t.__name__}>" for k, t in _PARAMS.items())
            )
        try:
            params[key] = _PARAMS[key](raw.strip())
        except ValueError:
            raise FaultError(
                f"x-sim-fault: {key} must be a {_PARAMS[key].__name__}, got {raw!r}"
            ) from None
    return Fault(kind=kind, **params)  # type: ignore[arg-type]


def rule_from_dict(d: Mapping[str, object], where: str) -> FaultRule:
    """One ``faults`` entry of a config; errors name ``where`` (file and index)."""
    if not isinstance(d, Mapping):
        raise FaultError(f"{where}: a fault rule must be an object, got {d!r}")
    allowed = {"kind", "rate", "every", "windows", *_PARAMS}
    unknown = set(d) - allowed
    if unknown:
        raise FaultError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "kind" not in d:
        raise FaultError(f"{where}: missing 'kind' (one of {', '.join(FAULT_KINDS)})")
    try:
        fault = Fault(
            kind=str(d["kind"]),
            **{k: _PARAMS[k](d[k]) for k in _PARAMS if k in d},  # type: ignore[arg-type]
        )
    except (TypeError, ValueError) as e:
        raise FaultError(f"{where}: {e}") from None
    rate = d.get("rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise FaultError(f"{where}: rate must be a number in [0, 1], got {rate!r}")
    every = d.get("every")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise FaultError(f"{where}: every must be an integer >= 1, got {every!r}")
    windows: list[tuple[float, float]] = []
    raw_windows = d.get("windows", [])
    if not isinstance(raw_windows, list):
        raise FaultError(f"{where}: windows must be a list of [start, end] pairs")
    for w in raw_windows:
        if (
            not isinstance(w, (list, tuple))
            or len(w) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w)
            or w[0] >= w[1]
        ):
            raise FaultError(
                f"{where}: bad window {w!r}; expected [start_s, end_s] with start < end"
            )
        windows.append((float(w[0]), float(w[1])))
    return FaultRule(fault=fault, rate=float(rate), every=every, windows=windows)
