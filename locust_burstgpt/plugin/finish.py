"""End of a run on the reporting process: books, trust checks, SLO verdicts, report files, console."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from locust.runners import MasterRunner

from locust_burstgpt import __version__
from locust_burstgpt.ledger import Ledger
from locust_burstgpt.report.console import length_line, metrics_table
from locust_burstgpt.report.timeline import HORIZON_S
from locust_burstgpt.report.verdict import evaluate

log = logging.getLogger("locust_burstgpt")


def run_ledger(environment: Any, ctl: Any) -> Ledger:
    """This run's books: the local runtime's, or the sum of every worker's final accounts."""
    if isinstance(environment.runner, MasterRunner):
        total = Ledger()
        for led in ctl.worker_ledgers.values():
            total = total.add(led)
        for lost in ctl.lost_workers.values():
            total = total.add(lost)
        return total
    return ctl.runtime.ledger if ctl.runtime is not None else Ledger()


def live_ledger(ctl: Any) -> Ledger:
    """The books so far: the local runtime's, or the workers' latest (final where they have sent it)."""
    if ctl.runtime is not None and not ctl.assigned:
        return ctl.runtime.ledger
    total = Ledger()
    for client_id in ctl.assigned:
        led = (
            ctl.lost_workers.get(client_id)
            or ctl.worker_ledgers.get(client_id)
            or ctl.live_worker_ledgers.get(client_id)
        )
        if led is not None:
            total = total.add(led)
    return total


def trust_problems(environment: Any, ctl: Any, ledger: Ledger) -> list[str]:
    problems = []
    if not ledger.balances():
        problems.append(f"the books do not balance: {ledger.format()}")
    if ctl.lost_workers and not ctl.settings.reassign_lost:
        problems.append(
            f"{len(ctl.lost_workers)} worker(s) lost during the run ({lost_text(ctl)}); "
            "their unfinished requests are counted as not sent (lost_worker). "
            "--burstgpt-reassign-lost replays the conversations they had not started elsewhere"
        )
    if ctl.revived_workers:
        problems.append(
            f"worker(s) {', '.join(sorted(ctl.revived_workers))} answered after being declared "
            "lost: their later results were ignored and may have been sent twice"
        )
    if ctl.health is not None:
        problems.extend(ctl.health.problems())
    runner = environment.runner
    if getattr(runner, "cpu_warning_emitted", False) or getattr(
        runner, "worker_cpu_warning_emitted", False
    ):
        problems.append(
            "the load generator's CPU was saturated (Locust's CPU warning): send times and "
            "latencies include the generator's own delay; use more --processes"
        )
    if ctl.report is not None and ctl.report.entries != ledger.scheduled:
        problems.append(
            f"the report holds {ctl.report.entries} request entries but {ledger.scheduled} "
            "were scheduled"
        )
    return problems


def lost_text(ctl: Any) -> str:
    return "; ".join(
        f"{cid}: {i['why']}, {i['lost_requests']} requests lost, "
        f"{i['reassigned_conversations']} conversations reassigned"
        for cid, i in sorted(ctl.lost_info.items())
    )


def run_warnings(ctl: Any) -> list[str]:
    """Events a trusted run still reports (a lost worker whose conversations were reassigned, late
    entries left out of the timeline's per-second percentiles)."""
    out = []
    if ctl.lost_workers and ctl.settings.reassign_lost:
        out.append(
            f"{len(ctl.lost_workers)} worker(s) lost during the run ({lost_text(ctl)}); requests they "
            "had in flight or had not finished are counted as not sent (lost_worker)"
        )
    stale = ctl.report.timeline.stale_values if ctl.report is not None else 0
    if stale:
        out.append(
            f"{stale} TTFT/TPOT values reached the report more than {HORIZON_S} s after their second "
            "ended; timeline.csv's per-second percentiles leave them out (the run's metrics include them)"
        )
    return out


def finish_run(environment: Any, ctl: Any) -> None:
    report = ctl.report
    if report is None or ctl.finished:
        return
    ctl.finished = True
    if ctl.sampler is not None:
        ctl.sampler.stop()
        ctl.sampler.sample()
    ledger = run_ledger(environment, ctl)
    duration = max(1e-9, time.time() - report.epoch_wall)
    summary = report.metrics.summary(duration_s=duration)
    verdict = evaluate(
        ctl.settings.slo_spec, report.metrics, duration, trust_problems(environment, ctl, ledger)
    )
    warnings = run_warnings(ctl)
    report.close()
    if report.dir is not None:
        report.timeline.write_csv(report.dir / "timeline.csv")
        report.write_json(
            "summary.json",
            {
                "tool": f"locust-burstgpt {__version__}",
                "settings": ctl.settings.public_dict(),
                "trace": ctl.workload.meta,
                "demo_defaults": ctl.demo_defaults,
                "host": environment.host,
                "server": ctl.server_description,
                "end_reason": ctl.end_reason or "stopped",
                "epoch_wall": report.epoch_wall,
                "run_duration_s": duration,
                "reconciliation": {
                    **ledger.to_dict(),
                    "balances": ledger.balances(),
                    "entries": report.entry_ledger(),
                },
                "metrics": summary,
                "verdict": verdict.to_dict(),
                "warnings": warnings,
                "lost_workers": ctl.lost_info,
                "generator": ctl.health.summary() if ctl.health is not None else None,
            },
        )
        try:
            from locust_burstgpt.report.charts import write_report_png

            write_report_png(
                report.timeline.rows(), report.dir / "report.png", title=ctl.chart_title()
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
    ctl.last_summary = summary
    ctl.last_verdict = verdict
    ctl.last_ledger = ledger
    code = verdict.exit_code()
    if code is not None:
        environment.process_exit_code = code
