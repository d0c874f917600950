"""Where the CUDA device's time goes, per operation: the GPU product alone against
the whole call (staging into pinned memory, copies both ways, synchronisation).

    python benchmarks/gpu_device_ops.py [--widths 1024,4096] [--batch 256]

Prints one line per width and operation: the call's median, the product's median
(CUDA events around the cuBLAS call alone), one host memcpy of the operand, and
the same operation done directly from and to pageable memory (cp.asarray, .get),
without the device's pinned staging: the part of a call that is not the product
can be read off directly, and whether staging pays.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from veil import _cuda


def median_ms(fn, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def product_ms(cp, fn, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end))
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1024,4096")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args(argv)
    if not _cuda.available():
        raise SystemExit(f"gpu_device_ops: no CUDA device ({_cuda.unavailable_reason()})")
    cp = _cuda._cupy()
    device = _cuda.CudaDevice()
    rng = np.random.default_rng(0)
    print(f"{'width':>5} {'op':>8} | {'call ms':>8} {'product ms':>10} {'memcpy ms':>9} "
          f"{'direct ms':>9}")
    for width in (int(w) for w in args.widths.split(",")):
        rows, cols, batch = width + 1, width, args.batch
        m = rng.integers(-2**20, 2**20, (rows, cols)).astype(np.float64)
        a = rng.integers(-2**10, 2**10, (batch, rows)).astype(np.float64)
        dz = rng.integers(-2**10, 2**10, (batch, cols)).astype(np.float64)
        device.upload(0, m)
        w_gpu = device.weights[0]
        a_gpu, dz_gpu = cp.asarray(a), cp.asarray(dz)
        scratch = np.empty_like(a)
        def direct_update():
            device.weights[0] -= cp.asarray(a).T @ cp.asarray(dz)
            cp.cuda.Stream.null.synchronize()

        cases = {
            "forward": (lambda: device.forward(0, a), lambda: a_gpu @ w_gpu,
                        lambda: (cp.asarray(a) @ w_gpu).get()),
            "backward": (lambda: device.backward(0, dz), lambda: dz_gpu @ w_gpu.T,
                         lambda: (cp.asarray(dz) @ w_gpu.T).get()),
            "update": (lambda: device.update(0, a, dz), lambda: a_gpu.T @ dz_gpu, direct_update),
        }
        for op, (call, product, direct) in cases.items():
            copy_ms = median_ms(lambda: np.copyto(scratch, a))
            print(f"{width:>5} {op:>8} | {median_ms(call):>8.3f} {product_ms(cp, product):>10.3f} "
                  f"{copy_ms:>9.3f} {median_ms(direct):>9.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
