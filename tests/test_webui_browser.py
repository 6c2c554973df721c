"""The web UI in a real browser (headless Debian chromium): start a replay from Locust's start form
with the plugin's options, watch the user count follow the shape, then read the LLM tab and the
charts page and check them against the report files written by the same run."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from locust_burstgpt.sim import SimulatorProcess
from tests.plugin_runs import INSTRUMENTED, ROOT
from tests.servers.browser import launch_chromium
from tests.servers.managed import free_port
from tests.support import wait_until

pytestmark = pytest.mark.browser


def _stats(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url + "/stats/requests", timeout=5).read())


@pytest.fixture()
def web_locust(tmp_path):
    with SimulatorProcess(profile="fast") as sim:
        port = free_port()
        dump = tmp_path / "dump"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(INSTRUMENTED),
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(port),
                "--host",
                sim.base_url,
            ],
            cwd=ROOT,
            stdout=open(tmp_path / "locust.log", "w"),
            stderr=subprocess.STDOUT,
            env={**__import__("os").environ, "BURSTGPT_TEST_DUMP": str(dump)},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: urllib.request.urlopen(url + "/", timeout=2).read(),
                30,
                f"{url}/ to answer",
                ignore=(OSError,),
            )
            yield url, tmp_path, proc
        finally:
            # SIGTERM: Locust quits cleanly and the test locustfile writes its dump. (A SIGINT is seen
            # only when the main thread next runs Python code; a quiet hub may not wake for it.)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_start_form_runs_replay_and_llm_tab_matches_report(web_locust, artifacts_dir):
    url, tmp, proc = web_locust
    report_dir = tmp / "report"
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url + "/")
        page.get_by_text("Custom parameters").click()
        page.fill("input[name=burstgptWindow]", "busiest:1h")
        page.fill("input[name=burstgptSpeedup]", "150")  # 24 s of replay
        page.fill("input[name=burstgptReport]", str(report_dir))
        page.get_by_role("button", name="Start").click()

        # the user count shown in the page's header while the shape runs, and the server's state
        shown: list[int] = []
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            m = re.search(r"Users\s+(\d+)", page.locator("header").inner_text())
            if m:
                shown.append(int(m.group(1)))
            state = _stats(url)["state"]
            if state == "stopped" and len(shown) > 5:
                break
            page.wait_for_timeout(500)
        assert state == "stopped", "the shape did not end the run by itself"
        page.wait_for_function(
            "document.querySelector('header').innerText.toUpperCase().includes('STOPPED')"
        )

        # the LLM tab's All row against summary.json written by the same run
        summary = json.loads((report_dir / "summary.json").read_text())
        page.goto(url + "/?tab=llm")
        page.wait_for_selector("text=All")
        page.wait_for_timeout(1000)
        rows = page.locator("table tbody tr")
        heads = page.locator("table thead th").all_inner_texts()
        by_class = {}
        for i in range(rows.count()):
            texts = rows.nth(i).locator("td").all_inner_texts()
            if texts:
                by_class[texts[0]] = dict(zip(heads, texts, strict=False))
        assert "All" in by_class, page.content()[:2000]
        page.screenshot(path=str(artifacts_dir / "webui-llm-tab.png"), full_page=True)
        row = by_class["All"]
        all_metrics = summary["metrics"]["All"]
        books = summary["reconciliation"]
        assert int(row["Scheduled"]) == books["scheduled"] and int(row["Sent"]) == books["sent"]
        assert int(row["OK"]) == all_metrics["ok"]
        assert float(row["TTFT p50 (ms)"]) == pytest.approx(
            all_metrics["ttft"]["p50"] * 1000, abs=0.051
        )
        assert float(row["E2E p99"]) == pytest.approx(all_metrics["e2e"]["p99"] * 1000, abs=0.051)
        # every class row's books against requests.jsonl, whose lines are the scheduled requests
        entries = [
            json.loads(line) for line in (report_dir / "requests.jsonl").read_text().splitlines()
        ]
        classes = sorted({e["class"] for e in entries})
        assert sorted(k for k in by_class if k != "All") == classes
        for label in classes:
            mine = [e for e in entries if e["class"] == label]
            not_sent = sum(e["outcome"] == "not_sent" for e in mine)
            tab = by_class[label]
            assert (
                int(tab["Scheduled"]),
                int(tab["Sent"]),
                int(tab["In flight"]),
                int(tab["Not sent"]),
            ) == (len(mine), len(mine) - not_sent, 0, not_sent), label

        # the charts page draws from the same timeline as timeline.csv
        page.goto(url + "/burstgpt/")
        page.wait_for_function("document.body.dataset.rows > 0")
        page.screenshot(path=str(artifacts_dir / "webui-charts.png"), full_page=True)
        timeline_rows = (report_dir / "timeline.csv").read_text().strip().splitlines()
        assert int(page.evaluate("document.body.dataset.rows")) >= len(timeline_rows) - 1 - 2

    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    dump = next(tmp.glob("dump.local.*.json"))
    data = json.loads(dump.read_text())
    targets = [target for _, target in data["ticks"]]
    observed = data["observed"]
    assert len(targets) >= 15 and len(set(targets)) >= 4  # the curve moves
    assert observed and all(t == actual for t, actual in observed)  # Locust followed every tick
    assert len(set(shown) & set(targets)) >= 3, (
        shown,
        targets,
    )  # the page showed the curve's values
    assert set(shown) <= set(targets) | {0}
