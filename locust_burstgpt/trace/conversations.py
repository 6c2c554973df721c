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

from .curves import ArrivalCounter, InProgressCounter


@dataclass(frozen=True)
class Turn:
    """One request of a conversation, as the replay should send it."""

    row: int  # 1-based data row in the source file
    index: int  # 0-based turn index within the conversation
    trace_offset_s: float  # the row's timestamp minus window start, / speedup (informative)
    request_tokens: int  # includes the conversation history, as recorded
    response_tokens: int
    elapsed_s: float  # recorded Elapsed time, or the service-time model's estimate
    elapsed_estimated: bool
    think_s: float  # scaled think time before the next turn; 0.0 on the last turn
    failed: bool  # response_tokens == 0
    model: str = ""  # this row's model (a few sessions switch model mid-way)
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
    """The rows of a window: views of the file's columns (a contiguous run of rows) plus an
    optional ``included`` mask for rows dropped by filters or the failed-row policy, so nothing
    is copied to select rows."""

    first_position: int  # 0-based file position of row 0 here (row number = that + k + 1)
    timestamp: np.ndarray  # float64 trace seconds
    session_codes: np.ndarray  # int32 code per distinct Session ID, -1 where absent
    session_names: np.ndarray  # object array: code -> Session ID text
    elapsed: np.ndarray  # float64, recorded or estimated
    estimated: np.ndarray  # bool
    request_tokens: np.ndarray
    response_tokens: np.ndarray
    model_codes: np.ndarray  # codes into ``models``
    log_codes: np.ndarray  # codes into ``log_types``
    models: list[str]
    log_types: list[str]
    included: np.ndarray | None = None  # None: every row is replayed

    def row(self, k: int) -> int:
        """1-based data row (in the file) of row ``k`` here."""
        return self.first_position + k + 1

    def used(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per row here) restricted to the replayed rows."""
        return values if self.included is None else values[self.included]

    @property
    def n_used(self) -> int:
        return int(
            self.timestamp.size if self.included is None else np.count_nonzero(self.included)
        )


class ConversationTable:
    """All conversations of a row selection, ordered by first-turn time (ties: file order).

    Stored column-wise in row (= time) order, so nothing is regrouped for one-turn
    conversations. Per row: ``is_first`` (first turn of its conversation), ``single`` (a
    replayed one-turn conversation). Per conversation: ``start`` (sorted). Per session row
    (replayed rows with a Session ID), in conversation-then-turn order: ``group_rows``,
    ``group_think`` (scaled), ``group_sched`` (offset from the conversation start),
    ``group_req_start``, ``group_elapsed``; per session: ``group_offsets``, ``group_start``,
    ``group_duration``. Row- or conversation-indexed arrays that only some callers need
    (``req_start``, ``first``, ``duration``, ``lengths``, ``conv_of_row``) are built on first use.
    """

    def __init__(self, rows: RowArrays, *, window_start: float, speedup: float) -> None:
        self.r = rows
        self.window_start = window_start
        self.speedup = speedup
        ts = rows.timestamp
        el = rows.elapsed

        codes = rows.session_codes
        self.single = codes < 0
        has_session = ~self.single
        if rows.included is not None:
            self.single &= rows.included
            has_session &= rows.included
        in_session = np.flatnonzero(has_session)
        del has_session
        s_codes = codes[in_session]
        order = np.argsort(s_codes, kind="stable")  # groups, time order within each
        grows = in_session[order]  # session rows grouped by session
        gcodes = s_codes[order]
        if grows.size:
            heads = np.flatnonzero(np.concatenate(([True], gcodes[1:] != gcodes[:-1])))
        else:
            heads = np.empty(0, dtype=np.int64)
        self.group_offsets = np.concatenate((heads, [grows.size])).astype(np.int64)
        self.group_rows = grows
        self.group_code = gcodes[heads]
        glen = np.diff(self.group_offsets)
        self.group_first = grows[heads]

        self.is_first = self.single.copy()
        self.is_first[self.group_first] = True
        self.start = self.offset_of(ts[self.is_first], inplace=True)  # in first-row order

        # Think times and scheduled offsets exist only for session rows (grouped order).
        self.group_think = np.zeros(grows.size)
        self.group_sched = np.zeros(grows.size)
        self.group_start = self.offset_of(ts[self.group_first], inplace=True)
        self.group_duration = np.zeros(heads.size)
        self.group_elapsed = el[grows]
        if grows.size:
            gts = ts[grows]
            gel = self.group_elapsed
            gap = np.empty(grows.size)
            gap[:-1] = gts[1:] - gts[:-1] - gel[:-1]
            last = self.group_offsets[1:] - 1
            gap[last] = 0.0
            self.group_think = np.maximum(gap, 0.0) / speedup
            step = gel + self.group_think
            before = np.cumsum(step) - step
            self.group_sched = before - np.repeat(before[heads], glen)
            self.group_duration = self.group_sched[last] + gel[last]
        self.group_req_start = np.repeat(self.group_start, glen) + self.group_sched

    def offset_of(self, timestamps: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """Scaled offsets from the window start of trace timestamps (in place if asked)."""
        out = np.subtract(timestamps, self.window_start, out=timestamps if inplace else None)
        if self.speedup != 1:
            out /= self.speedup
        return out

    @cached_property
    def req_start(self) -> np.ndarray:
        """Scheduled start of every row's request under the replay model (NaN if not replayed)."""
        out = self.offset_of(self.r.timestamp)
        if self.r.included is not None:
            out[~self.r.included] = np.nan
        out[self.group_rows] = self.group_req_start
        return out

    def add_singles(
        self, counter: InProgressCounter | ArrivalCounter, arrivals: ArrivalCounter | None = None
    ) -> None:
        """Add the one-turn conversations (= their requests) to a curve counter (and their
        starts to ``arrivals``, in the same pass)."""
        if isinstance(counter, ArrivalCounter):
            counter.add(
                self.r.timestamp, where=self.single, offset=self.window_start, scale=self.speedup
            )
        else:
            counter.add(
                self.r.timestamp,
                self.r.elapsed,
                where=self.single,
                offset=self.window_start,
                scale=self.speedup,
                arrivals=arrivals,
            )

    @property
    def n_conversations(self) -> int:
        return int(self.start.size)

    @property
    def n_turns(self) -> int:
        return self.r.n_used

    @property
    def estimated(self) -> bool:
        return bool(self.r.used(self.r.estimated).any())

    @cached_property
    def first(self) -> np.ndarray:
        """Row index of every conversation's first turn (conversation order)."""
        return np.flatnonzero(self.is_first)

    @cached_property
    def _group_conv(self) -> np.ndarray:
        """Conversation index of every session group."""
        return np.searchsorted(self.first, self.group_first)

    @cached_property
    def _groups_by_conv(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self._group_conv)
        return self._group_conv[order], order

    @cached_property
    def duration(self) -> np.ndarray:
        """First submission to last completion of every conversation (replay model)."""
        out = self.r.elapsed[self.first]
        out[self._group_conv] = self.group_duration
        return out

    @cached_property
    def lengths(self) -> np.ndarray:
        """Number of turns of every conversation."""
        out = np.ones(self.n_conversations, dtype=np.int64)
        out[self._group_conv] = np.diff(self.group_offsets)
        return out

    @cached_property
    def conv_of_row(self) -> np.ndarray:
        """Conversation index of every row (-1 for rows that are not replayed)."""
        out = np.cumsum(self.is_first) - 1
        if self.r.included is not None:
            out[~self.r.included] = -1
        if self.group_rows.size:
            out[self.group_rows] = np.repeat(self._group_conv, np.diff(self.group_offsets))
        return out

    def group_of(self, i: int) -> int:
        """Session group of conversation ``i``, or -1 for a one-turn conversation."""
        convs, groups = self._groups_by_conv
        j = int(np.searchsorted(convs, i))
        if j < convs.size and convs[j] == i:
            return int(groups[j])
        return -1

    def add_conversations(self, counter: InProgressCounter) -> None:
        """Add every conversation's [start, start + duration) to a curve counter."""
        self.add_singles(counter)
        counter.add(self.group_start, self.group_duration)

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
        return Conversation(
            id=cid, model=turns[0].model, log_type=turns[0].log_type, start_s=start, turns=turns
        )
