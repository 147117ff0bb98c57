"""Layer statistics on an 11.7M-parameter ResNet-18-shaped network: time per step, extra memory, sketch accuracy.

The network is built here (no torchvision): ResNet-18's stem, four stages of two basic blocks (64, 128, 256, 512
channels) and a 1000-way linear head, 11.69M parameters in 62 tensors, 41 layers (modules owning parameters).
Each measured step perturbs every parameter (as an optimizer step would), fills the gradients, then calls
``LayerRecorder.measure`` (the statistics) and, separately, ``log_layers`` (statistics + file + event record).

Targets (issue 12): <= 50 ms a step on CPU, extra memory <= 10 % of the model's. Also reported: the relative error
of the sketched relative change against the exact one, per layer, after a real SGD step and after a rank-1 change.

    python benchmarks/bench_layers.py [--steps 30] [--threads 1]

Writes benchmarks/results/layers.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from tensorboard_plugin_dvi import layers, summary

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import results_io  # noqa: E402 - sibling module of this script

TARGETS = {"step_ms": 50.0, "memory_fraction": 0.10}


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with batch norm and a shortcut (1x1 conv when shapes change)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18(n_classes: int = 1000) -> nn.Module:
    """A ResNet-18-shaped network (ImageNet layout)."""
    stages, cin = [], 64
    for i, cout in enumerate((64, 128, 256, 512)):
        stride = 1 if i == 0 else 2
        stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, n_classes))


@torch.no_grad()
def perturb(model: nn.Module, gen: torch.Generator, scale: float = 1e-3) -> None:
    """An optimizer-like step: every parameter moves a little, and gets a gradient of its own shape."""
    for p in model.parameters():
        noise = torch.randn(p.shape, generator=gen)
        p.add_(noise, alpha=scale)
        p.grad = noise


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - started))
    return out


def exact_change(before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float]:
    """Exact relative change per layer since ``before`` (a full copy, for this benchmark only)."""
    out = {}
    for name, _, params in layers.layer_groups(model):
        moved = sum(float(((p.detach() - before[pn]) ** 2).sum()) for pn, p in params)
        norm = sum(float((before[pn] ** 2).sum()) for pn, _ in params)
        out[name] = float(np.sqrt(moved / norm))
    return out


def sketch_error(model: nn.Module, change) -> dict[str, float]:
    """Relative error of the sketched change against the exact one over the layers, after ``change(model)``."""
    rec = layers.LayerRecorder()
    rec.measure(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    change(model)
    got = rec.measure(model)
    exact = exact_change(before, model)
    err = np.array([abs(got["rel_change"][i] / exact[n] - 1) for i, n in enumerate(got["names"].tolist())
                    if exact[n] > 0])
    return {"layers": int(len(err)), "median": float(np.median(err)), "p90": float(np.quantile(err, 0.9)),
            "max": float(err.max())}


def sgd_step(model: nn.Module) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.0)
    model.train()
    opt.zero_grad()
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    nn.functional.cross_entropy(model(x), torch.arange(4)).backward()
    opt.step()


@torch.no_grad()
def rank_one(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(2)
    for p in model.parameters():
        if p.dim() >= 2:
            flat = p.view(p.shape[0], -1)
            flat += 0.01 * torch.outer(torch.randn(flat.shape[0], generator=gen), torch.randn(flat.shape[1],
                                                                                              generator=gen))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = resnet18()
    n_params = sum(p.numel() for p in model.parameters())
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    gen = torch.Generator().manual_seed(0)
    rec = layers.LayerRecorder()
    perturb(model, gen)
    rec.measure(model)  # the first step: sketches made

    def measure_step() -> None:
        rec.measure(model)

    measure_ms = []
    for _ in range(args.steps):
        perturb(model, gen)
        measure_ms += timed(measure_step, 1)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        log_ms = []
        for step in range(args.steps):
            perturb(model, gen)
            log_ms += timed(lambda s=step: layers.log_layers(run_dir, s, model), 1)
        summary.close(run_dir)
        file_bytes = os.path.getsize(os.path.join(run_dir, "plugins", "dvi", layers.FOLDER,
                                                  sorted(os.listdir(os.path.join(run_dir, "plugins", "dvi",
                                                                                 layers.FOLDER)))[0]))
    memory = rec.memory_bytes()
    torch.manual_seed(0)
    errors = {"sgd_step": sketch_error(resnet18(), sgd_step), "rank_one": sketch_error(resnet18(), rank_one)}
    report = {
        "machine": {"platform": platform.platform(), "threads": args.threads, "load_average": os.getloadavg()},
        "model": {"params": n_params, "tensors": len(list(model.parameters())),
                  "layers": len(layers.layer_groups(model)), "bytes": model_bytes},
        "measure_ms": {"median": statistics.median(measure_ms), "p90": float(np.quantile(measure_ms, 0.9)),
                       "max": max(measure_ms)},
        "log_layers_ms": {"median": statistics.median(log_ms), "p90": float(np.quantile(log_ms, 0.9)),
                          "max": max(log_ms)},
        "memory_bytes": memory, "memory_fraction": memory / model_bytes, "file_bytes": file_bytes,
        "sketch_error": errors, "targets": TARGETS,
    }
    report["pass"] = {"step_ms": report["measure_ms"]["median"] <= TARGETS["step_ms"],
                      "memory_fraction": report["memory_fraction"] <= TARGETS["memory_fraction"]}
    results_io.save("layers", report, markdown(report))
    return report


def markdown(r: dict[str, Any]) -> str:
    m, load = r["model"], ", ".join(f"{x:.1f}" for x in r["machine"]["load_average"])
    lines = [
        "# Layer statistics benchmark (issue 12)", "",
        f"ResNet-18-shaped network built in the benchmark: {m['params'] / 1e6:.2f}M parameters in {m['tensors']} "
        f"tensors, {m['layers']} layers, {m['bytes'] / 2**20:.1f} MiB. CPU, {r['machine']['threads']} torch thread, "
        f"load average {load} (a shared 2-core machine: times are noisy).", "",
        "| measure | value | target | pass |", "|---|---|---|---|",
        f"| statistics per step (`LayerRecorder.measure`), median / p90 / max | {r['measure_ms']['median']:.1f} / "
        f"{r['measure_ms']['p90']:.1f} / {r['measure_ms']['max']:.1f} ms | <= {TARGETS['step_ms']:.0f} ms | "
        f"{'yes' if r['pass']['step_ms'] else 'NO'} |",
        f"| `log_layers` per step (statistics + file + event), median / p90 | {r['log_layers_ms']['median']:.1f} / "
        f"{r['log_layers_ms']['p90']:.1f} ms | | |",
        f"| extra memory kept between steps | {r['memory_bytes'] / 1024:.0f} KiB = {r['memory_fraction']:.2%} of the "
        f"model | <= {TARGETS['memory_fraction']:.0%} | {'yes' if r['pass']['memory_fraction'] else 'NO'} |",
        f"| file per logged step | {r['file_bytes']} bytes | | |", "",
        "Sketched relative change against the exact one (relative error over the layers):", "",
        "| change | layers | median | p90 | max |", "|---|---|---|---|---|",
    ]
    for name, e in r["sketch_error"].items():
        lines.append(f"| {name} | {e['layers']} | {e['median']:.2%} | {e['p90']:.2%} | {e['max']:.2%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
