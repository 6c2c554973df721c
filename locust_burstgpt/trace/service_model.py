"""Service-time estimate for traces without ``Elapsed time`` (BurstGPT_1 and _2).

Model: ``elapsed = a[model] + b[model] * response_tokens`` seconds, an ordinary least-squares
line per model, fitted on the genuine BurstGPT_3 rows bundled with the package (data rows 1-400
of BurstGPT_3.csv, release v2.0), using the 399 rows with Response tokens > 0. ``fit()`` below
is exactly how the constants were produced; a test re-fits them from the bundled file.

    ChatGPT: a = 1.1007, b = 0.010925 s/token  (n = 304, R^2 = 0.65, RMSE 1.2 s)
    GPT-4:   a = 0.2785, b = 0.115927 s/token  (n = 95,  R^2 = 0.75, RMSE 16.6 s)

Any other model name uses the ChatGPT line. A failed row (0 response tokens) gets the intercept.
Curves built from estimated service times are flagged ``estimated`` everywhere they are shown.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: (intercept s, slope s per response token) per BurstGPT model name; see the module docstring.
COEFFICIENTS: Mapping[str, tuple[float, float]] = {
    "ChatGPT": (1.1007334, 0.010924662),
    "GPT-4": (0.27848936, 0.11592693),
}
FALLBACK_MODEL = "ChatGPT"


def estimate(model: pd.Categorical | pd.Series, response_tokens: np.ndarray) -> np.ndarray:
    """Estimated service seconds per row (vectorised over the model categories)."""
    cat = pd.Categorical(model)
    codes = cat.codes
    a_by_code = np.empty(len(cat.categories) + 1)
    b_by_code = np.empty(len(cat.categories) + 1)
    for i, name in enumerate(cat.categories):
        a_by_code[i], b_by_code[i] = COEFFICIENTS.get(str(name), COEFFICIENTS[FALLBACK_MODEL])
    a_by_code[-1], b_by_code[-1] = COEFFICIENTS[FALLBACK_MODEL]  # code -1 (missing) -> fallback
    a = a_by_code[codes]
    b = b_by_code[codes]
    return np.maximum(0.0, a + b * np.asarray(response_tokens, dtype=np.float64))


def unknown_models(models: pd.Categorical | pd.Series) -> list[str]:
    """Model names present in ``models`` that have no fitted line (they use ChatGPT's)."""
    present = pd.Series(pd.Categorical(models)).value_counts()
    return sorted(str(m) for m, n in present.items() if n and str(m) not in COEFFICIENTS)


def fit(df: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Least-squares ``elapsed ~ a + b * response_tokens`` per model on rows with a response.

    ``df`` is a normalized ``RawTrace.df`` with recorded Elapsed time (BurstGPT_3).
    """
    rows = df[(df["response_tokens"] > 0) & df["elapsed"].notna()]
    out: dict[str, tuple[float, float]] = {}
    for model, group in rows.groupby("model", observed=True):
        x = group["response_tokens"].to_numpy(dtype=np.float64)
        design = np.column_stack([np.ones_like(x), x])
        (a, b), *_ = np.linalg.lstsq(design, group["elapsed"].to_numpy(), rcond=None)
        out[str(model)] = (float(a), float(b))
    return out
