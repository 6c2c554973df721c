"""Trace provisioning: fit a BurstGPT trace, synthesize traces from the fit, download releases."""
