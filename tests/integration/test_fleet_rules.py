"""``tasktop rules``: the generated rule file passes ``promtool check rules``, and ``promtool test
rules`` runs the shipped defaults over synthetic series: leaks that fire, and a sawtooth, a step,
restarts and self-waking waits that must not."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from conftest import tasktop
from tasktop.fleet import rules

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")

T = rules.Thresholds()
MINUTES = 180  # every synthetic series: one sample a minute for three hours


def proc(pid: int, command: str) -> str:
    return f'job="tasktop", instance="host:10464", pid="{pid}", command="{command}"'


def group(pid: int, command: str, state: str = "Queue.get", gid: str = "a1b2c3d4e5f6",
          where: str = "consume (app.py:12)") -> str:
    return f'{proc(pid, command)}, group="{gid}", kind="task", state="{state}", where="{where}"'


def values(points: list[float]) -> str:
    return " ".join(f"{v:g}" for v in points)


def ramp(start: float, per_minute: float, minutes: int = MINUTES) -> list[float]:
    return [start + per_minute * m for m in range(minutes + 1)]


def sawtooth(period: int, peak: float, minutes: int = MINUTES) -> list[float]:
    """Bursts that finish: up to ``peak`` over ``period`` minutes, then back to 0."""
    return [peak * (m % period) / period for m in range(minutes + 1)]


def restarted(at: int, steady: float, warmup: int) -> list[float]:
    """``steady`` tasks, a restart at minute ``at`` (down to 0), a warm-up of ``warmup`` minutes."""
    return [steady if m < at else min(steady, steady * (m - at) / warmup) for m in range(MINUTES + 1)]


def started(at_minute: int = 0, until: int = MINUTES) -> str:
    return f"{at_minute * 60}x{until}"


def alerts(name: str, minute: int, *expected: dict) -> dict:
    return {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": list(expected)}


RULES = {r["alert"]: r for r in rules.rules(T)}
_TEMPLATE = re.compile(r"\{\{ \$labels\.(\w+) \}\}|\{\{ \$value \| \w+ \}\}")


def firing(labels: str, name: str | None = None, value: str = "") -> dict:
    """An alert of ``labels``; with ``name``, its annotations too, ``$value`` rendered as ``value``
    (the two tests that matter most spell theirs out in full instead)."""
    out = dict(item.split("=", 1) for item in labels.replace('"', "").split(", "))
    out.update(severity="warning")
    if name is None:
        return {"exp_labels": out}
    fill = lambda m: out[m.group(1)] if m.group(1) else value  # noqa: E731
    return {"exp_labels": out, "exp_annotations": {k: _TEMPLATE.sub(fill, v)
                                                   for k, v in RULES[name]["annotations"].items()}}


def series(name: str, labels: str, points) -> dict:
    return {"series": f"{name}{{{labels}}}", "values": points if isinstance(points, str) else values(points)}


# -- the scenarios -------------------------------------------------------------------------------------
LEAK, BURSTS, STEP, SAME_PID, OLD_PID, NEW_PID = (101, "leak.py"), (102, "bursts.py"), (103, "step.py"), \
    (104, "restart.py"), (105, "old.py"), (106, "new.py")


def growth_test() -> dict:
    """20 new tasks a minute that never finish, next to processes whose tasks do."""
    leak_group = group(*LEAK, where="consume_orders (shop.py:125)")
    input_series = [
        series("tasktop_tasks", proc(*LEAK) + ', state="Queue.get"', ramp(100, 20)),
        series("tasktop_group_members", leak_group, ramp(100, 20)),
        series("tasktop_process_start_time_seconds", proc(*LEAK), started()),
        # a sawtooth: up to 900 tasks every 10 minutes, all finishing
        series("tasktop_tasks", proc(*BURSTS) + ', state="sleep"', sawtooth(10, 900)),
        series("tasktop_group_members", group(*BURSTS, state="sleep"), sawtooth(10, 900)),
        series("tasktop_process_start_time_seconds", proc(*BURSTS), started()),
        # a step: 1000 more tasks for good at minute 90 (more load, not a leak)
        series("tasktop_tasks", proc(*STEP) + ', state="Queue.get"', [200 + 1000 * (m >= 90) for m in range(MINUTES + 1)]),
        series("tasktop_group_members", group(*STEP), [200 + 1000 * (m >= 90) for m in range(MINUTES + 1)]),
        series("tasktop_process_start_time_seconds", proc(*STEP), started()),
        # restarted at minute 80 with the same pid (a container's pid 1): a 25-minute warm-up
        series("tasktop_tasks", proc(*SAME_PID) + ', state="Queue.get"', restarted(80, 1000, 25)),
        series("tasktop_group_members", group(*SAME_PID), restarted(80, 1000, 25)),
        series("tasktop_process_start_time_seconds", proc(*SAME_PID),
               values([0 if m < 80 else 80 * 60 for m in range(MINUTES + 1)])),
        # restarted at minute 80 with a new pid: the old series end, new ones warm up
        series("tasktop_tasks", proc(*OLD_PID) + ', state="Queue.get"', "1000x79"),
        series("tasktop_group_members", group(*OLD_PID), "1000x79"),
        series("tasktop_process_start_time_seconds", proc(*OLD_PID), "0x79"),
        series("tasktop_tasks", proc(*NEW_PID) + ', state="Queue.get"', "_x80 " + values(restarted(80, 1000, 25)[80:])),
        series("tasktop_group_members", group(*NEW_PID), "_x80 " + values(restarted(80, 1000, 25)[80:])),
        series("tasktop_process_start_time_seconds", proc(*NEW_PID), f"_x80 {80 * 60}x{MINUTES - 80}"),
    ]
    checks = []
    # Not before the process has been up four windows (60 min), whatever the growth.
    for name in ("TasktopTasksGrowing", "TasktopGroupGrowing"):
        checks.append(alerts(name, 55))
    checks.append(alerts("TasktopTasksGrowing", 90, firing(proc(*LEAK), "TasktopTasksGrowing", "20")))
    checks.append({**alerts("TasktopGroupGrowing", 90, {
        **firing(leak_group),
        "exp_annotations": {
            "summary": "leak.py (pid 101 on host:10464): tasks in Queue.get at consume_orders (shop.py:125) "
                       "grow by 20 a minute",
            "description": "Group a1b2c3d4e5f6 (tasks in Queue.get at consume_orders (shop.py:125)): its "
                           "fewest members of each 15m window rose by more than 5 a minute in each of the "
                           "last two windows. See every member with: tasktop dump 101",
        }})})
    # The restarts' warm-ups would fire from 124 to 131 min without the uptime guard (see
    # rules.UPTIME_WINDOWS and the test below); the step would fire from about 115 to 120 min if
    # one window's rise were enough.
    for minute in (105, 115, 118, 125, 128, 135, 150, 170):
        for name, labels in (("TasktopTasksGrowing", proc(*LEAK)), ("TasktopGroupGrowing", group(*LEAK, where="consume_orders (shop.py:125)"))):
            checks.append(alerts(name, minute, firing(labels, name, "20")))
    return {"interval": "1m", "input_series": input_series, "alert_rule_test": checks}


def other_rules_test() -> dict:
    stuck, asleep, busy = group(201, "stuck.py", "Lock.acquire"), group(201, "stuck.py", "sleep", gid="0f0f0f0f0f0f"), \
        group(201, "stuck.py", "Event.wait", gid="1e1e1e1e1e1e")
    loop = proc(202, "loop.py") + ', loop="1", thread="MainThread"'
    restarted_loop = proc(203, "restarted.py") + ', loop="1", thread="MainThread"'
    input_series = [
        series("tasktop_tasks", proc(200, "many.py") + ', state="future"', "12000x20"),
        series("tasktop_tasks", proc(204, "fewer.py") + ', state="future"', "9000x20"),
        # every member blocked since minute 0 on a lock; members of the other groups come and go
        series("tasktop_group_blocked_min_seconds", stuck, "0+60x60"),
        series("tasktop_group_blocked_min_seconds", asleep, "0+60x60"),
        series("tasktop_group_blocked_min_seconds", busy, "5x60"),
        series("tasktop_loop_stalls_total", loop, "0+1x30"),
        # a restart with the same pid resets the counter: not a stall
        series("tasktop_loop_stalls_total", restarted_loop, "50x15 0x15"),
        series("tasktop_loop_lag_seconds", loop, "0.2x20"),
        series("tasktop_loop_lag_seconds", restarted_loop, " ".join(["0.001 0.9"] * 10)),
        series(rules.LOST_TASKS_METRIC, proc(205, "lossy.py") + ', site="spawn (app.py:40)"', "0 0 0 1 2 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3"),
        series("tasktop_process_up", proc(206, "hung.py"), "0x10"),
        series("tasktop_process_up", proc(207, "fine.py"), "1x10"),
    ]
    checks = [
        alerts("TasktopTooManyTasks", 3),
        alerts("TasktopTooManyTasks", 10, firing(proc(200, "many.py"), "TasktopTooManyTasks", "12k")),
        alerts("TasktopGroupStuck", 33),  # over 30 min since minute 30, for 5 min
        alerts("TasktopGroupStuck", 40, {
            **firing(stuck),
            "exp_annotations": {
                "summary": "stuck.py (pid 201 on host:10464): tasks in Lock.acquire at consume (app.py:12) all "
                           "blocked for 40m 0s",
                "description": "Every member of group a1b2c3d4e5f6 has waited on Lock.acquire for at least 40m 0s, "
                               "and nothing wakes that but another task or thread. tasktop dump 201 tells whether "
                               "it is a proven leak.",
            }}),
        alerts("TasktopEventLoopStalls", 20, firing(loop, "TasktopEventLoopStalls", "10")),
        alerts("TasktopEventLoopLagging", 10, firing(loop, "TasktopEventLoopLagging", "200ms")),
        alerts("TasktopTasksLost", 13, firing(proc(205, "lossy.py") + ', site=spawn (app.py:40)', "TasktopTasksLost", "2")),
        alerts("TasktopTasksLost", 18),  # none lost in the last 10 minutes
        alerts("TasktopProbeDown", 3),
        alerts("TasktopProbeDown", 6, firing(proc(206, "hung.py"), "TasktopProbeDown")),
    ]
    return {"interval": "1m", "input_series": input_series, "alert_rule_test": checks}


def write_rules(tmp_path, *args: str) -> str:
    result = tasktop("rules", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    path = tmp_path / "tasktop.rules.yml"
    path.write_text(result.stdout)
    return str(path)


# -- tests -----------------------------------------------------------------------------------------------
@needs_promtool
def test_shipped_rules_pass_promtool_check(tmp_path):
    path = write_rules(tmp_path)
    check = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules.rules(T))} rules found" in check.stdout
    names = [r["alert"] for r in yaml.safe_load(open(path))["groups"][0]["rules"]]
    assert names == ["TasktopTasksGrowing", "TasktopGroupGrowing", "TasktopTooManyTasks", "TasktopGroupStuck",
                     "TasktopEventLoopStalls", "TasktopEventLoopLagging", "TasktopTasksLost", "TasktopProbeDown"]


@needs_promtool
def test_shipped_rules_unit_tests(tmp_path):
    path = write_rules(tmp_path)
    tests = tmp_path / "tasktop.rules.test.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [path], "evaluation_interval": "1m",
                                     "tests": [growth_test(), other_rules_test()]}, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_without_the_uptime_guard_a_restart_would_fire(tmp_path):
    """The restart scenarios are not vacuous: the same rules minus the uptime clause fire on them."""
    path = write_rules(tmp_path)
    doc = yaml.safe_load(open(path))
    for rule in doc["groups"][0]["rules"]:
        rule["expr"] = rule["expr"].split("\nand on (job, instance, pid)")[0]
    unguarded = tmp_path / "unguarded.yml"
    unguarded.write_text(yaml.safe_dump(doc))
    test = growth_test()
    test["alert_rule_test"] = [alerts("TasktopTasksGrowing", 128, *(
        firing(proc(*p), "TasktopTasksGrowing", v) for p, v in ((SAME_PID, "18.67"), (NEW_PID, "18.67"), (LEAK, "20"))))]
    tests = tmp_path / "unguarded.test.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(unguarded)], "evaluation_interval": "1m", "tests": [test]}))
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_thresholds_are_arguments(tmp_path):
    path = write_rules(tmp_path, "--window", "1h", "--max-group-growth", "2.5", "--growth-for", "0s",
                       "--max-blocked", "5m", "--stuck-ignore", "sleep|Queue.get")
    text = open(path).read()
    assert "# Made by: tasktop rules --window=1h --growth-for=0s --max-group-growth=2.5 --max-blocked=5m " \
           "--stuck-ignore='sleep|Queue.get'\n" in text
    by_name = {r["alert"]: r for r in yaml.safe_load(text)["groups"][0]["rules"]}
    grow = by_name["TasktopGroupGrowing"]
    assert "min_over_time(tasktop_group_members[1h:] offset 2h)" in grow["expr"]
    assert "/ 60\n> 2.5\n" in grow["expr"]
    assert "tasktop_process_start_time_seconds > 14400)" in grow["expr"]  # up 4 windows
    assert "for" not in grow
    assert "for" not in by_name["TasktopTasksGrowing"] and by_name["TasktopTooManyTasks"]["for"] == "5m"
    assert by_name["TasktopGroupStuck"]["expr"] == 'tasktop_group_blocked_min_seconds{state!~"sleep|Queue.get"} > 300'


@pytest.mark.parametrize("args, message", [
    (["--window", "15"], "not a duration: '15' (like 90s, 15m or 1h30m)"),
    (["--window", "0s"], "--window must be longer than 0s"),
    (["--max-tasks", "-1"], "must be a finite number, not negative: '-1'"),
    (["--max-lag", "nan"], "must be a finite number, not negative: 'nan'"),
    (["--stuck-ignore", "(sleep"], "--stuck-ignore: not a regular expression"),
])
def test_bad_thresholds_are_one_line_errors(args, message):
    result = tasktop("rules", *args)
    assert result.returncode in (1, 2)
    assert result.stdout == ""
    assert result.stderr.startswith("tasktop: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
