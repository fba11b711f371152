"""``tasktop dashboard``: a Grafana dashboard for ``tasktop exporter``'s metrics.

The dashboard is built with Grafana's own builder library, grafana-foundation-sdk, from the panel
list below; the built JSON ships in the package (``tasktop-dashboard.json``) and is what
``tasktop dashboard`` prints, so printing it needs neither the SDK nor its Python (3.11+).  The
tests rebuild it with the SDK and fail if the shipped copy differs, and run every query of the
shipped copy against a real Prometheus.  Rebuild it after changing a panel with
``python -m tasktop.fleet.dashboard > fleet/tasktop-dashboard.json`` in the checkout.

Each panel's queries filter on two variables, ``$instance`` (the exporter) and ``$command`` (the
process picker: its label, which outlives restarts where ``pid`` does not), plus the data source
picker ``$datasource``; growth and stalls use Grafana's ``$__rate_interval``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field

from . import FleetError
from .rules import LOST_TASKS_METRIC

SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasktop-dashboard.json")
UID = "tasktop-fleet"
#: The selector every query carries.
SEL = 'instance=~"$instance", command=~"$command"'
PROC = "{{command}} ({{pid}})"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False  # a table's one value per series, not a time series


@dataclass(frozen=True)
class PanelSpec:
    """One panel: its kind (``timeseries``, ``table`` or ``stat``), title, unit and queries."""

    kind: str
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 12
    stacked: bool = False
    options: dict = field(default_factory=dict)


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("stat", "Processes", "Probed processes, and those whose probe did not answer the last scrape.", (
        Query(f"count(tasktop_process_up{{{SEL}}})", "probed", instant=True),
        Query(f"count(tasktop_process_up{{{SEL}}} == 0) or vector(0)", "not answering", instant=True),
    ), width=6),
    PanelSpec("stat", "Live asyncio tasks", "All live tasks of the selected processes.", (
        Query(f"sum(tasktop_tasks{{{SEL}}})", "tasks", instant=True),
    ), width=6),
    PanelSpec("stat", "Python threads", "All Python threads of the selected processes (not the probes' own).", (
        Query(f"sum(tasktop_threads{{{SEL}}})", "threads", instant=True),
    ), width=6),
    PanelSpec("stat", "RSS", "Resident memory of the selected processes, summed.", (
        Query(f"sum(tasktop_rss_bytes{{{SEL}}})", "RSS", instant=True),
    ), unit="bytes", width=6),
    PanelSpec("timeseries", "Asyncio tasks by state", "Live tasks of each process, stacked by what they wait on.", (
        Query(f"sum by (command, pid, state) (tasktop_tasks{{{SEL}}})", f"{PROC} {{{{state}}}}"),
    ), stacked=True),
    PanelSpec("timeseries", "Threads by state", "Python threads of each process, stacked by what they wait on.", (
        Query(f"sum by (command, pid, state) (tasktop_threads{{{SEL}}})", f"{PROC} {{{{state}}}}"),
    ), stacked=True),
    PanelSpec("table", "Largest groups", "The largest groups of identical tasks or threads, where your code made "
              "them wait, and the longest any member has waited. tasktop dump PID shows them all.", (
        Query(f"topk(10, tasktop_group_members{{{SEL}}})", instant=True),
        Query(f"tasktop_group_blocked_max_seconds{{{SEL}}} and topk(10, tasktop_group_members{{{SEL}}})", instant=True),
    ), width=24),
    PanelSpec("timeseries", "Growth per minute", "How fast each process's tasks, and the fastest-growing groups, "
              "grow. A leak stays above zero; bursts of work swing around it.", (
        Query(f"deriv(sum by (instance, command, pid) (tasktop_tasks{{{SEL}}})[$__rate_interval:]) * 60",
              f"{PROC} all tasks"),
        Query(f"topk(5, deriv(tasktop_group_members{{{SEL}}}[$__rate_interval]) * 60)",
              f"{PROC} {{{{kind}}}}s in {{{{state}}}} at {{{{where}}}}"),
    )),
    PanelSpec("timeseries", "Longest blocked", "For the 10 groups blocked longest: how long their longest-waiting "
              "member has waited on the same thing.", (
        Query(f"topk(10, tasktop_group_blocked_max_seconds{{{SEL}}})",
              f"{PROC} {{{{kind}}}}s in {{{{state}}}} at {{{{where}}}}"),
    ), unit="s"),
    PanelSpec("timeseries", "Event-loop lag", "The latest delay of the probe's heartbeat on each event loop.", (
        Query(f"tasktop_loop_lag_seconds{{{SEL}}}", f"{PROC} loop {{{{loop}}}} ({{{{thread}}}})"),
    ), unit="s", width=8),
    PanelSpec("timeseries", "Event-loop stalls", "Times an event loop did not answer within TASKTOP_STALL_MS.", (
        Query(f"increase(tasktop_loop_stalls_total{{{SEL}}}[$__rate_interval])",
              f"{PROC} loop {{{{loop}}}} ({{{{thread}}}})"),
    ), width=8),
    PanelSpec("timeseries", "RSS by process", "Resident set size of each process.", (
        Query(f"tasktop_rss_bytes{{{SEL}}}", PROC),
    ), unit="bytes", width=8),
    PanelSpec("timeseries", "Lost tasks", "Tasks garbage-collected while still pending, by where they were made "
              "(empty until the exporter reports them).", (
        Query(f"sum by (command, pid, site) (increase({LOST_TASKS_METRIC}{{{SEL}}}[$__rate_interval]))",
              f"{PROC} {{{{site}}}}"),
    ), width=24),
)

VARIABLES = (
    ("instance", "exporter", "label_values(tasktop_process_up, instance)"),
    ("command", "process", 'label_values(tasktop_process_up{instance=~"$instance"}, command)'),
)


def build() -> dict:
    """The dashboard, built with grafana-foundation-sdk (``FleetError`` if it is not installed)."""
    try:
        from grafana_foundation_sdk.builders import common as cb, dashboard as db, prometheus, stat, table, timeseries
        from grafana_foundation_sdk.models import prometheus as pm
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.models import common as cm, dashboard as dm
    except ImportError:
        raise FleetError("building the dashboard needs grafana-foundation-sdk (Python 3.11+): "
                         "pip install 'tasktop[grafana]'") from None

    source = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
    board = (db.Dashboard("tasktop: asyncio tasks and threads").uid(UID)
             .description("What is piling up inside Python processes, from tasktop exporter.")
             .tags(["tasktop", "python", "asyncio"]).time("now-3h", "now").refresh("30s")
             .tooltip(dm.DashboardCursorSync.CROSSHAIR).timezone("browser").editable()
             .with_variable(db.DatasourceVariable("datasource").label("data source").type("prometheus")))
    for name, label, query in VARIABLES:
        board = board.with_variable(
            db.QueryVariable(name).label(label).datasource(source).query(query)
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*"))
    for spec in PANELS:
        targets = []
        for ref, q in zip("ABCDEFGH", spec.queries):
            target = prometheus.Dataquery().expr(q.expr).ref_id(ref).legend_format(q.legend or "__auto")
            if q.instant:
                target = target.instant()
                if spec.kind == "table":
                    target = target.format(pm.PromQueryFormat.TABLE)
            targets.append(target)
        if spec.kind == "timeseries":
            panel = timeseries.Panel().line_width(1).fill_opacity(20 if spec.stacked else 0).legend(
                cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.BOTTOM)
                .show_legend(True).calcs(["lastNotNull", "max"]))
            if spec.stacked:
                panel = panel.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        elif spec.kind == "table":
            panel = (table.Panel()
                     .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
                     .with_transformation(dm.DataTransformerConfig(id_val="organize", options={
                         "excludeByName": {"Time": True, "job": True, "__name__": True},
                         "indexByName": {"command": 0, "pid": 1, "kind": 2, "state": 3, "where": 4,
                                         "Value #A": 5, "Value #B": 6, "group": 7, "instance": 8},
                         "renameByName": {"Value #A": "members", "Value #B": "longest blocked (s)"},
                     }))
                     .sort_by([cb.TableSortByFieldState().display_name("members").desc(True)]))
        else:
            panel = stat.Panel().graph_mode(cm.BigValueGraphMode.AREA)
        panel = (panel.title(spec.title).description(spec.description).datasource(source).unit(spec.unit)
                 .span(spec.width).height(8).targets(targets))
        board = board.with_panel(panel)
    return json.loads(JSONEncoder(sort_keys=True).encode(board.build()))


def shipped() -> dict:
    """The dashboard as shipped with the package."""
    with open(SHIPPED, encoding="utf-8") as fh:
        return json.load(fh)


def to_json(board: dict) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def queries(board: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel of ``board``."""
    return [(panel.get("title", ""), target["expr"]) for panel in board.get("panels", [])
            for target in panel.get("targets", []) if target.get("expr")]


# -- the command ----------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tasktop dashboard``."""
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    """Print (or write) the shipped dashboard JSON, ready for Grafana's Dashboards > Import."""
    text = to_json(shipped())
    if args.output and args.output != "-":
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise FleetError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0


def main() -> int:
    """``python -m tasktop.fleet.dashboard``: print the dashboard freshly built with the SDK (what
    the shipped copy must be)."""
    try:
        sys.stdout.write(to_json(build()))
    except FleetError as exc:
        print(f"tasktop dashboard: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
