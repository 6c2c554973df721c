"""The end of a run on the reporting process: books, trust checks, SLO verdicts, report files,
console; and the summary document, which the web UI also serves while the run goes on."""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from locust_burstgpt import __version__
from locust_burstgpt.replay import Ledger
from locust_burstgpt.report.console import length_line, metrics_table
from locust_burstgpt.report.timeline import HORIZON_S
from locust_burstgpt.report.verdict import Verdict, evaluate

if TYPE_CHECKING:
    from locust_burstgpt.plugin._roles import ReportingRole

log = logging.getLogger("locust_burstgpt")


def trust_problems(role: ReportingRole, ledger: Ledger) -> list[str]:
    problems = []
    if not ledger.balances():
        problems.append(f"the books do not balance: {ledger.format()}")
    problems.extend(role.distributed_problems())
    if role.health is not None:
        problems.extend(role.health.problems())
    runner = role.environment.runner
    if getattr(runner, "cpu_warning_emitted", False) or getattr(
        runner, "worker_cpu_warning_emitted", False
    ):
        problems.append(
            "the load generator's CPU was saturated (Locust's CPU warning): send times and "
            "latencies include the generator's own delay; use more --processes"
        )
    if role.report is not None and role.report.entries != ledger.scheduled:
        problems.append(
            f"the report holds {role.report.entries} request entries but {ledger.scheduled} "
            "were scheduled"
        )
    return problems


def run_warnings(role: ReportingRole) -> list[str]:
    """Events a trusted run still reports (a lost worker whose conversations were reassigned, late
    entries left out of the timeline's per-second percentiles)."""
    out = role.distributed_warnings()
    stale = role.report.timeline.stale_values if role.report is not None else 0
    if stale:
        out.append(
            f"{stale} TTFT/TPOT values reached the report more than {HORIZON_S} s after their "
            "second ended; timeline.csv's per-second percentiles leave them out (the run's "
            "metrics include them)"
        )
    return out


def summary_document(
    role: ReportingRole, ledger: Ledger, verdict: Verdict, duration_s: float
) -> dict[str, Any]:
    """``summary.json``: at the end of the run, and (``finished`` false) while it goes on."""
    report, source = role.report, role.state.source
    return {
        "tool": f"locust-burstgpt {__version__}",
        "finished": role.finished,
        "settings": source.settings.public_dict(),
        "trace": source.workload.meta,
        "demo_defaults": source.demo_defaults,
        "host": role.environment.host,
        "server": role.server_description,
        "end_reason": role.end_reason or ("stopped" if role.finished else None),
        "epoch_wall": report.epoch_wall,
        "run_duration_s": duration_s,
        "reconciliation": {
            **ledger.to_dict(),
            "balances": ledger.balances(),
            "entries": report.entry_ledger(),
        },
        "metrics": report.metrics.summary(duration_s=duration_s),
        "verdict": verdict.to_dict(),
        "warnings": run_warnings(role),
        "lost_workers": getattr(role, "lost_info", {}),
        "generator": role.health.summary() if role.health is not None else None,
    }


def live_summary(role: ReportingRole) -> dict[str, Any]:
    """The summary document as of now (the final one once the run ended)."""
    if role.final_summary is not None:
        return role.final_summary
    ledger = role.books()
    duration = role.duration_s()
    verdict = evaluate(role.settings.slo_spec, role.report.metrics, duration, role.live_problems())
    return summary_document(role, ledger, verdict, duration)


def finish_run(role: ReportingRole) -> None:
    report = role.report
    if report is None or role.finished:
        return
    if role.sampler is not None:
        role.sampler.stop()
        role.sampler.sample(final=True)
        role.sampler.close()
    ledger = role.run_ledger()
    duration = role.final_duration_s = max(1e-9, time.time() - report.epoch_wall)
    summary = report.metrics.summary(duration_s=duration)
    verdict = evaluate(
        role.settings.slo_spec, report.metrics, duration, trust_problems(role, ledger)
    )
    role.finished = True
    role.final_ledger = ledger
    role.final_verdict = verdict
    warnings = run_warnings(role)
    report.close()
    role.final_summary = summary_document(role, ledger, verdict, duration)
    if report.dir is not None:
        report.timeline.write_csv(report.dir / "timeline.csv")
        report.write_json("summary.json", role.final_summary)
        try:
            from locust_burstgpt.report.charts import write_report_png

            write_report_png(
                report.timeline.rows(),
                report.dir / "report.png",
                title=role.state.source.chart_title(),
            )
        except Exception:  # noqa: BLE001 - a chart must not cost the run its verdict
            log.exception("could not draw report.png")
    text = "\n".join(
        [
            "",
            metrics_table(summary),
            length_line(summary),
            ledger.format(),
            *verdict.lines(),
            *(f"WARNING: {w}" for w in warnings),
            *(f"Report written to {report.dir}" for _ in [0] if report.dir is not None),
            "",
        ]
    )
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    code = verdict.exit_code()
    if code is not None:
        role.environment.process_exit_code = code
