"""Step time and bytes exchanged per step of data-parallel runs (docs/design.md §4.6),
against one worker, in the same process and on the same machine.

    python benchmarks/distributed.py                       # widths 256,1024, batch 256, 1 and 2 workers
    python benchmarks/distributed.py --widths 2048 --workers 1,2,4 --device cuda
    RAY_ADDRESS=ray://head:10001 python benchmarks/distributed.py   # a Ray cluster

For each width it trains an MLP (width -> width -> width -> 10, ReLU) on random data and
prints the median step time of: this process's own session with the C++ CPU device
(no Ray, the reference), and runs of 1, 2, ... Ray workers, with each run's ratio to
the 1-worker run, the bytes each worker sent and received per step (the sealed
fingerprint deltas plus the update shares and sums of the all-reduce), and the time a
worker spent per step at the rendezvous (those transfers and the wait for the others).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

import veil


def _model(width: int) -> veil.Sequential:
    return veil.Sequential([veil.Dense(width, width), veil.ReLU(), veil.Dense(width, width),
                            veil.ReLU(), veil.Dense(width, 10)])


def _time_steps(trainer, X, y, batch: int, warmup: int, repeats: int) -> list:
    for i in range(warmup):
        trainer.train_step(X[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
    trainer.reset_timing()
    times = []
    for i in range(repeats):
        rows = slice(((warmup + i) % 8) * batch, ((warmup + i) % 8 + 1) * batch)
        start = time.perf_counter()
        trainer.train_step(X[rows], y[rows])
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="256,1024")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", default="1,2", help="worker counts to run (1 is the baseline)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1, help="enclave threads per worker")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    from veil import distributed

    reason = distributed.ray_unavailable_reason()
    if reason:
        print(f"distributed benchmark: {reason}", file=sys.stderr)
        return 2
    worker_counts = [int(w) for w in args.workers.split(",")]
    if 1 not in worker_counts:
        worker_counts.insert(0, 1)
    rng = np.random.default_rng(0)
    rows = []
    print(f"batch {args.batch}, device {args.device}, {args.threads} enclave thread(s) per "
          f"worker, median of {args.repeats} steps")
    print(f"{'width':>6} {'run':>10} {'step ms':>9} {'spread':>7} {'vs 1 worker':>11} "
          f"{'sent/step/worker':>17} {'received/step/worker':>21} {'rendezvous ms':>14}")
    for width in [int(w) for w in args.widths.split(",")]:
        X = rng.uniform(-1, 1, size=(8 * args.batch, width))
        y = rng.integers(0, 10, size=8 * args.batch)
        kwargs = dict(device=args.device, batch_size=args.batch, seed=1, lr=2.0 ** -4,
                      threads=args.threads)
        results = {}
        lone = veil.Trainer(_model(width), **kwargs)
        results["in-process"] = (_time_steps(lone, X, y, args.batch, args.warmup, args.repeats),
                                 None)
        del lone
        for workers in worker_counts:
            run = veil.Trainer(_model(width), workers=workers, **kwargs)
            times = _time_steps(run, X, y, args.batch, args.warmup, args.repeats)
            results[f"{workers} worker{'s' * (workers > 1)}"] = (times, run._native.traffic())
            run._native.close()
        base = statistics.median(results["1 worker"][0])
        for name, (times, traffic) in results.items():
            median = statistics.median(times)
            spread = (max(times) - min(times)) / median
            sent = received = meeting = None
            if traffic is not None:
                sent = max(t["bytes_sent"] for t in traffic) / args.repeats
                received = max(t["bytes_received"] for t in traffic) / args.repeats
                meeting = max(t["seconds"] for t in traffic) / args.repeats
            rows.append({"width": width, "batch": args.batch, "run": name,
                         "step_ms": 1e3 * median, "spread": spread, "vs_one_worker": median / base,
                         "bytes_sent_per_step": sent, "bytes_received_per_step": received,
                         "rendezvous_ms_per_step": None if meeting is None else 1e3 * meeting})
            shown = lambda b: "-" if b is None else f"{b / 1e6:.2f} MB"  # noqa: E731
            print(f"{width:>6} {name:>10} {1e3 * median:>9.2f} {100 * spread:>6.0f}% "
                  f"{median / base:>10.2f}x {shown(sent):>17} {shown(received):>21} "
                  f"{'-' if meeting is None else f'{1e3 * meeting:.2f}':>14}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
