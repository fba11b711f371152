"""The groups table is updated in place (rows kept by key, cells rewritten only when they
change, one sort for the order, rendered cells remembered per cell): driven through the real
app with Pilot on a recording whose groups grow, move, vanish and appear, it must show exactly
the model's rows, in the model's order, with the right mouse metadata on every line."""
from __future__ import annotations

import pytest
from textual.widgets.data_table import ColumnKey

from tasktop.client.recorded import open_recording
from tasktop.tui.app import TasktopApp
from tasktop.tui.panels.groups import COLUMNS, GroupsTable
from tasktop.tui.replay import ReplayScreen
from tasktop.wire.recording import Writer


@pytest.fixture
def anyio_backend():
    return "asyncio"


def group(name: str, count: int, t: float, state: str = "Queue.get") -> dict:
    return {"id": name.rjust(12, "0"), "kind": "thread" if name.startswith("f") else "task", "count": count,
            "state": state, "blocked_min_s": 1.0, "blocked_max_s": round(t - 1000.0 + count, 3),
            "stack": [{"func": f"handler_{name}", "file": f"/srv/shop/{name}.py", "line": count % 7 + 1}]}


def summary(t: float, counts: dict) -> dict:
    groups = sorted((group(name, count, t) for name, count in counts.items()), key=lambda g: (-g["count"], g["id"]))
    return {"schema": 1, "time": t, "process": {"pid": 42, "argv": ["/srv/shop/app.py"], "started_at": 900.0},
            "probe": {"version": "x", "interval_s": 1.0},
            "totals": {"tasks": sum(counts.values()), "threads": 1, "loops": 1, "groups": len(counts)},
            "memory": {"rss_bytes": 1000}, "loops": [], "groups": groups}


def moments() -> list[dict]:
    """40 groups; then one grows to the top, one vanishes, one appears; then half are replaced
    by others; then the first ones come back."""
    first = {**{f"a{i}": 10 + i for i in range(40)}, "f9": 5}
    second = dict(first, a3=500, b1=33)
    del second["a20"]
    third = {**{f"a{i}": 10 + i for i in range(15)}, **{f"c{i}": 60 - i for i in range(25)}, "f1": 7}
    fourth = dict(first, a0=1)
    return [summary(1000.0 + n, counts) for n, counts in enumerate([first, second, third, fourth, second])]


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "moves.ttrec"
    summaries = moments()
    with open(path, "wb") as fh:
        writer = Writer(fh.write, {"process": summaries[0]["process"], "started": summaries[0]["time"]})
        for s in summaries:
            writer.sample(s)
    return open_recording(str(path))


def check(screen: ReplayScreen) -> None:
    """The table shows the model's rows, in its order, each line with its own row metadata."""
    table = screen.query_one(GroupsTable)
    rows = screen.session.model.rows(screen.session.kind, screen.session.filter, screen.session.sort)
    assert table.row_count == len(rows)
    shown = [table.id_at(index) for index in range(table.row_count)]
    assert shown == [row.id for row in rows]
    for index, row in enumerate(rows):
        cells = table.get_row_at(index)
        assert cells[0].plain.strip() == f"{row.count:,}"
        assert cells[2].plain.strip() == row.kind
        assert cells[5].plain.strip().startswith(row.where[:10])
    kinds = [table.get_row_at(index)[2] for index in range(len(rows))]  # equal cells are one (drawn once)
    assert len({id(cell) for cell in kinds}) == len({cell.plain for cell in kinds})
    for number, (key, _) in enumerate(COLUMNS):  # every column as wide as its widest cell
        column = table.columns[ColumnKey(key)]
        widest = max([column.label.cell_len] + [table.get_row_at(i)[number].cell_len for i in range(len(rows))])
        assert column.content_width == widest, key
    # Textual's rendered rows are keyed by the table's update count: those of earlier counts go
    # at the next redraw (a resize may move the count between two).
    assert len({key[0] for key in table._row_renderable_cache.keys()}) <= 2
    top = int(table.scroll_y)
    for y in range(1, min(table.size.height, len(rows) + 1 - top)):  # line 0 is the header
        index = top + y - 1
        strip = table.render_line(y)
        assert f"{rows[index].count:,}" in strip.text, (y, strip.text)
        assert rows[index].where[:10] in strip.text, (y, strip.text)
        metas = {segment.style.meta.get("row") for segment in strip if segment.style and segment.style.meta}
        assert metas == {index}, (y, metas)


@pytest.mark.anyio
async def test_the_table_follows_moves_arrivals_departures_and_sorts(recording):
    app = TasktopApp(replay=(recording, recording.start))
    async with app.run_test(size=(100, 30)) as pilot:
        while not (isinstance(app.screen, ReplayScreen) and app.screen.index >= 0):
            await pilot.pause(0.01)
        screen = app.screen
        table = screen.query_one(GroupsTable)
        check(screen)
        await pilot.press("down", "down")  # the user picks a group: the cursor follows it from now on
        for _ in range(len(recording) - 1):
            picked, index = table.selected_id, table.cursor_row
            await pilot.press("full_stop")
            check(screen)
            rows = screen.session.model.rows()
            if picked in {row.id for row in rows}:
                assert table.selected_id == picked
            else:  # it is gone: the cursor stays where it was
                assert table.cursor_row == min(index, len(rows) - 1)
        for _ in range(3):
            await pilot.press("s")  # growth, blocked, count
            check(screen)
        await pilot.press("comma", "comma")
        check(screen)
        await pilot.press("g")
        check(screen)
        await pilot.press("t")  # tasks only
        check(screen)
        await pilot.press("t")  # threads only: a whole other set of rows
        check(screen)
        assert 0 < table.row_count == len(screen.session.model.rows("thread")) < 5
        await pilot.press("t")
        check(screen)
