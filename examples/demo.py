"""``make demo``: start TensorBoard, train the MNIST demo runs beside it, and keep TensorBoard serving.

    python examples/demo.py --logdir demo_logs --port 6006

TensorBoard starts first, with ``--dvi_autoproject all``, so it projects each step as soon as the training script
logs it: projection (one thread in TensorBoard) and training (one thread here) share two cores instead of taking
turns, and the tab is usable while the second run still trains. Ctrl-C (or SIGTERM) stops both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_mnist  # noqa: E402 - the example next to this file

NOTE = ("Note: TensorBoard prints 'TensorFlow installation not found - running with reduced feature set.' DVI and "
        "the scalars need no TensorFlow; the line is expected and harmless.")


def start_tensorboard(logdir: str, port: int, host: str) -> subprocess.Popen[bytes]:
    """TensorBoard on ``logdir`` in a child process (its output goes to this terminal), projecting every step."""
    os.makedirs(logdir, exist_ok=True)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port), "--host", host,
               "--dvi_autoproject", "all"]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="demo_logs")
    parser.add_argument("--port", type=int, default=6006)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--train-args", default="", help="extra arguments for train_mnist.py, e.g. '--epochs 12'")
    args = parser.parse_args(argv)
    print(NOTE, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` stops TensorBoard too (via finally)
    board = start_tensorboard(args.logdir, args.port, args.host)
    try:
        time.sleep(1.0)
        print(f"Open http://{args.host}:{args.port}/ and choose the DVI tab: each run appears once its first "
              "epoch is logged, and every step is projected in the background (the tab shows the time left).",
              flush=True)
        train_mnist.main(["--logdir", args.logdir, "--skip-existing", "--threads", "1", *args.train_args.split()])
        if board.poll() is not None:
            print(f"TensorBoard exited early (code {board.returncode}); is port {args.port} taken? Try "
                  "`make demo PORT=6007`.", file=sys.stderr)
            return 1
        print(f"Training done. TensorBoard keeps projecting and serving at http://{args.host}:{args.port}/ "
              "(Ctrl-C to stop).", flush=True)
        return board.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        stop(board)


def stop(board: subprocess.Popen[bytes]) -> None:
    """Stop TensorBoard (terminate, then kill if it lingers)."""
    if board.poll() is None:
        board.terminate()
        try:
            board.wait(timeout=10)
        except subprocess.TimeoutExpired:
            board.kill()
            board.wait()


if __name__ == "__main__":
    sys.exit(main())
