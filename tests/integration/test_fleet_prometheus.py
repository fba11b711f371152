"""The fleet view against a real Prometheus server: Debian's ``prometheus`` binary on a free
loopback port scrapes ``tasktop exporter`` in front of a leaking target and a sawtooth target,
with the rules of ``tasktop rules`` (windows of seconds instead of minutes).  Every query of every
panel of the shipped dashboard must return data through the HTTP API, the growth alerts must go
from pending to firing on the leak, and nothing may fire for the sawtooth."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from conftest import tasktop, tasktop_cmd, wait_until
from tasktop.fleet import dashboard, rules

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="the prometheus server is not installed (Debian: apt-get install prometheus; .ci/run installs it)")

# 40 tasks a second that wait on a queue nobody fills: a leak.
LEAK = r'''
import asyncio, gc

async def consume(q):
    await q.get()

async def main():
    q = asyncio.Queue()
    keep = []
    print("ready", flush=True)
    while True:
        keep += [asyncio.create_task(consume(q)) for _ in range(4)]
        asyncio.create_task(consume(asyncio.Queue()))  # kept by nothing: lost at the next collection
        gc.collect()
        await asyncio.sleep(0.1)

asyncio.run(main())
'''

# The same 40 tasks a second for 1.5 s, then all released and none for 1.5 s: a sawtooth from 0
# to 60 whose troughs outlast a scrape interval, so every window's floor is 0.
SAWTOOTH = r'''
import asyncio

async def handle(event):
    await event.wait()

async def main():
    print("ready", flush=True)
    while True:
        event = asyncio.Event()
        for _ in range(15):
            for _ in range(4):
                asyncio.create_task(handle(event))
            await asyncio.sleep(0.1)
        event.set()
        await asyncio.sleep(1.5)

asyncio.run(main())
'''

WINDOW_S = 5
#: Short windows for a run of seconds; the growth thresholds are far below the leak's 2400 a
#: minute and far above what the sawtooth's floor could show.
RULE_ARGS = ("--window", f"{WINDOW_S}s", "--growth-for", "3s", "--max-task-growth", "60",
             "--max-group-growth", "60")
GROWTH_ALERTS = ("TasktopTasksGrowing", "TasktopGroupGrowing")
SCRAPE = "1s"
RATE_INTERVAL = "4s"  # Grafana's $__rate_interval for a 1 s scrape: four scrapes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """``prometheus`` with its own config and storage under ``directory``."""

    def __init__(self, directory, scrape_target: str, rule_file: str) -> None:
        config = {
            "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE, "scrape_timeout": SCRAPE},
            "rule_files": [rule_file],
            "scrape_configs": [{"job_name": "tasktop", "static_configs": [{"targets": [scrape_target]}]}],
        }
        path = directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prometheus.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={path}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self._ready, timeout=60, interval=0.2, message=f"prometheus on {self.url}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=5) as reply:
                return reply.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str):
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as exc:  # a bad query: say which, and what Prometheus said
            raise AssertionError(f"{path} {params}: {exc.code} {exc.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list:
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, seconds: int = 30) -> list:
        now = time.time()
        return self.api("query_range", query=expr, start=f"{now - seconds:.3f}", end=f"{now:.3f}", step="1")["result"]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def exporter_url(sockdir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    proc = subprocess.Popen([*tasktop_cmd(), "exporter", "--port", "0", "--directory", sockdir, "--timeout", "0.8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    try:
        assert "serving http://" in line, f"exporter did not start: {line!r}"
        yield line.split("serving http://", 1)[1].split("/metrics", 1)[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)


@pytest.fixture
def prometheus(tmp_path, exporter_url):
    result = tasktop("rules", *RULE_ARGS)
    assert result.returncode == 0, result.stderr
    rule_file = tmp_path / "tasktop.rules.yml"
    rule_file.write_text(result.stdout)
    server = Prometheus(tmp_path, exporter_url, str(rule_file))
    yield server
    server.stop()


def grafana_expr(expr: str, command: str) -> str:
    """A panel's query as Grafana sends it, ``$command`` picked and ``$instance`` left at All
    (a picked value is regex-escaped, its backslashes doubled inside the PromQL string)."""
    return (expr.replace("$__rate_interval", RATE_INTERVAL).replace("$instance", ".*")
            .replace("$command", re.escape(command).replace("\\", "\\\\")))


def test_panels_and_alerts_on_a_real_prometheus(spawn, prometheus):
    leak = spawn(LEAK)
    saw = spawn(SAWTOOTH)
    leak_cmd, saw_cmd = "target0.py", "target1.py"
    wait_until(lambda: {leak_cmd, saw_cmd} <= set(prometheus.api("label/command/values")), timeout=60,
               message="both targets scraped")

    # The process picker lists both targets.
    picked = prometheus.api("label/command/values", **{"match[]": 'tasktop_process_up{instance=~".*"}'})
    assert {leak_cmd, saw_cmd} <= set(picked)

    # The growth alerts: pending, then firing, for the leak.
    seen: dict[str, list[str]] = {name: [] for name in GROWTH_ALERTS}

    def leak_alerts_firing() -> bool:
        states = {}
        for alert in prometheus.alerts():
            if alert["labels"]["alertname"] in GROWTH_ALERTS and alert["labels"]["pid"] == str(leak.pid):
                states[alert["labels"]["alertname"]] = alert["state"]
        for name, state in states.items():
            if not seen[name] or seen[name][-1] != state:
                seen[name].append(state)
        return all(states.get(name) == "firing" for name in GROWTH_ALERTS)

    wait_until(leak_alerts_firing, timeout=120, interval=0.2, message=f"the growth alerts firing ({seen})")
    assert seen == {name: ["pending", "firing"] for name in GROWTH_ALERTS}
    firing = {a["labels"]["alertname"]: a for a in prometheus.alerts() if a["labels"].get("pid") == str(leak.pid)}
    group_alert = firing["TasktopGroupGrowing"]
    assert group_alert["labels"]["where"].startswith("consume (target0.py:")
    assert group_alert["labels"]["state"] == "Queue.get" and group_alert["labels"]["command"] == leak_cmd
    assert f"tasktop dump {leak.pid}" in group_alert["annotations"]["description"]
    assert float(firing["TasktopTasksGrowing"]["value"]) > 60

    # Nothing for the sawtooth, which had the same time to fire: up as long, with peaks (as
    # scraped) of dozens of tasks, four times the 5-task rise a window that would fire, and a
    # floor that never rose.
    assert not [a for a in prometheus.alerts() if a["labels"].get("pid") == str(saw.pid)]
    saw_sel = f'{{pid="{saw.pid}"}}'
    (uptime,) = prometheus.query(f"time() - tasktop_process_start_time_seconds{saw_sel}")
    assert float(uptime["value"][1]) > rules.UPTIME_WINDOWS * WINDOW_S
    (peak,) = prometheus.query(f"max_over_time(sum(tasktop_tasks{saw_sel})[{3 * WINDOW_S}s:])")
    assert float(peak["value"][1]) >= 20

    # The tasks it loses (one a tick, kept by nothing) are counted by where they were made.
    lost = firing["TasktopTasksLost"]
    assert lost["labels"]["site"].startswith("main (target0.py:")

    # Every query of every panel of the shipped dashboard returns data for the leaking target.
    board = dashboard.shipped()
    empty = []
    for title, expr in dashboard.queries(board):
        promql = grafana_expr(expr, leak_cmd)
        data = prometheus.query_range(promql)
        if not data:
            empty.append((title, promql))
    assert empty == []
    if rules.PENDING_METRICS:
        assert prometheus.query(f'count({{__name__=~"{"|".join(rules.PENDING_METRICS)}"}})') == [], \
            "a pending metric is exported now: take it out of rules.PENDING_METRICS so its panel is checked"
    # Every variable's query too (label_values(metric{...}, label) through the label API).
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()
            values = prometheus.api(f"label/{label}/values", **{"match[]": grafana_expr(metric, leak_cmd)})
            assert values, variable["name"]
