"""Demo: unstable training. The demo's CNN learns all ten digits, but for a few batches the learning rate spikes.

    python examples/unstable.py --logdir demo_logs
    tensorboard --logdir demo_logs      # the DVI tab raises an alarm at the spike

Adam at a learning rate of 1e-3, except for ``--spike-batches`` batches just before the logged step
``--spike-step`` where it is ``--spike-factor`` times larger. Every ``--every`` batches (the step is the number of
batches so far) the run logs scalars, a ``dvi.summary.snapshot`` of all 10,000 samples and the per-layer weight
statistics (``dvi.layers.log_layers``, after ``backward()``). The spike itself is not logged for DVI: the alarms
must find it from the logits, features and weights alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from continual import BATCH, N_TRAIN, load_digits, log_step  # noqa: E402
from train_mnist import SmallCNN  # noqa: E402

LR = 1e-3


def train_unstable(logdir: str, name: str = "unstable", batches: int = 104, every: int = 8, spike_step: int = 72,
                   spike_batches: int = 4, spike_factor: float = 20.0, seed: int = 0) -> dict[str, Any]:
    """Train for ``batches`` batches with a learning-rate spike on the ``spike_batches`` batches that end at
    ``spike_step``; returns the logged steps, the spike's batches and the test accuracy at every logged step."""
    if spike_step % every or spike_batches > every:
        raise ValueError("spike_step must be a logged step and the spike must fit between two logged steps")
    torch.manual_seed(seed)
    images, labels, is_train = load_digits()
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    writer = SummaryWriter(os.path.join(logdir, name))
    x, y = images[:N_TRAIN], torch.from_numpy(labels[:N_TRAIN])
    gen = torch.Generator().manual_seed(seed)
    step, logged, accuracy, started = 0, [], [], time.time()
    spiked = range(spike_step - spike_batches + 1, spike_step + 1)
    while step < batches:
        for batch in torch.split(torch.randperm(N_TRAIN, generator=gen), BATCH):
            if step >= batches:
                break
            for group in optimizer.param_groups:
                group["lr"] = LR * spike_factor if step + 1 in spiked else LR
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            step += 1
            if step % every == 0:  # the gradients of this batch are still there
                accuracy.append(log_step(writer, step, model, images, labels, is_train, loss.item()))
                logged.append(step)
                print(f"[{name}] step {step}{' (after the spike)' if step == spike_step else ''}: loss "
                      f"{loss.item():.3f}, test acc {accuracy[-1]['test']:.3f} ({time.time() - started:.1f} s)",
                      flush=True)
    writer.close()
    return {"steps": logged, "spike_step": spike_step, "spike_batches": list(spiked),
            "accuracy": accuracy}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="demo_logs")
    parser.add_argument("--name", default="unstable")
    parser.add_argument("--batches", type=int, default=104)
    parser.add_argument("--every", type=int, default=8, help="log every this many training batches")
    parser.add_argument("--spike-step", type=int, default=72, help="the logged step the spike ends at")
    parser.add_argument("--spike-batches", type=int, default=4)
    parser.add_argument("--spike-factor", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_unstable(args.logdir, args.name, args.batches, args.every, args.spike_step, args.spike_batches,
                   args.spike_factor)


if __name__ == "__main__":
    main()
