"""The plugin's part of Locust's web UI: an "LLM" tab and a live charts page.

The tab is a Locust "extended tab" (a table) filled from ``extended_stats`` added to the
``/stats/requests`` JSON the UI polls; its numbers come from the run report's exact store, the same
one that writes ``summary.json``. The charts page and its data live under ``/burstgpt/`` and, like
every route the plugin adds, require login when Locust's ``--web-login`` is on.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from typing import Any

from flask import Response, request, send_file

from locust_burstgpt.plugin import controller

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


def tab_rows() -> list[dict[str, Any]]:
    """One row per trace class plus "All", each with its books (scheduled, sent, in flight, not sent)."""
    ctl = controller.get()
    report = ctl.report
    if report is None:
        return []
    duration = max(1e-9, time.time() - report.epoch_wall)
    summary = report.metrics.summary(duration_s=duration)
    books = live_books()
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


def live_books() -> dict[str, Any]:
    """Scheduled / sent / in flight / not sent, now (the final books once the run has ended)."""
    ctl = controller.get()
    if ctl.last_ledger is not None and ctl.finished:
        led = ctl.last_ledger
    else:
        from locust_burstgpt.plugin.finish import live_ledger

        led = live_ledger(ctl)
    return {
        "scheduled": led.scheduled,
        "sent": led.sent,
        "in_flight": led.in_flight,
        "not_sent": sum(led.not_sent.values()),
        "outcomes": dict(led.outcomes),
        "not_sent_reasons": dict(led.not_sent),
        "balances": led.balances(),
        "by_class": class_books(ctl, led),
    }


def class_books(ctl: Any, led: Any) -> dict[str, dict[str, int]]:
    """The same books per trace class: scheduled from the workload, sent from the processes'
    counters, ended and not sent from the report's entries (in flight = sent - ended)."""
    from locust_burstgpt.plugin.replay import class_label

    report = ctl.report
    scheduled: dict[str, int] = {}
    if ctl.workload is not None:
        for (model, log_type), n in ctl.workload.class_turns().items():
            label = class_label(model, log_type)
            scheduled[label] = scheduled.get(label, 0) + n
    done = (
        {label: cm.counters["requests"] for label, cm in report.metrics.classes.items()}
        if report
        else {}
    )
    not_sent = report.not_sent_by_class if report is not None else {}
    labels = set(scheduled) | set(led.sent_by_class) | set(not_sent)
    return {
        label: {
            "scheduled": scheduled.get(label, 0),
            "sent": led.sent_by_class.get(label, 0),
            "in_flight": max(0, led.sent_by_class.get(label, 0) - done.get(label, 0)),
            "not_sent": not_sent.get(label, 0),
        }
        for label in sorted(labels)
    }


def live_problems() -> list[str]:
    """Why the run cannot be trusted, as known now (the final verdict's list once it has ended)."""
    ctl = controller.get()
    if ctl.last_verdict is not None:
        return list(ctl.last_verdict.trust_problems)
    problems = ctl.health.problems() if ctl.health is not None else []
    if ctl.lost_workers and not (ctl.settings and ctl.settings.reassign_lost):
        problems.append(f"worker(s) lost: {', '.join(sorted(ctl.lost_workers))}")
    return problems


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

    @app.after_request
    def _extend_stats(resp: Response) -> Response:
        if request.path != "/stats/requests" or resp.status_code != 200:
            return resp
        try:
            data = resp.get_json()
            data["extended_stats"] = [{"key": TAB_KEY, "data": tab_rows()}]
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
        ctl = controller.get()
        report = ctl.report
        rows = report.timeline.rows() if report is not None else []
        if report is None:
            status = "no run yet"
        else:
            b = live_books()
            status = (
                f"run {'ended' if ctl.finished else 'in progress'}: {ctl.chart_title()}. Requests: "
                f"{b['scheduled']} scheduled, {b['sent']} sent, {b['in_flight']} in flight, "
                f"{b['not_sent']} not sent"
            )
        problems = live_problems() if report is not None else []
        if problems:
            status += " UNTRUSTWORTHY RUN: " + "; ".join(problems)
        return Response(json.dumps({"status": status, "rows": rows}), mimetype="application/json")

    @app.route("/burstgpt/summary.json")
    @auth
    def burstgpt_summary() -> Response:
        ctl = controller.get()
        report = ctl.report
        body: dict[str, Any] = {"run": None}
        if report is not None:
            duration = max(1e-9, time.time() - report.epoch_wall)
            body = {
                "finished": ctl.finished,
                "books": live_books(),
                "trust_problems": live_problems(),
                "metrics": report.metrics.summary(duration_s=duration),
                "verdict": ctl.last_verdict.to_dict() if ctl.last_verdict is not None else None,
                "settings": ctl.settings.public_dict() if ctl.settings else None,
            }
        return Response(json.dumps(body, default=str), mimetype="application/json")

    @app.route("/burstgpt/timeline.csv")
    @auth
    def burstgpt_timeline_csv() -> Response:
        import csv
        import io

        report = controller.get().report
        rows = report.timeline.rows() if report is not None else []
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
        report = controller.get().report
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
