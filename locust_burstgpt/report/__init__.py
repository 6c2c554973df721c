"""Run reports: one entry per scheduled request, the per-second timeline, summary and charts.

No Locust import: the plugin feeds entries in; these modules only count, write and draw.
"""
