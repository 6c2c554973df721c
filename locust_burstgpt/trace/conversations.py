"""Conversations: rows sharing a Session ID, in time order; every other row is a one-turn one.

Everything here is column arithmetic on numpy arrays, kept in row (= time) order: one-turn
conversations (about 96 % of BurstGPT_3) need no regrouping at all, and only the session rows
are sorted into groups. ``Conversation``/``Turn`` records are built only when a caller asks for
one conversation, so a 5-million-row trace is grouped in a fraction of a second.

Replay model (product semantics): turn k+1 is sent ``think_k`` after turn k completes, with
``think_k = max(0, ts[k+1] - (ts[k] + elapsed[k]))`` in trace seconds, divided by the speedup.
In the curves, turn k takes ``elapsed[k]`` (never scaled: the server decides it), so turn k is
scheduled at ``start_s + sum_{j<k} (elapsed_j + think_j)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Turn:
    """One request of a conversation, as the replay should send it."""

    row: int                 # 1-based data row in the source file
    index: int               # 0-based turn index within the conversation
    trace_offset_s: float    # the row's timestamp minus window start, / speedup (informative)
    request_tokens: int      # includes the conversation history, as recorded
    response_tokens: int
    elapsed_s: float         # recorded Elapsed time, or the service-time model's estimate
    elapsed_estimated: bool
    think_s: float           # scaled think time before the next turn; 0.0 on the last turn
    failed: bool             # response_tokens == 0
    model: str = ""          # this row's model (a few sessions switch model mid-way)
    log_type: str = ""


@dataclass(frozen=True)
class Conversation:
    """A conversation to replay; ``start_s`` is its first turn's scaled offset from window start."""

    id: str
    model: str
    log_type: str
    start_s: float
    turns: tuple[Turn, ...]

    @property
    def scheduled_offsets(self) -> tuple[float, ...]:
        """Scheduled start of each turn under the replay model (recorded/estimated service)."""
        out, t = [], self.start_s
        for turn in self.turns:
            out.append(t)
            t += turn.elapsed_s + turn.think_s
        return tuple(out)


@dataclass
class RowArrays:
    """The selected rows, in file (= time) order, as plain arrays (views where possible)."""

    positions: np.ndarray | slice  # 0-based file positions of the rows (row = position + 1)
    timestamp: np.ndarray     # float64 trace seconds
    session_codes: np.ndarray  # int64 code per distinct Session ID, -1 where absent
    session_names: np.ndarray  # object array: code -> Session ID text
    elapsed: np.ndarray       # float64, recorded or estimated
    estimated: np.ndarray     # bool
    request_tokens: np.ndarray
    response_tokens: np.ndarray
    model_codes: np.ndarray   # codes into ``models``
    log_codes: np.ndarray     # codes into ``log_types``
    models: list[str]
    log_types: list[str]

    def row(self, k: int) -> int:
        """1-based data row of selected row ``k``."""
        if isinstance(self.positions, slice):
            return int(self.positions.start) + k + 1
        return int(self.positions[k]) + 1


class ConversationTable:
    """All conversations of a row selection, ordered by first-turn time (ties: file order).

    Per row (selection order): ``req_start``, the scheduled start of the request (replay model,
    scaled offset from the window start). Per conversation: ``first`` (row index of its first
    turn), ``start``, ``duration`` (first submission to last completion), ``lengths`` (on
    demand) and ``group_of(i)`` (-1 for one-turn conversations, else a session group). Per session row, in
    group order: ``group_rows``, ``group_think`` (scaled) and ``group_sched`` (offset from the
    conversation's start); one-turn conversations have no think time and offset 0.
    """

    def __init__(self, rows: RowArrays, *, window_start: float, speedup: float) -> None:
        self.r = rows
        self.window_start = window_start
        self.speedup = speedup
        n = rows.timestamp.size
        ts = rows.timestamp
        el = rows.elapsed
        req_start = ts - window_start
        if speedup != 1:
            req_start /= speedup

        codes = rows.session_codes
        in_session = np.flatnonzero(codes >= 0)
        s_codes = codes[in_session]
        order = np.argsort(s_codes, kind="stable")         # groups, time order within each
        grows = in_session[order]                           # session rows grouped by session
        gcodes = s_codes[order]
        if grows.size:
            heads = np.flatnonzero(np.concatenate(([True], gcodes[1:] != gcodes[:-1])))
        else:
            heads = np.empty(0, dtype=np.int64)
        self.group_offsets = np.concatenate((heads, [grows.size])).astype(np.int64)
        self.group_rows = grows
        self.group_code = gcodes[heads]
        glen = np.diff(self.group_offsets)
        gfirst = grows[heads]

        is_first = np.ones(n, dtype=bool)
        is_first[in_session] = False
        is_first[gfirst] = True
        self.first = np.flatnonzero(is_first)               # conversation order = first-row order
        del is_first
        gconv = np.searchsorted(self.first, gfirst)         # conversation index of each group
        by_conv = np.argsort(gconv)
        self._gconv_sorted = gconv[by_conv]                 # for group lookups by conversation
        self._group_by_conv = by_conv
        self.start = req_start[self.first]
        self.duration = el[self.first]

        # Think times and scheduled offsets exist only for session rows (grouped order).
        self.group_think = np.zeros(grows.size)
        self.group_sched = np.zeros(grows.size)
        if grows.size:
            gts, gel = ts[grows], el[grows]
            gap = np.empty(grows.size)
            gap[:-1] = gts[1:] - gts[:-1] - gel[:-1]
            gap[self.group_offsets[1:] - 1] = 0.0
            self.group_think = np.maximum(gap, 0.0) / speedup
            step = gel + self.group_think
            before = np.cumsum(step) - step
            self.group_sched = before - np.repeat(before[heads], glen)
            last = self.group_offsets[1:] - 1
            self.duration[gconv] = self.group_sched[last] + gel[last]
            req_start[grows] = np.repeat(self.start[gconv], glen) + self.group_sched
        self.req_start = req_start
        self._gconv = gconv

    @property
    def n_conversations(self) -> int:
        return int(self.first.size)

    @property
    def n_turns(self) -> int:
        return int(self.r.timestamp.size)

    @property
    def estimated(self) -> bool:
        return bool(self.r.estimated.any())

    def group_of(self, i: int) -> int:
        """Session group of conversation ``i``, or -1 for a one-turn conversation."""
        j = int(np.searchsorted(self._gconv_sorted, i))
        if j < self._gconv_sorted.size and self._gconv_sorted[j] == i:
            return int(self._group_by_conv[j])
        return -1

    @cached_property
    def lengths(self) -> np.ndarray:
        """Number of turns of every conversation."""
        out = np.ones(self.first.size, dtype=np.int64)
        out[self._gconv] = np.diff(self.group_offsets)
        return out

    @cached_property
    def conv_of_row(self) -> np.ndarray:
        """Conversation index of every selected row."""
        out = np.empty(self.n_turns, dtype=np.int64)
        out[self.first] = np.arange(self.first.size)
        if self.group_rows.size:
            out[self.group_rows] = np.repeat(self._gconv, np.diff(self.group_offsets))
        return out

    def think_trace(self) -> np.ndarray:
        """Unscaled think time (trace seconds) of every turn that has a next turn, grouped order."""
        return self.group_think * self.speedup

    def conversation(self, i: int, *, start_s: float | None = None, copy: int = 0) -> Conversation:
        """Build the record for conversation ``i`` (optionally placed at ``start_s``, as a copy)."""
        r = self.r
        base = float(self.start[i])
        start = base if start_s is None else float(start_s)
        shift = start - base
        g = self.group_of(i)
        if g < 0:
            ks, thinks = [int(self.first[i])], [0.0]
        else:
            lo, hi = int(self.group_offsets[g]), int(self.group_offsets[g + 1])
            ks, thinks = self.group_rows[lo:hi].tolist(), self.group_think[lo:hi].tolist()
        turns = tuple(
            Turn(
                row=r.row(k),
                index=j,
                trace_offset_s=(float(r.timestamp[k]) - self.window_start) / self.speedup + shift,
                request_tokens=int(r.request_tokens[k]),
                response_tokens=int(r.response_tokens[k]),
                elapsed_s=float(r.elapsed[k]),
                elapsed_estimated=bool(r.estimated[k]),
                think_s=float(think),
                failed=bool(r.response_tokens[k] == 0),
                model=r.models[r.model_codes[k]],
                log_type=r.log_types[r.log_codes[k]],
            )
            for j, (k, think) in enumerate(zip(ks, thinks, strict=True))
        )
        cid = str(r.session_names[self.group_code[g]]) if g >= 0 else f"row-{turns[0].row}"
        if copy:
            cid = f"{cid}#copy{copy}"
        return Conversation(id=cid, model=turns[0].model, log_type=turns[0].log_type,
                            start_s=start, turns=turns)
