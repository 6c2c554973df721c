"""Trace provisioning: fit a BurstGPT trace, synthesize traces from the fit, download releases.

    params = fit_trace("BurstGPT_1.csv", window="first:7d")      # the workload model
    save_params(params, "params.json")
    trace = synthesize(params, rate=10 * params.mean_rate, duration_s=3600, seed=1)
    write_trace(trace, "synth.csv")                              # BurstGPT_3 schema
    download("BurstGPT_3", "data/")                              # resumable, sha256-verified

Pure numpy/pandas/scipy: no Locust import.
"""

from __future__ import annotations

from .download import DEFAULT_BASE_URL, RELEASE_FILES, DownloadError, Pin, download
from .fit import FitOptions, fit_trace, fit_workload
from .params import Params, ParamsError, load_params, save_params
from .presets import load_preset, preset_names
from .synth import SynthTrace, synthesize, write_trace

__all__ = [
    "DEFAULT_BASE_URL",
    "RELEASE_FILES",
    "DownloadError",
    "FitOptions",
    "Params",
    "ParamsError",
    "Pin",
    "SynthTrace",
    "download",
    "fit_trace",
    "fit_workload",
    "load_params",
    "load_preset",
    "preset_names",
    "save_params",
    "synthesize",
    "write_trace",
]
