"""Locust event listeners: options, embedded simulator, work assignment, drain, and final books.

Roles: a LocalRunner does everything; a MasterRunner loads the trace (the shape needs its curve),
assigns whole conversations to workers explicitly and merges their books; a WorkerRunner replays
what it was assigned. Messages:

* ``burstgpt_assign`` (master -> worker, in ``test_start``, so before the spawn message): the
  conversation indices, the absolute start time, and a fingerprint of the workload.
* ``burstgpt_stop`` (master -> worker, in ``test_stopping``): stop releasing, drain, then reply.
* ``burstgpt_entries`` (worker -> master, every second): request entries for the run report.
* ``burstgpt_final`` (worker -> master): the worker's final ledger, after its last entries.
* ``burstgpt_error`` (worker -> master): the worker could not start its replay.
* ``burstgpt_assign_more`` (master -> worker): conversations of a lost worker that had not started
  (``--burstgpt-reassign-lost``; see ``lost_workers.py``).
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from typing import Any

import gevent
import numpy as np
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from locust_burstgpt import options
from locust_burstgpt.generator_health import LoopLagProbe, ScheduleHealth
from locust_burstgpt.ledger import Ledger
from locust_burstgpt.plugin import controller
from locust_burstgpt.plugin.finish import finish_run
from locust_burstgpt.plugin.lost_workers import WorkerWatch
from locust_burstgpt.plugin.reporting import (
    DeferredSink,
    EntryShipper,
    SecondSampler,
    connect_runtime,
)
from locust_burstgpt.settings import OptionError
from locust_burstgpt.trace import TraceError

log = logging.getLogger("locust_burstgpt")

START_LEAD_LOCAL_S = 1.0
START_LEAD_MASTER_S = 2.0


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kw: Any) -> None:
    options.add_to_parser(parser)


def _fingerprint(workload: Any) -> list:
    return [
        workload.meta.get("sha256"),
        int(workload.n_conversations),
        int(workload.n_requests),
        float(workload.duration_s),
    ]


def _first_user_class(environment: Any) -> Any:
    from locust_burstgpt.plugin.users import BurstGPTUser

    return next((c for c in environment.user_classes if issubclass(c, BurstGPTUser)), None)


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    ctl = controller.get()
    runner = environment.runner
    ctl.user_class = _first_user_class(environment)
    if isinstance(runner, WorkerRunner):
        runner.register_message("burstgpt_assign", _on_assign)
        runner.register_message("burstgpt_assign_more", _on_assign_more, concurrent=True)
        runner.register_message("burstgpt_stop", _on_stop_request, concurrent=True)
        return
    if environment.parsed_options is None:
        return  # a programmatic Environment without options: nothing to replay
    try:
        ctl.ensure_workload(environment)
    except (OptionError, TraceError) as e:
        log.error("%s", e)
        sys.exit(2)
    _ensure_host(environment)
    if getattr(environment.parsed_options, "run_time", None):
        log.info(
            "locust-burstgpt applies --run-time itself: the test ends at the window's end or after "
            "%s s, whichever comes first",
            environment.parsed_options.run_time,
        )
    from locust_burstgpt.plugin import webui

    webui.install(environment)
    if isinstance(runner, MasterRunner):
        runner.register_message("burstgpt_final", _on_worker_final)
        runner.register_message("burstgpt_error", _on_worker_error)
        runner.register_message("burstgpt_entries", _on_worker_entries)


def _ensure_host(environment: Any) -> None:
    """No --host: start the embedded simulator and point the run at it."""
    ctl = controller.get()
    if environment.host:
        return
    from locust_burstgpt.sim import DEMO_PROFILE, SimulatorProcess

    profile = (ctl.settings.sim_profile if ctl.settings else None) or DEMO_PROFILE
    sim = SimulatorProcess(profile=profile)
    sim.__enter__()
    ctl.sim = sim
    environment.host = sim.base_url
    log.info(
        "No --host given: running against the embedded LLM server simulator (profile %s) at %s. "
        "Numbers describe the simulator, not a real GPU server.",
        profile,
        sim.base_url,
    )


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kw: Any) -> None:
    ctl = controller.get()
    if ctl.sim is not None:
        ctl.sim.__exit__(None, None, None)
        ctl.sim = None


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    ctl = controller.get()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _start_worker_replay(environment)
        return
    ctl.reset_run()
    try:
        workload = ctl.ensure_workload(environment)
    except (OptionError, TraceError) as e:
        log.error("%s", e)
        environment.process_exit_code = 2
        gevent.spawn(runner.quit)
        return
    _ensure_host(environment)
    _freeze_heap()
    if isinstance(runner, MasterRunner):
        ctl.epoch_wall = time.time() + START_LEAD_MASTER_S
        _start_report(environment)
        workers = sorted(
            (c for c in runner.clients.values() if c.state != "missing"), key=lambda c: c.id
        )
        if not workers:
            log.error("No workers connected: nothing to replay")
            return
        order = np.arange(workload.n_conversations, dtype=np.int64)
        ctl.watch = WorkerWatch(environment, ctl)
        for k, client in enumerate(workers):
            indices = order[k :: len(workers)]
            ctl.watch.assign(client.id, indices.tolist())
            runner.send_message(
                "burstgpt_assign",
                {
                    "indices": indices.astype("<i8").tobytes(),
                    "epoch_wall": ctl.epoch_wall,
                    "fingerprint": _fingerprint(workload),
                    "worker": k,
                    "workers": len(workers),
                },
                client_id=client.id,
            )
        ctl.watch.start()
        log.info(
            "Assigned %d conversations to %d workers (round robin by start time)",
            workload.n_conversations,
            len(workers),
        )
        return
    ctl.epoch_wall = time.time() + START_LEAD_LOCAL_S
    _start_report(environment)
    runtime = _build_runtime(environment, range(workload.n_conversations), ctl.epoch_wall)
    if runtime is not None:
        ctl.shipper = DeferredSink(_report_entry)  # accounting off the dispatcher's path
        connect_runtime(runtime, ctl.shipper)
        ctl.probe = LoopLagProbe(ctl.epoch_wall)
        runtime.start()
        ctl.runtime_ready.set()


def _report_entry(entry: dict) -> None:
    """One request entry into the run report and the generator's health check."""
    ctl = controller.get()
    ctl.report.add(entry)
    if ctl.health is not None:
        ctl.health.add(entry)


def _freeze_heap() -> None:
    """Move the loaded trace out of the garbage collector's sight: full collections over a large heap
    pause every greenlet for milliseconds, which would show up as lateness."""
    gc.collect()
    gc.freeze()


def _start_report(environment: Any) -> Any:
    from locust_burstgpt.report.run_report import RunReport

    ctl = controller.get()
    limits = {
        k: v
        for k, v in ctl.settings.slo_spec.per_request_limits().items()
        if k in ("ttft", "tpot", "e2e")
    }
    ctl.report = RunReport(ctl.epoch_wall, ctl.settings.report_dir, limits)
    ctl.health = ScheduleHealth(ctl.settings.arrival)
    scraper = None
    if ctl.settings.server_metrics is not None and environment.host:
        from locust_burstgpt.report.server_metrics import ServerMetricsScraper

        url = ctl.settings.server_metrics or environment.host.rstrip("/") + "/metrics"
        scraper = ServerMetricsScraper(
            url, ctl.settings.api_key, verify_tls=not ctl.settings.insecure
        )
    ctl.sampler = SecondSampler(environment, ctl.report, ctl, scraper)
    return ctl.report


def _build_runtime(environment: Any, indices: Any, epoch_wall: float) -> Any:
    """The process's runtime, or None (after logging one clear line and stopping the run)."""
    from locust_burstgpt.plugin.runtime import ReplayRuntime

    ctl = controller.get()
    try:
        runtime = ReplayRuntime(
            environment,
            ctl.settings,
            ctl.workload,
            list(indices),
            epoch_wall,
            base_url=environment.host,
            user_class=ctl.user_class,
        )
    except Exception as e:  # noqa: BLE001 - one clear line, then stop the run
        msg = f"Cannot start the replay against {environment.host}: {e}"
        log.error("%s", msg)
        log.debug("replay setup failed", exc_info=True)
        environment.process_exit_code = 2
        if isinstance(environment.runner, WorkerRunner):
            environment.runner.send_message("burstgpt_error", msg)
        else:
            gevent.spawn(environment.runner.quit)
        return None
    ctl.runtime = runtime
    ctl.server_description = runtime.describe_server()
    return runtime


# -- worker side --------------------------------------------------------------------------------
def _on_assign(environment: Any, msg: Any, **_kw: Any) -> None:
    controller.get().assignment = dict(msg.data)


def _on_assign_more(environment: Any, msg: Any, **_kw: Any) -> None:
    """Conversations of a lost worker that had not started: replay them too, on their schedule."""
    ctl = controller.get()
    indices = np.frombuffer(msg.data["indices"], dtype="<i8").tolist()
    if not ctl.runtime_ready.wait(timeout=10) or ctl.runtime is None:
        environment.runner.send_message(
            "burstgpt_error",
            f"worker cannot take {len(indices)} reassigned "
            "conversations: its replay is not running",
        )
        return
    ctl.runtime.engine.extend(indices)
    log.info("Took over %d conversations of a lost worker", len(indices))


def _start_worker_replay(environment: Any) -> None:
    ctl = controller.get()
    assignment = ctl.assignment
    ctl.reset_run()
    if assignment is None:
        environment.runner.send_message(
            "burstgpt_error", "worker got no assignment before the test started"
        )
        return
    try:
        workload = ctl.ensure_workload(environment)
    except (OptionError, TraceError) as e:
        environment.runner.send_message("burstgpt_error", f"worker cannot load the trace: {e}")
        return
    if _fingerprint(workload) != list(assignment["fingerprint"]):
        environment.runner.send_message(
            "burstgpt_error",
            f"worker's workload {_fingerprint(workload)} differs from the master's {assignment['fingerprint']}: "
            "is the same trace file (same bytes) at the same path on every worker?",
        )
        return
    indices = np.frombuffer(assignment["indices"], dtype="<i8")
    _freeze_heap()
    runtime = _build_runtime(environment, indices.tolist(), float(assignment["epoch_wall"]))
    if runtime is not None:
        ctl.probe = LoopLagProbe(float(assignment["epoch_wall"]))
        ctl.shipper = EntryShipper(environment.runner, runtime.ledger, ctl.probe)
        connect_runtime(runtime, ctl.shipper)
        runtime.start()
        ctl.runtime_ready.set()


def _on_stop_request(environment: Any, msg: Any, **_kw: Any) -> None:
    ctl = controller.get()
    reason = str(msg.data or "stopped")
    ctl.end_reason = reason
    if ctl.runtime is not None:
        ctl.runtime.stop(reason)
    if ctl.shipper is not None:
        ctl.shipper.close()
    ledger = ctl.runtime.ledger if ctl.runtime is not None else Ledger()
    environment.runner.send_message("burstgpt_final", {"ledger": ledger.to_dict()})


# -- master side --------------------------------------------------------------------------------
def _on_worker_final(environment: Any, msg: Any, **_kw: Any) -> None:
    ctl = controller.get()
    if ctl.watch is not None and not ctl.watch.accept(msg.node_id):
        return
    ctl.worker_ledgers[msg.node_id] = Ledger.from_dict(msg.data["ledger"])


def _on_worker_entries(environment: Any, msg: Any, **_kw: Any) -> None:
    ctl = controller.get()
    if ctl.watch is not None and not ctl.watch.accept(msg.node_id):
        return
    ctl.live_worker_ledgers[msg.node_id] = Ledger.from_dict(msg.data["ledger"])
    if ctl.health is not None:
        ctl.health.note_lags(msg.data.get("loop_lag"), msg.node_id)
    if ctl.report is None:
        return
    for entry in msg.data["entries"]:
        if ctl.watch is not None:
            ctl.watch.count_entry(msg.node_id, entry)
        _report_entry(entry)


def _on_worker_error(environment: Any, msg: Any, **_kw: Any) -> None:
    log.error("Worker %s: %s", msg.node_id, msg.data)
    environment.process_exit_code = 2
    gevent.spawn(environment.runner.quit)


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_kw: Any) -> None:
    ctl = controller.get()
    runner = environment.runner
    reason = ctl.end_reason or "stopped"
    if isinstance(runner, MasterRunner):
        alive = [
            c.id
            for c in runner.clients.values()
            if c.state != "missing" and c.id in ctl.assigned and c.id not in ctl.lost_workers
        ]
        for client_id in alive:
            runner.send_message("burstgpt_stop", reason, client_id=client_id)
        deadline = (
            time.monotonic() + (ctl.settings.drain_timeout_s if ctl.settings else 30.0) + 15.0
        )
        while time.monotonic() < deadline and not all(
            c in ctl.worker_ledgers or c in ctl.lost_workers for c in alive
        ):
            gevent.sleep(0.1)  # the watch keeps running: a worker dying now is accounted as lost
        missing = [c for c in alive if c not in ctl.worker_ledgers and c not in ctl.lost_workers]
        if missing:
            log.error("No final accounts from workers %s", ", ".join(missing))
    elif ctl.runtime is not None:
        ctl.runtime.stop(reason)
        if ctl.shipper is not None:
            ctl.shipper.close()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_kw: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    ctl = controller.get()
    if ctl.watch is not None:
        ctl.watch.check()
        ctl.watch.stop()
    finish_run(environment, ctl)
