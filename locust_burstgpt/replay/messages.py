"""The messages between the master and its workers in a distributed replay, one dataclass each.

Locust carries a message as ``(type, data)`` with msgpack-safe data; ``to_data``/``from_data`` are
the only places that know the wire form. The order of a run: the master sends ``Assign`` in
``test_start`` (so before Locust's spawn message); each worker ships ``Entries`` every second and
once more after draining; on ``test_stopping`` the master sends ``StopRequest`` and each worker
answers with ``Final`` (after its last ``Entries``). ``WorkerError`` reports a worker that cannot
replay; ``AssignMore`` hands a lost worker's unstarted conversations to a survivor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from locust_burstgpt.replay.ledger import Ledger


def _pack_indices(indices: Any) -> bytes:
    return np.asarray(indices, dtype="<i8").tobytes()


def _unpack_indices(data: bytes) -> list[int]:
    return np.frombuffer(data, dtype="<i8").tolist()


@dataclass
class Assign:
    """Master -> worker: the conversations it replays, the start time, the workload's identity."""

    TYPE: ClassVar[str] = "burstgpt_assign"
    indices: list[int]
    epoch_wall: float
    fingerprint: list[Any]
    worker: int
    workers: int

    def to_data(self) -> dict[str, Any]:
        return {
            "indices": _pack_indices(self.indices),
            "epoch_wall": self.epoch_wall,
            "fingerprint": list(self.fingerprint),
            "worker": self.worker,
            "workers": self.workers,
        }

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Assign:
        return cls(
            _unpack_indices(d["indices"]),
            float(d["epoch_wall"]),
            list(d["fingerprint"]),
            int(d["worker"]),
            int(d["workers"]),
        )


@dataclass
class AssignMore:
    """Master -> worker: conversations of a lost worker that had not started."""

    TYPE: ClassVar[str] = "burstgpt_assign_more"
    indices: list[int]

    def to_data(self) -> dict[str, Any]:
        return {"indices": _pack_indices(self.indices)}

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> AssignMore:
        return cls(_unpack_indices(d["indices"]))


@dataclass
class StopRequest:
    """Master -> worker: stop releasing, drain, then send the final books."""

    TYPE: ClassVar[str] = "burstgpt_stop"
    reason: str = "stopped"

    def to_data(self) -> str:
        return self.reason

    @classmethod
    def from_data(cls, d: Any) -> StopRequest:
        return cls(str(d or "stopped"))


@dataclass
class Entries:
    """Worker -> master, every second: finished requests (``TurnResult.to_json``), the worker's
    books so far, its conversations in progress, and its event loop's lag per second
    (``LoopLagProbe.take``)."""

    TYPE: ClassVar[str] = "burstgpt_entries"
    results: list[dict[str, Any]] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    loop_lag: list[Any] = field(default_factory=list)
    in_progress: int = 0

    def to_data(self) -> dict[str, Any]:
        return {
            "entries": self.results,
            "ledger": self.ledger.to_dict(),
            "loop_lag": self.loop_lag,
            "in_progress": self.in_progress,
        }

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Entries:
        return cls(
            list(d.get("entries") or ()),
            Ledger.from_dict(d.get("ledger") or {}),
            list(d.get("loop_lag") or ()),
            int(d.get("in_progress") or 0),
        )


@dataclass
class Final:
    """Worker -> master: the worker's final books, after its last ``Entries``."""

    TYPE: ClassVar[str] = "burstgpt_final"
    ledger: Ledger

    def to_data(self) -> dict[str, Any]:
        return {"ledger": self.ledger.to_dict()}

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> Final:
        return cls(Ledger.from_dict(d["ledger"]))


@dataclass
class WorkerError:
    """Worker -> master: the worker cannot replay (one line saying why)."""

    TYPE: ClassVar[str] = "burstgpt_error"
    message: str

    def to_data(self) -> str:
        return self.message

    @classmethod
    def from_data(cls, d: Any) -> WorkerError:
        return cls(str(d))
