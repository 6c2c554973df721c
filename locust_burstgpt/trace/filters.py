"""Row filters: model(s), log type(s), and the failed-row policy (as boolean masks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

FailedPolicy = Literal["skip", "send"]


def category_mask(
    values: pd.Series, wanted: Sequence[str] | str | None, what: str
) -> np.ndarray | None:
    """Rows whose category is in ``wanted`` (None: no filter); unknown names are an error.

    Names match case-insensitively; a string is read as a comma-separated list.
    """
    if wanted is None:
        return None
    if isinstance(wanted, str):
        wanted = [w.strip() for w in wanted.split(",") if w.strip()]
    present = [str(c) for c in values.cat.categories]
    lookup = {p.casefold(): p for p in present}
    chosen = []
    for name in wanted:
        match = lookup.get(str(name).strip().casefold())
        if match is None:
            raise ValueError(f"{what} {name!r} is not in the trace; it has: {', '.join(present)}")
        chosen.append(match)
    codes = np.flatnonzero(np.isin(values.cat.categories.astype(str), chosen))
    return np.isin(values.cat.codes.to_numpy(), codes)


def failed_mask(response_tokens: np.ndarray) -> np.ndarray:
    """Failed rows: zero response tokens (BurstGPT's own definition)."""
    return response_tokens == 0


def check_policy(failed: str) -> FailedPolicy:
    if failed not in ("skip", "send"):
        raise ValueError(f"failed={failed!r}: expected 'skip' (drop failed rows) or 'send'")
    return failed  # type: ignore[return-value]


def combine(*masks: np.ndarray | None) -> np.ndarray | None:
    """AND of the masks that are not None (None when all are)."""
    out = None
    for m in masks:
        if m is not None:
            out = m if out is None else out & m
    return out
