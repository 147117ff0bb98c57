"""Test helpers that write real DVI runs and start real TensorBoard processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request

import numpy as np
import torch

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import layers

STEPS = 12
"""Steps of the shared projected run (the `projected` fixture): more than TensorBoard's default sample of 10."""


def write_run(run_dir: str, steps: int, n: int = 60, d: int = 8, c: int = 3, seed: int = 0,
              inputs: bool = False) -> None:
    """A run of `steps` steps whose features drift slowly, with a linear head that changes a little each step."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=gen)
    head = torch.nn.Linear(d, c)
    labels = torch.randint(0, c, (n,), generator=gen)
    split = np.arange(n) < int(0.8 * n)
    images = np.random.default_rng(seed).integers(0, 255, size=(n, 8, 8), dtype=np.uint8) if inputs else None
    for step in range(steps):
        feats = base + 0.05 * step * torch.randn(n, d, generator=gen)
        dvi.summary.snapshot(run_dir, step, feats, labels, head, split=split, inputs=images)
    dvi.summary.close(run_dir)


def start_tensorboard(logdir: str, *extra: str, timeout: float = 90.0) -> tuple[subprocess.Popen, str]:
    """Start the real `tensorboard` command on a free loopback port; return the process and its base URL.

    Output goes to `<logdir>/../tensorboard-<pid>.log` (a file, so a chatty server never blocks on a full pipe).
    """
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    log_path = os.path.join(os.path.dirname(os.path.abspath(logdir)), f"tensorboard-{time.time_ns()}.log")
    log = open(log_path, "w")  # noqa: SIM115 - kept open for the process's lifetime
    proc = subprocess.Popen(
        [exe, "--logdir", logdir, "--host", "127.0.0.1", "--port", "0", "--reload_interval", "1", *extra],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    proc.log_path = log_path  # type: ignore[attr-defined]
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        with open(log_path) as handle:
            match = re.search(r"(http://127\.0\.0\.1:\d+/)", handle.read())
        if match:
            return proc, match.group(1).rstrip("/")
        time.sleep(0.2)
    proc.kill()
    with open(log_path) as handle:
        raise RuntimeError("tensorboard did not start:\n" + handle.read())


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started by :func:`start_tensorboard`."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """GET `url`; return (status, body) without raising for HTTP errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def poll(fn, timeout: float = 60.0, interval: float = 0.5):
    """Call `fn` until it returns a truthy value or `timeout` passes; return the last value."""
    deadline = time.time() + timeout
    value = fn()
    while not value and time.time() < deadline:
        time.sleep(interval)
        value = fn()
    return value


def loader_flags(**overrides):
    """The DVI flags as the `tensorboard` command would parse them with no arguments (plus overrides)."""
    import argparse

    from tensorboard_plugin_dvi.loader import DviLoader

    parser = argparse.ArgumentParser()
    DviLoader().define_flags(parser)
    flags = parser.parse_args([])
    flags.samples_per_plugin = {}
    for key, value in overrides.items():
        setattr(flags, key, value)
    DviLoader().fix_flags(flags)
    return flags


class WsgiApp:
    """The DVI plugin inside `TensorBoardWSGI` over a multiplexer sampled like the CLI's Python loader."""

    def __init__(self, logdir: str, **flag_overrides) -> None:
        from tensorboard.backend import application
        from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
        from tensorboard.plugins import base_plugin
        from werkzeug.test import Client

        from tensorboard_plugin_dvi.loader import DviLoader

        self.flags = loader_flags(**flag_overrides)
        # Tensors are sampled to 10 per tag, as the CLI does for plugins not named in samples_per_plugin;
        # the loader's fix_flags decides what DVI gets.
        self.mux = plugin_event_multiplexer.EventMultiplexer(
            size_guidance={"tensors": 10}, tensor_size_guidance=dict(self.flags.samples_per_plugin))
        self.logdir = logdir
        self.reload()
        provider = data_provider.MultiplexerDataProvider(self.mux, logdir)
        context = base_plugin.TBContext(logdir=logdir, data_provider=provider, flags=self.flags)
        self.plugin = DviLoader().load(context)
        self.client = Client(application.TensorBoardWSGI([self.plugin], data_provider=provider))

    def reload(self) -> None:
        self.mux.AddRunsFromDirectory(self.logdir)
        self.mux.Reload()

    def get(self, path: str, **kwargs):
        return self.client.get("/data/plugin/dvi/" + path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.client.post("/data/plugin/dvi/" + path, **kwargs)

    def index(self, run: str):
        """The plugin's catalog entry for `run` (what the routes see)."""
        from tensorboard.context import RequestContext

        return self.plugin._catalog.index(RequestContext(), "", run)

    def close(self) -> None:
        self.plugin.close()


MNIST_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "data",
                          "mnist10k.npz")


def write_mnist_run(run_dir: str, steps: int, n: int = 600, seed: int = 0, noise: float = 0.0,
                    encoder: bool = False, offset: int = 0) -> dict:
    """A real (small) training run: an MLP learning MNIST digits, one DVI snapshot per step.

    Returns facts the tests check against: ids of flipped labels, the labels, the split.
    """
    with np.load(MNIST_PATH) as data:
        images = torch.from_numpy(data["images"][offset:offset + n]).float().div_(255.0)
        labels = data["labels"][offset:offset + n].astype(np.int64)
    rng = np.random.default_rng(seed)
    n_train = int(0.8 * n)
    flipped = np.sort(rng.choice(n_train, size=int(noise * n_train), replace=False))
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, size=flipped.size)) % 10
    torch.manual_seed(seed)
    body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU())
    head = torch.nn.Linear(64, 10)
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=3e-3)
    split = np.arange(n) < n_train
    y = torch.from_numpy(labels[:n_train])
    for step in range(steps):
        for _ in range(8):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(head(body(images[:n_train])), y)
            loss.backward()
            opt.step()
        with torch.no_grad():
            feats = body(images)
        dvi.summary.snapshot(run_dir, step, feats, labels, head, split=split, inputs=images,
                             encoder=body if encoder else None, sample_ids=np.arange(offset, offset + n),
                             flags={"flipped": flipped + offset} if noise else None)
    dvi.summary.close(run_dir)
    return {"flipped": flipped + offset, "labels": labels, "split": split, "ids": np.arange(offset, offset + n)}


def project_logdir(logdir: str) -> None:
    """Precompute every run's projections with the offline CLI (the same cache the plugin serves)."""
    from tensorboard_plugin_dvi import cli

    assert cli.main(["--logdir", logdir, "--quiet", "--threads", "1"]) == 0


def make_step_data(n: int = 60, d: int = 8, c: int = 3, seed: int = 0):
    """Small synthetic features with a matching linear head and labels (the head's own predictions)."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, d, generator=gen)
    head = torch.nn.Linear(d, c)
    with torch.no_grad():
        labels = head(feats).argmax(1)
    return feats, labels, head


def write_continual_run(run_dir: str, steps: int, switch: int, n: int = 800, seed: int = 0) -> None:
    """An MLP on ``n`` real digits (80 % train) learning 0-4 for ``switch`` logged steps, then only 5-9 until
    ``steps``; a snapshot and the layer statistics (after ``backward()``) at every step."""
    with np.load(MNIST_PATH) as data:
        images = torch.from_numpy(data["images"][:n]).float().div_(255.0).flatten(1)
        labels = data["labels"][:n].astype(np.int64)
    n_train = int(0.8 * n)
    split = np.arange(n) < n_train
    torch.manual_seed(seed)
    body = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU())
    head = torch.nn.Linear(64, 10)
    model = torch.nn.Sequential(body, head)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        pool = np.flatnonzero(split & ((labels < 5) if step < switch else (labels >= 5)))
        x, y = images[pool], torch.from_numpy(labels[pool])
        for _ in range(15):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        layers.log_layers(run_dir, step, model)
        with torch.no_grad():
            feats = body(images)
        dvi.summary.snapshot(run_dir, step, feats, labels, head, split=split)
    dvi.summary.close(run_dir)
