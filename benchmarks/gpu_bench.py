"""veil verify training on a CUDA GPU against insecure float32 training with CuPy.

Per training step of the same MLP (w -> w -> w -> 10, ReLU), widths 1024-8192,
batch 256-1024: (a) insecure float32 CuPy training and (c) veil verify training
with the CuPy device, (c) split into the enclave's part, the GPU products and
the host<->GPU transfers (CUDA events). Medians of repeated steps; ratios are
the result.

    python benchmarks/gpu_bench.py OUT_DIR [--quick] [--widths ...] [--batches ...]

Writes OUT_DIR/gpu_bench_<gpu>.json and OUT_DIR/gpu_bench_<gpu>.png.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import asdict

import veil
from veil import _cuda, bench


def gpu_name() -> str:
    if not _cuda.available():
        raise SystemExit(f"gpu_bench: no CUDA device ({_cuda.unavailable_reason()})")
    return _cuda.CudaDevice().gpu_name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--quick", action="store_true", help="widths 1024,4096; batch 256")
    parser.add_argument("--widths", default=None)
    parser.add_argument("--batches", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    widths = [int(w) for w in (args.widths or ("1024,4096" if args.quick else
                                               "1024,2048,4096,8192")).split(",")]
    batches = [int(b) for b in (args.batches or ("256" if args.quick else "256,1024")).split(",")]
    name = gpu_name()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"gpu_bench_{slug}")
    rows = []
    print(f"veil {veil.__version__} on {name}: verify training vs insecure float32 (CuPy)")
    print(f"{'width':>5} {'batch':>5} | {'(a) ms':>8} {'(c) ms':>8} {'encl ms':>8} {'gpu ms':>8} "
          f"{'xfer ms':>8} | {'(c)/(a)':>8} {'share':>6}  knobs")
    for w in widths:
        for b in batches:
            r = bench.measure(w, b, device="cuda", repeats=args.repeats, enclave_only=False,
                              inference=False)
            rows.append(r)
            knobs = ",".join(f"{k}={v}" for k, v in r.knobs.items()) or "defaults"
            print(f"{w:>5} {b:>5} | {1e3 * r.insecure_s:>8.2f} {1e3 * r.verify_s:>8.2f} "
                  f"{1e3 * r.verify_enclave_s:>8.2f} {1e3 * r.verify_device_s:>8.2f} "
                  f"{1e3 * r.verify_transfer_s:>8.2f} | {r.ratios['verify/insecure']:>8.2f} "
                  f"{100 * r.ratios['enclave_share']:>5.1f}%  {knobs}", flush=True)
            # Rewritten after every configuration: a run cut short keeps what it measured.
            with open(stem + ".json", "w") as f:
                json.dump({"gpu": name, "veil": veil.__version__, "python": sys.version,
                           "cupy": _cuda._cupy().__version__, "repeats": args.repeats,
                           "rows": [asdict(r) for r in rows]}, f, indent=2)
    bench.plot(rows, stem + ".png")
    print(f"wrote {stem}.json and {stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
