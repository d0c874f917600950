#!/usr/bin/env python3
"""Size of the trusted computing base: the hand-written C/C++ under enclave/ that goes
into the production enclave image, in non-blank, non-comment lines.

Left out: the per-ISA vector kernels (kernels_avx2.cpp, kernels_avx512.cpp and the
SIMD body they share, detail/simd_body.h), which mirror the portable reference
kernels in kernels_portable.cpp line for line, and enclave/bench/, which builds the
separate benchmark image only.

Also lists every function longer than --max-function lines that has no reason for
its length in the comment right above it (a comment containing "Long:").

    python3 tests/tcb/count_tcb.py [--max N] [--max-function N] [--list]

Exits 1 when a limit is exceeded.
"""
import argparse
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "enclave")
EXCLUDED_FILES = {"kernels_avx2.cpp", "kernels_avx512.cpp", "simd_body.h"}
EXCLUDED_DIRS = {"bench"}
SOURCES = (".c", ".cc", ".cpp", ".h")


def trusted_files():
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = sorted(d for d in subdirs if d not in EXCLUDED_DIRS)
        for name in sorted(files):
            if name.endswith(SOURCES) and name not in EXCLUDED_FILES:
                yield os.path.join(directory, name)


def code_lines(text):
    """The lines of text with comments removed, blank ones dropped (string
    literals are not parsed: a // or /* inside one would be miscounted, and the
    trusted code has none that matter)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r"//.*", "", line).rstrip()
        lines.append(line)
    return lines


DEFINITION = re.compile(r"^[A-Za-z_][\w:<>,\s\*&]*[\s\*&:]~?[\w:]+\(.*")
NOT_FUNCTIONS = ("namespace", "struct", "class", "enum", "union", "#", "template", "using",
                 "static_assert", "extern")


def long_functions(path, limit):
    """(line, name, length) of each function definition over `limit` lines that
    starts at column 0 and has no "Long:" reason in the comment above it."""
    raw = open(path, encoding="utf-8").read().split("\n")
    stripped = code_lines("\n".join(raw))
    found = []
    i = 0
    while i < len(stripped):
        line = stripped[i]
        if DEFINITION.match(line) and not line.startswith(NOT_FUNCTIONS) and not line.endswith(";"):
            j = i
            while j < len(stripped) and "{" not in stripped[j] and not stripped[j].endswith(";"):
                j += 1
            if j < len(stripped) and "{" in stripped[j]:
                end = j
                while end < len(stripped) and stripped[end] != "}":
                    end += 1
                length = sum(1 for k in range(i, end + 1) if stripped[k].strip())
                above = "\n".join(raw[max(0, i - 12):i])
                if length > limit and "Long:" not in above:
                    name = re.search(r"([\w:~]+)\(", line).group(1)
                    found.append((i + 1, name, length))
                i = end
        i += 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=None, help="fail above this many lines")
    parser.add_argument("--max-function", type=int, default=None,
                        help="fail on a function longer than this with no reason given")
    parser.add_argument("--list", action="store_true", help="print the count of every file")
    args = parser.parse_args()
    total, failed = 0, False
    for path in trusted_files():
        count = sum(1 for line in code_lines(open(path, encoding="utf-8").read()) if line.strip())
        total += count
        rel = os.path.relpath(path, os.path.join(ROOT, ".."))
        if args.list:
            print(f"{count:6d}  {rel}")
        if args.max_function:
            for line, name, length in long_functions(path, args.max_function):
                print(f"{rel}:{line}: {name} is {length} lines (over {args.max_function}, "
                      "and no 'Long:' reason above it)")
                failed = True
    print(f"trusted computing base: {total} lines of C/C++ in enclave/ "
          "(non-blank, non-comment; per-ISA kernels and enclave/bench/ excluded)")
    if args.max is not None and total > args.max:
        print(f"over the limit of {args.max} lines")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
