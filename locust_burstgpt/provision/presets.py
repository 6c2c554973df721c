"""Named workload models for ``burstgpt synth --preset``.

* ``paper-demo``: the BurstGPT paper's modeled-scaling demo defaults: Gamma inter-arrivals with
  shape 0.5 and a mean gap of 1 s (1 request/s, CV 1.41, no time-of-day profile), request and
  response tokens each Zipf(1.1) on [1, 1023], independent single requests, no failures.
* ``burstgpt1-week1`` and ``burstgpt3-slice``: ``burstgpt fit`` of the two genuine BurstGPT
  slices bundled with the package, stored as JSON next to this module (a test re-fits them).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..trace import service_model
from .distributions import Bucketed, Pmf, Quantiles, Zipf
from .params import (
    DAY_S,
    Arrivals,
    ClassParams,
    Conversations,
    Elapsed,
    Failures,
    Lengths,
    Params,
    ParamsError,
    Source,
    load_params,
)

_DATA = Path(__file__).resolve().parent.parent / "data"

#: Fitted presets: name -> (bundled trace it is fitted from, description).
FITTED: dict[str, tuple[str, str]] = {
    "burstgpt1-week1": (
        "BurstGPT_1_first7days_rows0000001-0019431.csv",
        "fitted on the first 7 days of BurstGPT_1 (19,431 rows; 98 % Conversation log)",
    ),
    "burstgpt3-slice": (
        "BurstGPT_3_first400rows_gitm.csv",
        "fitted on the first 400 rows of BurstGPT_3 (11.5 h; 135 sessions)",
    ),
}
PAPER_DEMO = "paper-demo"
DESCRIPTIONS: dict[str, str] = {
    PAPER_DEMO: "the paper's demo: Gamma shape 0.5, mean gap 1 s, Zipf(1.1) lengths on [1, 1023]",
    **{name: desc for name, (_, desc) in FITTED.items()},
}


def preset_names() -> list[str]:
    return list(DESCRIPTIONS)


def load_preset(name: str) -> Params:
    """The named preset; ``ParamsError`` lists the valid names for an unknown one."""
    if name == PAPER_DEMO:
        return paper_demo()
    if name not in FITTED:
        raise ParamsError(f"preset {name!r}: expected one of {', '.join(preset_names())}")
    ref = resources.files("locust_burstgpt.provision") / "presets" / f"{name}.json"
    with resources.as_file(ref) as path:
        return load_params(path)


def preset_source(name: str) -> Path:
    """The bundled trace a fitted preset comes from."""
    return _DATA / FITTED[name][0]


def fit_preset(name: str) -> Params:
    """Fit a fitted preset afresh from its bundled trace (how the stored JSON was made)."""
    from .fit import fit_trace

    if name not in FITTED:
        raise ParamsError(
            f"preset {name!r} is not fitted from a bundled trace; fitted presets: {', '.join(FITTED)}"
        )
    return fit_trace(preset_source(name))


def paper_demo(bin_s: int = 1200) -> Params:
    """The paper's demo generator settings as a one-class model (1 request/s on average)."""
    bins = DAY_S // bin_s
    zipf = Zipf(theta=1.1, low=1, high=1023)
    a, b = service_model.COEFFICIENTS["ChatGPT"]
    demo = ClassParams(
        log_type="API log",
        model="ChatGPT",
        rows=3600,
        conversations_count=3600,
        arrivals=Arrivals(
            rate_per_s=[1.0] * bins,
            shape=[0.5] * bins,
            gaps=[0] * bins,
            exposure_s=[float(bin_s)] * bins,
            day_levels=[1.0],
            shape_estimator="preset",
        ),
        conversations=Conversations(turns=Pmf((1,), (1.0,))),
        lengths=Lengths(first_request=zipf, response=Bucketed((), (zipf,)), max_request=1023),
        failures=Failures(rate=0.0, zero_request_fraction=1.0),
        elapsed=Elapsed(
            a,
            b,
            Quantiles((0.0,)),
            "default: least-squares line fitted on the bundled BurstGPT_3 rows",
        ),
    )
    return Params(
        source=Source(
            name="paper-demo",
            sha256=None,
            rows=3600,
            window="preset",
            window_start_s=0.0,
            window_end_s=3600.0,
        ),
        bin_s=bin_s,
        start_s=0.0,
        classes=[demo],
        generator="locust-burstgpt preset",
        notes=[
            "BurstGPT paper, modeled scaling demo: Gamma(shape 0.5, scale 2 s), i.e. a mean gap of "
            "1 s; request and response tokens Zipf(theta 1.1) truncated to [1, 1023], independent"
        ],
    )
