"""Which steps the background job projects first: what the user looks at, then a stride over a long log."""

from __future__ import annotations

import json
import os

from helpers import WsgiApp, write_run

from tensorboard_plugin_dvi import jobs


class _Index:
    def __init__(self, steps: list[int]) -> None:
        self.steps = steps


def _order(pending: set[int], steps: list[int], priority: list[int] | None = None) -> list[int]:
    state = jobs._RunState(index=_Index(steps), pending=set(pending), priority=list(priority or []))
    out = []
    while state.pending:
        step = jobs.ProjectionService._next_step(state)
        state.pending.discard(step)
        out.append(step)
    return out


def test_short_logs_are_projected_in_order():
    assert _order({3, 1, 2, 0}, [0, 1, 2, 3]) == [0, 1, 2, 3]


def test_asked_for_steps_come_first_most_recent_first():
    assert _order({0, 1, 2, 3, 4}, [0, 1, 2, 3, 4], priority=[4, 2]) == [4, 2, 0, 1, 3]


def test_a_long_log_gets_a_coarse_stride_before_the_rest():
    steps = list(range(1000))
    order = _order(set(steps), steps, priority=[700])
    assert order[0] == 700
    stride = order[1:20]
    assert stride == [s for s in range(0, 1000, 50) if s != 700], stride  # spread over the whole run
    assert order[20:23] == [1, 2, 3] and sorted(order) == steps


def test_the_viewed_step_is_ready_first_and_every_result_is_served(tmp_path):
    write_run(str(tmp_path / "run"), steps=6)
    app = WsgiApp(str(tmp_path))
    try:
        assert app.get("projection?run=run&step=5").status_code == 202
        assert app.plugin.service.wait_idle(600)
        for step in range(6):
            assert app.get(f"projection?run=run&step={step}").status_code == 200, step
        folder = os.path.join(app.index("run").store.root, "cache")
        folder = os.path.join(folder, os.listdir(folder)[0])
        metas = {int(n[5:13]): os.path.getmtime(os.path.join(folder, n)) for n in os.listdir(folder)
                 if n.endswith(".json")}
        assert min(metas, key=metas.get) == 5, "the step the user asked for was not projected first"
        with open(os.path.join(folder, [n for n in os.listdir(folder) if n.startswith("step_00000003")
                                        and n.endswith(".json")][0])) as handle:
            assert json.load(handle)["prev"].startswith("step_00000002"), "filled-in steps warm-start in order"
    finally:
        app.close()
