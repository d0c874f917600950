#!/usr/bin/env python3
"""veil's EDL bridge generator: the stand-in for Open Enclave's oeedger8r when the
SDK is absent. Same command line, same output file names, same prototypes.

    veil_edger.py <file.edl> [--search-path DIR]... [--trusted] [--trusted-dir DIR]
                  [--untrusted] [--untrusted-dir DIR]

With neither --trusted nor --untrusted both sides are generated. Anything outside
the supported EDL subset (runtime/README.md) fails with ``file:line: error: ...``
and exit status 1.
"""

import argparse
import os
import sys

# Run from CMake at build time: leave no bytecode caches in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from edl_emit import Emitter  # noqa: E402
from edl_parse import EdlError, parse_file  # noqa: E402


def locate(edl: str, search_paths):
    """Like oeedger8r: the EDL as given, else relative to each search path."""
    if os.path.isfile(edl):
        return edl
    if not os.path.isabs(edl):
        for directory in search_paths:
            candidate = os.path.join(directory, edl)
            if os.path.isfile(candidate):
                return candidate
    return None


def write(directory: str, files: dict) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="veil_edger.py", description="Generate the enclave bridge from an EDL file."
    )
    parser.add_argument("edl", help="the .edl file")
    parser.add_argument("--search-path", action="append", default=[], metavar="DIR",
                        help="directory to look for the EDL in (repeatable)")
    parser.add_argument("--trusted", action="store_true", help="generate the enclave side")
    parser.add_argument("--trusted-dir", default=".", metavar="DIR")
    parser.add_argument("--untrusted", action="store_true", help="generate the host side")
    parser.add_argument("--untrusted-dir", default=".", metavar="DIR")
    args = parser.parse_args(argv)

    path = locate(args.edl, args.search_path)
    if path is None:
        print(f"{args.edl}:0: error: EDL file not found (search paths: "
              f"{', '.join(args.search_path) or 'none'})", file=sys.stderr)
        return 1
    both = not args.trusted and not args.untrusted
    try:
        edl = parse_file(path, tuple(args.search_path))
        emitter = Emitter(edl)
        if args.trusted or both:
            write(args.trusted_dir, emitter.files(trusted=True))
        if args.untrusted or both:
            write(args.untrusted_dir, emitter.files(trusted=False))
    except EdlError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{path}:0: error: cannot write output: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
