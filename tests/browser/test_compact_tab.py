"""The tab loads its maps in the compact form (quantised coordinates, only changed predictions against a step it
holds) from a real tensorboard, and draws what the server's binary form says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import get, poll, start_tensorboard, stop, write_run
from tabkit import Tab, post, runs_by_name

from tensorboard_plugin_dvi import binary, transfer

pytestmark = [pytest.mark.browser, pytest.mark.server]

RUN, STEPS, N = "compact", 3, 300


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvi_compact") / "logs"
    write_run(str(root / RUN), steps=STEPS, n=N, d=16, c=3, seed=3)
    proc, url = start_tensorboard(str(root))
    try:
        assert poll(lambda: RUN in runs_by_name(url), timeout=90), "run never listed"
        status, body = post(url + "/data/plugin/dvi/project", {"run": RUN}, {"X-XSRF-Protected": "1"})
        assert status in (200, 202), body[:300]
        assert poll(lambda: runs_by_name(url)[RUN]["status"]["state"] == "ready", timeout=600, interval=1.0)
        yield url
    finally:
        stop(proc)


def test_the_tab_draws_from_compact_answers(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    answers = []

    def keep(resp):
        if "/data/plugin/dvi/projection?" in resp.url and resp.status == 200:
            answers.append((resp.url, resp.body()))

    page.on("response", keep)
    tab = Tab(page, server).open()
    try:
        for index in (0, 1, 2):
            tab.goto_step_index(index)
        assert answers, "the tab fetched no projection"
        for url, body in answers:
            assert "format=compact" in url, url
            header, _ = binary.decode(body)
            assert header["encoding"] == transfer.ENCODING
        assert any(binary.decode(body)[0]["base"] is not None for _, body in answers), \
            "no answer was relative to a step the tab already held"
        assert all(len(body) < 12 * N for _, body in answers), "compact answers should be far below 17 bytes a point"
        stats = tab.js("__dvi.fetches")
        assert stats["projectionBytes"] == sum(len(b) for _, b in answers)
        # what is drawn is what the server's binary form says, within the quantisation step
        status, raw = get(f"{server}/data/plugin/dvi/projection?run={RUN}&step={STEPS - 1}&format=binary")
        header, ref = binary.decode(raw)
        order = np.argsort(ref["ids"])
        drawn = np.array(tab.js("__dvi.positions(0)"), dtype=float).reshape(-1, 2)
        want = np.c_[ref["x"], ref["y"]][order]
        width = max(ref["x"].max() - ref["x"].min(), ref["y"].max() - ref["y"].min())
        assert np.abs(drawn - want).max() <= width / 30000, "drawn positions differ from the server's"
        panel = tab.js("__dvi.panels")[0]
        assert panel["lastFrameDrawn"] == N and not panel["moving"], "at rest every point is drawn"
        assert json.loads(get(f"{server}/data/plugin/dvi/runs")[1])["runs"][0]["n"] == N
        assert not tab.errors, f"JavaScript errors in the tab: {tab.errors}"
    finally:
        context.close()
