#!/usr/bin/env python3
"""Check that an enclave image carries none of the benchmarks' code.

    check_production_image.py --nm NM --bench-edl edl/veil_bench.edl --edger DIR
                              [--deny NAME]... [--expect-bench] image

The production image (edl/veil.edl) must hold neither the bench image's own ecalls
(every ecall veil_bench.edl declares itself, read from the EDL so a new one is
covered) nor any code of enclave/bench/, all of which lives in the namespace
veil::enclave::bench. An ecall is looked for as a symbol and as its name in the
image's ecall name table (the host binds ecalls by name); code as symbols of the
image's symbol table (``nm``, local symbols included). --deny adds a name that
must not appear either way (e.g. a removed ecall).

An image whose symbols cannot be read (stripped) fails, rather than passing
vacuously: the production session code must be visible.

With --expect-bench the check is inverted, for the bench image itself: it passes
only if every bench ecall and bench code are found there.
"""

import argparse
import os
import re
import subprocess
import sys

BENCH_NAMESPACE = "veil::enclave::bench::"
# Always in a readable production image: proof that the symbols were read.
PRODUCTION_MARKER = "veil::enclave::Session::"


def own_ecalls(edger_dir: str, bench_edl: str) -> list:
    """The ecalls the bench EDL declares itself, not those it imports."""
    sys.path.insert(0, edger_dir)
    sys.dont_write_bytecode = True
    from edl_parse import parse_file  # noqa: E402

    bench = parse_file(bench_edl, (os.path.dirname(os.path.abspath(bench_edl)),))
    imported = set()
    for path in bench.imports:
        edl = parse_file(path, (os.path.dirname(os.path.abspath(path)),))
        imported.update(f.name for f in edl.trusted + edl.untrusted)
    names = [f.name for f in bench.trusted if f.name not in imported]
    if not names:
        raise SystemExit(f"{bench_edl}: declares no ecall of its own; nothing to check")
    return names


def symbols(nm: str, image: str) -> list:
    result = subprocess.run([nm, "-C", image], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{nm} -C {image} failed: {result.stderr.strip()}")
    # "address type name" or "type name" (undefined): the name may contain spaces.
    names = []
    for line in result.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and len(parts[1]) == 1:
            names.append(parts[2])
        elif len(parts) == 2 and len(parts[0]) == 1:
            names.append(parts[1])
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nm", default="nm")
    parser.add_argument("--bench-edl", required=True)
    parser.add_argument("--edger", required=True, help="runtime/edger (the EDL parser)")
    parser.add_argument("--deny", action="append", default=[], metavar="NAME")
    parser.add_argument("--expect-bench", action="store_true")
    parser.add_argument("image")
    args = parser.parse_args()

    ecalls = own_ecalls(args.edger, args.bench_edl)
    with open(args.image, "rb") as handle:
        data = handle.read()
    names = symbols(args.nm, args.image)
    if not any(PRODUCTION_MARKER in n for n in names):
        print(f"FAIL {args.image}: no '{PRODUCTION_MARKER}' symbol; the symbol table is "
              "missing or unreadable, so the check would prove nothing")
        return 1

    found = []
    for name in ecalls + args.deny:
        as_string = re.search(rb"(?<![A-Za-z0-9_])" + re.escape(name.encode()) + rb"\x00", data)
        as_symbol = any(re.fullmatch(re.escape(name) + r"(\.\w+)*", n) for n in names)
        if as_string or as_symbol:
            found.append(f"{name} ({'symbol' if as_symbol else 'ecall name table'})")
    bench_code = sorted({n for n in names if BENCH_NAMESPACE in n})
    found += [f"bench code: {n}" for n in bench_code[:20]]
    if len(bench_code) > 20:
        found.append(f"... and {len(bench_code) - 20} more symbols of {BENCH_NAMESPACE}")

    if args.expect_bench:
        missing = [e for e in ecalls if not any(f.startswith(e + " ") for f in found)]
        if missing or not bench_code:
            print(f"FAIL {args.image}: the check misses bench content: ecalls {missing}, "
                  f"{len(bench_code)} symbols of {BENCH_NAMESPACE}")
            return 1
        print(f"ok: found {len(ecalls)} bench ecalls and {len(bench_code)} bench symbols "
              f"in {os.path.basename(args.image)}")
        return 0
    if found:
        print(f"FAIL {args.image} holds benchmark code:")
        for item in found:
            print(f"  {item}")
        return 1
    print(f"ok: {os.path.basename(args.image)} holds none of {len(ecalls)} bench ecalls "
          f"({', '.join(ecalls)}), {', '.join(args.deny) or 'no other denied names'}, "
          f"nor code of {BENCH_NAMESPACE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
