"""Security: the API key reaches the server and nothing else (logs, report files, web UI pages, error
messages); TLS certificates are verified unless the user opts out; the plugin's web routes honour
Locust's --web-login."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin_runs import ROOT, run_locust
from tests.servers.misbehaving import MisbehavingServer
from tests.support import trace_text
from tests.web_runs import WebRun, free_port

KEY = "sk-test-SECRET123"
UI_PAGES = (
    "/",
    "/stats/requests",
    "/burstgpt/summary.json",
    "/burstgpt/timeline.json",
    "/burstgpt/timeline.csv",
    "/burstgpt/requests.jsonl",
    "/burstgpt/",
    "/stats/requests/csv",
    "/stats/failures/csv",
    "/exceptions",
)


def _trace(tmp: Path, n: int = 8) -> Path:
    path = tmp / "trace.csv"
    path.write_text(
        trace_text(f"{100 + i * 0.25:.2f},,1,ChatGPT,40,10,50,API log\n" for i in range(n))
    )
    return path


def _files_without_key(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*") if p.is_file()]
    leaking = [p for p in files if KEY.encode() in p.read_bytes()]
    assert not leaking, f"API key written to {leaking}"
    return files


def test_api_key_never_leaves_the_request(sim_fast, tmp_path):
    trace = _trace(tmp_path)
    report = tmp_path / "report"
    # row-3's server answers 401 and echoes the key back (as some gateways do)
    with MisbehavingServer(sim_fast.base_url, {"row-3": "echo_auth"}) as server:
        run = WebRun(
            tmp_path,
            server.base_url,
            "--burstgpt-trace",
            str(trace),
            "--burstgpt-window",
            "100+3s",
            "--burstgpt-api-key",
            KEY,
            "--burstgpt-report",
            str(report),
            autoquit_s=30,
            env={"OPENAI_API_KEY": KEY},
        )
        try:
            run.wait_until(
                lambda: json.loads(run.get("/burstgpt/summary.json")[1]).get("finished"),
                60,
                "the run to finish",
            )
            pages = {path: run.get(path) for path in UI_PAGES}
        finally:
            run.stop()
        arrivals = list(server.seen)
    # the key was used: every request to the server carried it
    chat = [a for a in arrivals if a.path.startswith("/v1/chat")]
    assert chat and all(a.headers.get("authorization") == f"Bearer {KEY}" for a in chat)
    for path, (status, body) in pages.items():
        assert status == 200, (path, status)
        assert KEY not in body, f"API key on web UI page {path}"
    live = json.loads(pages["/burstgpt/summary.json"][1])
    assert live["settings"]["api_key_set"] is True
    # the web UI serves the report's own summary document, the same keys and books
    final = json.loads((report / "summary.json").read_text())
    assert live == final and live["finished"] is True  # frozen at the end: nothing decays
    output = run.output()
    assert KEY not in output and "Traceback" not in output
    files = _files_without_key(report)
    assert {p.name for p in files} >= {"requests.jsonl", "summary.json", "timeline.csv"}
    lines = [json.loads(x) for x in (report / "requests.jsonl").read_text().splitlines()]
    echoed = next(x for x in lines if x["conversation"] == "row-3")
    assert echoed["http_status"] == 401 and "Invalid API key: Bearer [api key]" in echoed["error"]


def test_api_key_not_in_setup_errors(tmp_path):
    """A server that is down: the run stops with one clear line that does not carry the key."""
    port = free_port()
    run = run_locust(
        tmp_path,
        f"http://127.0.0.1:{port}",
        "--burstgpt-trace",
        str(_trace(tmp_path)),
        "--burstgpt-api-key",
        KEY,
        "--burstgpt-report",
        str(tmp_path / "report"),
        env={"OPENAI_API_KEY": KEY},
        timeout=90,
    )
    assert run.returncode == 2, run.output[-3000:]
    assert "Cannot start the replay" in run.output and "Connection refused" in run.output
    assert KEY not in run.output and "Traceback" not in run.output
    _files_without_key(tmp_path)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl command line)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for the TLS tests (Debian package openssl)"
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def _chat_sent(server: MisbehavingServer) -> list:
    return [
        a
        for a in server.seen
        if a.path.startswith("/v1/chat") and a.request_id and not a.request_id.startswith("prompt")
    ]


def test_tls_verified_by_default(sim_fast, certificate, tmp_path):
    """A self-signed server: the run stops before any load with one line naming the certificate."""
    with MisbehavingServer(sim_fast.base_url, tls=certificate) as server:
        run = run_locust(
            tmp_path,
            f"https://127.0.0.1:{server.port}",
            "--burstgpt-trace",
            str(_trace(tmp_path)),
            "--burstgpt-window",
            "100+3s",
            timeout=90,
        )
        chat = [a for a in server.seen if a.path.startswith("/v1/chat")]
    assert run.returncode == 2, run.output[-3000:]
    assert "CERTIFICATE_VERIFY_FAILED" in run.output and "self-signed" in run.output
    assert "Cannot start the replay" in run.output and "Traceback" not in run.output
    assert chat == []  # nothing was sent


def test_tls_opt_out_reaches_a_self_signed_server(sim_fast, certificate, tmp_path):
    """--burstgpt-insecure: the same server is used, every request succeeds."""
    with MisbehavingServer(sim_fast.base_url, tls=certificate) as server:
        run = run_locust(
            tmp_path,
            f"https://127.0.0.1:{server.port}",
            "--burstgpt-trace",
            str(_trace(tmp_path)),
            "--burstgpt-window",
            "100+3s",
            "--burstgpt-insecure",
            timeout=90,
        )
        sent = _chat_sent(server)
    assert run.returncode == 0, run.output[-3000:]
    ledger = run.ledger()
    assert ledger["scheduled"] == ledger["sent"] == 8 and ledger["outcomes"] == {"ok": 8}
    assert len(sent) == 8


# Locust monkey-patches the process when imported, so the in-process web UI check runs in a subprocess.
AUTH_CHECK = r"""
import json
from locust.env import Environment
from locust_burstgpt.plugin import BurstGPTUser, webui


class Replay(BurstGPTUser):
    pass


class Tester:
    is_authenticated, is_active, is_anonymous = True, True, False

    def get_id(self):
        return "tester"


env = Environment(user_classes=[Replay])
web_ui = env.create_web_ui("127.0.0.1", 0, web_login=True)
web_ui.app.secret_key = "test-only"  # a locustfile using --web-login sets its own (Locust's auth example)
web_ui.login_manager.user_loader(lambda uid: Tester() if uid == "tester" else None)
webui.install(env)
routes = sorted(r.rule for r in web_ui.app.url_map.iter_rules() if r.rule.startswith("/burstgpt"))
client = web_ui.app.test_client()
anonymous = {r: [client.get(r).status_code, client.get(r).get_data(as_text=True)[:200]] for r in routes}
with client.session_transaction() as session:
    session["_user_id"] = "tester"
    session["_fresh"] = True
logged_in = {r: client.get(r).status_code for r in routes}
summary = client.get("/burstgpt/summary.json").get_json()
print(json.dumps({"routes": routes, "anonymous": anonymous, "logged_in": logged_in, "summary": summary}))
"""


def test_plugin_routes_require_login_when_locust_asks():
    proc = subprocess.run(
        [sys.executable, "-c", AUTH_CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["routes"]) >= 5, out["routes"]
    for route, (status, body) in out["anonymous"].items():
        assert status in (302, 401), (route, status)  # to the login page, never the data
        assert "books" not in body and "LLM" not in body, route
    for route, status in out["logged_in"].items():
        assert status in (200, 404), (
            route,
            status,
        )  # 404: requests.jsonl without a report directory
    assert out["summary"] == {"run": None}
