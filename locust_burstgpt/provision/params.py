"""``params.json``: the fitted workload model, versioned, readable, and validated on load.

One ``ClassParams`` per (log type, model) class holds everything the synthesizer needs for that
class: when conversations start (a per-bin time-of-day rate with a Gamma inter-arrival shape, and
a level per day), how long they are and how long users think, request/response lengths, the
failure rate and the service-time model. Field meanings are documented in the provisioning docs;
``to_dict`` writes them in a stable order so two fits can be diffed.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .distributions import (
    Bucketed,
    Distribution,
    ParamsError,
    Quantiles,
    bucketed_from_dict,
    distribution_from_dict,
    round6,
)

FORMAT = "locust-burstgpt-params"
VERSION = 1
DAY_S = 86400
CONVERSATION_LOG = "Conversation log"


@dataclass
class Arrivals:
    """Conversation starts: a time-of-day rate profile, a Gamma shape per bin, a level per day.

    ``rate_per_s[b]`` is the mean start rate in bin ``b`` on a day of level 1 (``None`` where the
    source never covered that bin). Within a bin, gaps between starts are Gamma with shape
    ``shape[b]``; the scale follows from the rate (mean gap = 1 / rate), so
    ``scale_s = 1 / (rate * shape)`` is written for reading only.
    """

    rate_per_s: list[float | None]
    shape: list[float]
    gaps: list[int]
    exposure_s: list[float]
    day_levels: list[float]
    shape_estimator: str = "moments"

    def mean_rate(self) -> float:
        """Start rate averaged over the covered bins, weighted by how long each was observed."""
        covered = [
            (r, e) for r, e in zip(self.rate_per_s, self.exposure_s, strict=True) if r is not None
        ]
        total = sum(e for _, e in covered)
        return sum(r * e for r, e in covered) / total if total > 0 else 0.0

    def filled_rates(self) -> list[float]:
        """Per-bin rates with uncovered bins set to the covered mean (documented fallback)."""
        mean = self.mean_rate()
        return [mean if r is None else r for r in self.rate_per_s]


@dataclass
class Conversations:
    """Turns per conversation and the think time between a response and the next request."""

    turns: Distribution
    think_s: Distribution | None = None


@dataclass
class Lengths:
    """Request tokens of first turns, growth of later turns, responses by request bucket.

    A later turn's request is ``history + increment`` with ``history = previous request +
    previous response`` (requests carry the conversation), clipped to ``[1, max_request]``; the
    increment's distribution depends on the history's size (long histories get trimmed, so their
    increments are often negative). Responses depend on the row's request tokens.
    """

    first_request: Distribution
    response: Bucketed
    increment: Bucketed | None = None
    max_request: int = 131072


@dataclass
class Failures:
    """Share of rows that failed (0 response tokens); of those, the share with 0 request tokens."""

    rate: float = 0.0
    zero_request_fraction: float = 1.0


@dataclass
class Elapsed:
    """Service time: ``intercept_s + per_response_token_s * response tokens + residual``."""

    intercept_s: float
    per_response_token_s: float
    residual_s: Distribution
    source: str = "fitted"


@dataclass
class ClassParams:
    """Everything about one (log type, model) class of the trace."""

    log_type: str
    model: str
    rows: int
    conversations_count: int
    arrivals: Arrivals
    conversations: Conversations
    lengths: Lengths
    failures: Failures
    elapsed: Elapsed

    @property
    def has_sessions(self) -> bool:
        """Conversation-log rows carry a Session ID in the BurstGPT_3 schema; API rows never do."""
        return self.log_type == CONVERSATION_LOG


@dataclass
class Source:
    """Where the parameters came from."""

    name: str
    sha256: str | None
    rows: int
    window_start_s: float
    window_end_s: float
    window: str = "all"
    has_sessions: bool = False
    has_elapsed: bool = False

    @property
    def duration_s(self) -> float:
        return self.window_end_s - self.window_start_s


@dataclass
class Params:
    """A fitted (or preset) workload model; see the module docstring."""

    source: Source
    bin_s: int
    start_s: float
    classes: list[ClassParams]
    generator: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def bins(self) -> int:
        return DAY_S // self.bin_s

    @property
    def mean_rate(self) -> float:
        """Requests per second over the fitted window: the default ``synth --rate``."""
        return sum(c.rows for c in self.classes) / self.source.duration_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "generator": self.generator,
            "source": {
                "name": self.source.name,
                "sha256": self.source.sha256,
                "rows": self.source.rows,
                "window": self.source.window,
                "window_start_s": self.source.window_start_s,
                "window_end_s": self.source.window_end_s,
                "has_sessions": self.source.has_sessions,
                "has_elapsed": self.source.has_elapsed,
            },
            "mean_rate_per_s": round6(self.mean_rate),
            "bin_s": self.bin_s,
            "start_s": self.start_s,
            "notes": list(self.notes),
            "classes": [_class_to_dict(c) for c in self.classes],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Params:
        return _params_from_dict(data)


def save_params(params: Params, path: str | os.PathLike[str]) -> None:
    """Write ``params.json`` (indented, keys in schema order)."""
    text = json.dumps(params.to_dict(), indent=1, allow_nan=False)
    Path(path).write_text(_compact_number_lists(text) + "\n", encoding="utf-8")


def load_params(path: str | os.PathLike[str]) -> Params:
    """Read and validate ``params.json``; errors name the file and the offending field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(
            f"{p}: no such file; expected a params.json written by 'burstgpt fit'"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{p}: cannot read the file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ParamsError(
            f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    try:
        return _params_from_dict(data)
    except ParamsError as exc:
        raise ParamsError(f"{p}: {exc}") from None


def _class_to_dict(c: ClassParams) -> dict[str, Any]:
    a = c.arrivals
    return {
        "log_type": c.log_type,
        "model": c.model,
        "rows": c.rows,
        "conversations": c.conversations_count,
        "arrivals": {
            "mean_start_rate_per_s": round6(a.mean_rate()),
            "shape_estimator": a.shape_estimator,
            "rate_per_s": [None if r is None else round6(r) for r in a.rate_per_s],
            "shape": [round6(k) for k in a.shape],
            "scale_s": [
                None if r is None or r <= 0 else round6(1.0 / (r * k))
                for r, k in zip(a.rate_per_s, a.shape, strict=True)
            ],
            "gaps": list(a.gaps),
            "exposure_s": [round6(e) for e in a.exposure_s],
            "day_levels": [round6(v) for v in a.day_levels],
        },
        "conversation": {
            "mean_turns": round6(c.conversations.turns.mean()),
            "turns": c.conversations.turns.to_dict(),
            "think_s": None
            if c.conversations.think_s is None
            else c.conversations.think_s.to_dict(),
        },
        "lengths": {
            "first_request": c.lengths.first_request.to_dict(),
            "increment_by_history": None
            if c.lengths.increment is None
            else c.lengths.increment.to_dict(),
            "max_request": c.lengths.max_request,
            "response_by_request": c.lengths.response.to_dict(),
        },
        "failures": {
            "rate": round6(c.failures.rate),
            "zero_request_fraction": round6(c.failures.zero_request_fraction),
        },
        "elapsed": {
            "source": c.elapsed.source,
            "intercept_s": round6(c.elapsed.intercept_s),
            "per_response_token_s": round6(c.elapsed.per_response_token_s),
            "residual_s": c.elapsed.residual_s.to_dict(),
        },
    }


def _params_from_dict(data: Any) -> Params:
    if not isinstance(data, dict):
        raise ParamsError("expected a JSON object at the top level")
    if data.get("format") != FORMAT:
        raise ParamsError(f"format: expected {FORMAT!r}, found {data.get('format')!r}")
    version = data.get("version")
    if version != VERSION:
        raise ParamsError(f"version: this release reads version {VERSION}, found {version!r}")
    src = _obj(data, "source", "source")
    source = Source(
        name=_str(src, "name", "source"),
        sha256=src.get("sha256"),
        rows=_int(src, "rows", "source", low=0),
        window=str(src.get("window", "all")),
        window_start_s=_num(src, "window_start_s", "source"),
        window_end_s=_num(src, "window_end_s", "source"),
        has_sessions=bool(src.get("has_sessions", False)),
        has_elapsed=bool(src.get("has_elapsed", False)),
    )
    if source.duration_s <= 0:
        raise ParamsError("source: window_end_s must be greater than window_start_s")
    bin_s = _int(data, "bin_s", "", low=1)
    if DAY_S % bin_s:
        raise ParamsError(f"bin_s: expected a divisor of 86400 s, found {bin_s}")
    raw_classes = data.get("classes")
    if not isinstance(raw_classes, list) or not raw_classes:
        raise ParamsError("classes: expected a non-empty list")
    classes = [
        _class_from_dict(c, f"classes[{i}]", DAY_S // bin_s) for i, c in enumerate(raw_classes)
    ]
    notes = data.get("notes", [])
    return Params(
        source=source,
        bin_s=bin_s,
        start_s=_num(data, "start_s", ""),
        classes=classes,
        generator=str(data.get("generator", "")),
        notes=[str(n) for n in notes] if isinstance(notes, list) else [],
    )


def _class_from_dict(data: Any, where: str, bins: int) -> ClassParams:
    if not isinstance(data, dict):
        raise ParamsError(f"{where}: expected an object")
    a = _obj(data, "arrivals", where)
    aw = f"{where}.arrivals"
    rates = _list(a, "rate_per_s", aw, bins)
    for i, r in enumerate(rates):
        if r is not None and not (_is_num(r) and r >= 0):
            raise ParamsError(f"{aw}.rate_per_s[{i}]: expected a rate >= 0 or null")
    shapes = _list(a, "shape", aw, bins)
    for i, k in enumerate(shapes):
        if not (_is_num(k) and k > 0):
            raise ParamsError(f"{aw}.shape[{i}]: expected a Gamma shape > 0")
    levels = a.get("day_levels")
    if not isinstance(levels, list) or not levels or not all(_is_num(v) and v >= 0 for v in levels):
        raise ParamsError(f"{aw}.day_levels: expected a non-empty list of numbers >= 0")
    arrivals = Arrivals(
        rate_per_s=[None if r is None else float(r) for r in rates],
        shape=[float(k) for k in shapes],
        gaps=[int(g) for g in a.get("gaps", [0] * bins)],
        exposure_s=[float(e) for e in a.get("exposure_s", [1.0] * bins)],
        day_levels=[float(v) for v in levels],
        shape_estimator=str(a.get("shape_estimator", "moments")),
    )
    if len(arrivals.gaps) != bins or len(arrivals.exposure_s) != bins:
        raise ParamsError(f"{aw}: 'gaps' and 'exposure_s' need one value per bin ({bins})")
    conv = _obj(data, "conversation", where)
    cw = f"{where}.conversation"
    turns = distribution_from_dict(conv.get("turns"), f"{cw}.turns")
    if turns.quantile(0.0) < 1:
        raise ParamsError(f"{cw}.turns: conversations have at least 1 turn")
    think = conv.get("think_s")
    lengths = _obj(data, "lengths", where)
    lw = f"{where}.lengths"
    inc = lengths.get("increment_by_history")
    fail = _obj(data, "failures", where)
    el = _obj(data, "elapsed", where)
    ew = f"{where}.elapsed"
    return ClassParams(
        log_type=_str(data, "log_type", where),
        model=_str(data, "model", where),
        rows=_int(data, "rows", where, low=0),
        conversations_count=int(data.get("conversations", 0)),
        arrivals=arrivals,
        conversations=Conversations(
            turns=turns,
            think_s=None if think is None else distribution_from_dict(think, f"{cw}.think_s"),
        ),
        lengths=Lengths(
            first_request=distribution_from_dict(
                lengths.get("first_request"), f"{lw}.first_request"
            ),
            response=bucketed_from_dict(
                lengths.get("response_by_request"), f"{lw}.response_by_request"
            ),
            increment=None
            if inc is None
            else bucketed_from_dict(inc, f"{lw}.increment_by_history"),
            max_request=_int(lengths, "max_request", lw, low=1),
        ),
        failures=Failures(
            rate=_prob(fail, "rate", f"{where}.failures"),
            zero_request_fraction=_prob(fail, "zero_request_fraction", f"{where}.failures"),
        ),
        elapsed=Elapsed(
            intercept_s=_num(el, "intercept_s", ew),
            per_response_token_s=_num(el, "per_response_token_s", ew),
            residual_s=distribution_from_dict(el.get("residual_s"), f"{ew}.residual_s"),
            source=str(el.get("source", "fitted")),
        ),
    )


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _obj(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ParamsError(f"{_path(where, key)}: expected an object")
    return value


def _list(data: dict[str, Any], key: str, where: str, n: int) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or len(value) != n:
        raise ParamsError(f"{_path(where, key)}: expected a list of {n} values (one per bin)")
    return value


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _num(data: dict[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if not _is_num(value):
        raise ParamsError(f"{_path(where, key)}: expected a number, found {value!r}")
    return float(value)


def _int(data: dict[str, Any], key: str, where: str, low: int) -> int:
    value = data.get(key)
    if not _is_num(value) or value != int(value) or value < low:
        raise ParamsError(f"{_path(where, key)}: expected a whole number >= {low}, found {value!r}")
    return int(value)


def _prob(data: dict[str, Any], key: str, where: str) -> float:
    value = _num(data, key, where)
    if not 0.0 <= value <= 1.0:
        raise ParamsError(f"{_path(where, key)}: expected a fraction in [0, 1], found {value}")
    return value


def _str(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ParamsError(f"{_path(where, key)}: expected a non-empty string")
    return value


_NUMBER_LIST = re.compile(r"\[\n\s*((?:-?[\d.eE+-]+|null),?\n\s*)+\]")


def _compact_number_lists(text: str) -> str:
    """Put lists of plain numbers on one line, so a 72-bin profile reads as one row."""

    def join(m: re.Match[str]) -> str:
        items = [s.strip().rstrip(",") for s in m.group(0)[1:-1].split("\n") if s.strip()]
        return "[" + ", ".join(items) + "]"

    return _NUMBER_LIST.sub(join, text)


__all__ = [
    "Arrivals",
    "ClassParams",
    "Conversations",
    "Elapsed",
    "Failures",
    "Lengths",
    "Params",
    "ParamsError",
    "Quantiles",
    "Source",
    "load_params",
    "save_params",
]
