"""The plugin's part of Locust's web UI: an "LLM" tab and a live charts page.

The tab is a Locust "extended tab" (a table) filled from ``extended_stats`` added to the
``/stats/requests`` JSON the UI polls; its numbers come from the run report's exact store, the same
one that writes ``summary.json``. The charts page and its data live under ``/burstgpt/`` and, like
every route the plugin adds, require login when Locust's ``--web-login`` is on.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

from flask import Response, request, send_file

from locust_burstgpt.plugin._finish import live_summary
from locust_burstgpt.plugin._state import state_of

log = logging.getLogger("locust_burstgpt")

TAB_KEY = "llm"
COLUMNS = [
    ("class", "Class"),
    ("scheduled", "Scheduled"),
    ("sent", "Sent"),
    ("in_flight", "In flight"),
    ("not_sent", "Not sent"),
    ("ok", "OK"),
    ("failed", "Failed"),
    ("ttft_p50", "TTFT p50 (ms)"),
    ("ttft_p90", "TTFT p90"),
    ("ttft_p99", "TTFT p99"),
    ("itl_p50", "ITL p50 (ms)"),
    ("itl_p99", "ITL p99"),
    ("tpot_p50", "TPOT p50 (ms)"),
    ("tpot_p99", "TPOT p99"),
    ("e2e_p50", "E2E p50 (ms)"),
    ("e2e_p99", "E2E p99"),
    ("lateness_p99", "Lateness p99 (ms)"),
    ("output_tokens_per_s", "Out tok/s"),
    ("goodput", "Goodput"),
]


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v * 1000:.1f}"


def tab_rows(role: Any) -> list[dict[str, Any]]:
    """One row per trace class plus "All", each with its books (scheduled, sent, in flight, not sent)."""
    report = role.report
    if report is None:
        return []
    summary = report.metrics.summary(duration_s=role.duration_s())
    books = role.live_books()
    per_class = books["by_class"]
    rows = []
    for label, s in summary.items():
        good = (s.get("goodput") or {}).get("fraction")
        tps = s.get("output_tokens_per_s")
        b = books if label == "All" else per_class.get(label, {})
        rows.append(
            {
                "class": label,
                "scheduled": b.get("scheduled", ""),
                "sent": b.get("sent", ""),
                "in_flight": b.get("in_flight", ""),
                "not_sent": b.get("not_sent", ""),
                "ok": s["ok"],
                "failed": s["requests"] - s["ok"] - s["outcomes"].get("cancelled", 0),
                "ttft_p50": _ms(s["ttft"]["p50"]),
                "ttft_p90": _ms(s["ttft"]["p90"]),
                "ttft_p99": _ms(s["ttft"]["p99"]),
                "itl_p50": _ms(s["itl"]["p50"]),
                "itl_p99": _ms(s["itl"]["p99"]),
                "tpot_p50": _ms(s["tpot"]["p50"]),
                "tpot_p99": _ms(s["tpot"]["p99"]),
                "e2e_p50": _ms(s["e2e"]["p50"]),
                "e2e_p99": _ms(s["e2e"]["p99"]),
                "lateness_p99": _ms(s["lateness"]["p99"]),
                "output_tokens_per_s": "" if tps is None else f"{tps:.1f}",
                "goodput": "" if good is None else f"{good:.3f}",
            }
        )
    return rows


def _hide_secrets(web_ui: Any) -> None:
    """Locust writes every extra option's value into the page, secrets included (it only masks the
    input): replace set secrets by a placeholder, which the settings map back to the real value."""
    from locust_burstgpt.settings import SECRET_PLACEHOLDER

    def scrub() -> None:
        for opt in (web_ui.template_args.get("extra_options") or {}).values():
            if opt.get("is_secret") and opt.get("default_value"):
                opt["default_value"] = SECRET_PLACEHOLDER

    update = web_ui.update_template_args

    def update_and_scrub() -> None:
        update()
        scrub()

    web_ui.update_template_args = update_and_scrub
    scrub()


def install(environment: Any) -> None:
    web_ui = environment.web_ui
    if web_ui is None:
        return
    state = state_of(environment)
    _hide_secrets(web_ui)
    web_ui.template_args.update(
        {
            "extended_tabs": [{"title": "LLM", "key": TAB_KEY}],
            "extended_tables": [
                {"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in COLUMNS]}
            ],
            "extended_csv_files": [
                {"href": "./burstgpt/summary.json", "title": "LLM summary (summary.json)"},
                {"href": "./burstgpt/timeline.csv", "title": "LLM timeline (timeline.csv)"},
                {"href": "./burstgpt/requests.jsonl", "title": "LLM requests (requests.jsonl)"},
                {"href": "./burstgpt/", "title": "LLM live charts"},
            ],
        }
    )
    app = web_ui.app
    auth = web_ui.auth_required_if_enabled

    def reporting() -> Any:
        """The reporting role with a run started, or None."""
        role = state.reporting
        return role if role is not None and role.report is not None else None

    def _rows() -> list[dict[str, Any]]:
        role = reporting()
        return tab_rows(role) if role is not None else []

    @app.after_request
    def _extend_stats(resp: Response) -> Response:
        if request.path != "/stats/requests" or resp.status_code != 200:
            return resp
        try:
            data = resp.get_json()
            data["extended_stats"] = [{"key": TAB_KEY, "data": _rows()}]
            resp.set_data(json.dumps(data))
        except Exception:  # noqa: BLE001 - never break Locust's own stats endpoint
            log.exception("could not add LLM stats")
        return resp

    def static(name: str, mimetype: str) -> Response:
        data = resources.files("locust_burstgpt.webui").joinpath("static", name).read_bytes()
        return Response(data, mimetype=mimetype)

    @app.route("/burstgpt/")
    @auth
    def burstgpt_charts() -> Response:
        return static("charts.html", "text/html")

    @app.route("/burstgpt/charts.js")
    @auth
    def burstgpt_charts_js() -> Response:
        return static("charts.js", "application/javascript")

    @app.route("/burstgpt/timeline.json")
    @auth
    def burstgpt_timeline() -> Response:
        role = reporting()
        if role is None:
            return Response(
                json.dumps({"status": "no run yet", "rows": []}), mimetype="application/json"
            )
        b = role.live_books()
        status = (
            f"run {'ended' if role.finished else 'in progress'}: {state.source.chart_title()}. "
            f"Requests: {b['scheduled']} scheduled, {b['sent']} sent, {b['in_flight']} in flight, "
            f"{b['not_sent']} not sent"
        )
        problems = role.live_problems()
        if problems:
            status += " UNTRUSTWORTHY RUN: " + "; ".join(problems)
        body = {"status": status, "rows": role.report.timeline.rows()}
        return Response(json.dumps(body), mimetype="application/json")

    @app.route("/burstgpt/summary.json")
    @auth
    def burstgpt_summary() -> Response:
        role = reporting()
        body: dict[str, Any] = {"run": None} if role is None else live_summary(role)
        return Response(json.dumps(body, default=str), mimetype="application/json")

    @app.route("/burstgpt/timeline.csv")
    @auth
    def burstgpt_timeline_csv() -> Response:
        import csv
        import io

        role = reporting()
        rows = role.report.timeline.rows() if role is not None else []
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        return Response(
            buf.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=timeline.csv"},
        )

    @app.route("/burstgpt/requests.jsonl")
    @auth
    def burstgpt_requests() -> Any:
        role = reporting()
        report = role.report if role is not None else None
        if report is None or report.dir is None:
            return Response(
                "No report directory: start the run with --burstgpt-report DIR.\n",
                status=404,
                mimetype="text/plain",
            )
        report.flush()
        return send_file(
            report.dir / "requests.jsonl", mimetype="application/x-ndjson", as_attachment=True
        )
