#!/usr/bin/env python3
"""CTest driver for EDL imports in veil's generator (runtime/edger), which the bench
image's EDL (edl/veil_bench.edl: `from "veil.edl" import *;`) relies on.

    check_edl_import.py <runtime/edger dir> <scratch dir>

An import brings every type of the imported EDL and its functions (all, or the
named ones), in the imported file's order, where the import stands; a name the
imported file does not define, a missing file, a cycle and a clash are errors
naming the file and line.
"""

import os
import re
import subprocess
import sys

BASE = """enclave {
    enum colour { RED, GREEN = 4 };
    struct point { int32_t x; colour c; };
    trusted {
        public int ecall_a([in] const point* p);
        public int ecall_b(uint64_t v);
    };
    untrusted {
        int ocall_c(int level);
    };
};
"""

FILES = {
    "base.edl": BASE,
    "all.edl": """enclave {
    from "base.edl" import *;
    trusted {
        public int ecall_own([in, count=n] const point* p, size_t n);
    };
};
""",
    "some.edl": 'enclave {\n    from "base.edl" import ecall_b;\n};\n',
    "unknown.edl": 'enclave {\n    from "base.edl" import ecall_b,\n        ecall_zzz;\n};\n',
    "missing.edl": 'enclave {\n    trusted {\n        public int ecall_x(int v);\n    };\n'
                   '    from "nope.edl" import *;\n};\n',
    "cycle_a.edl": 'enclave {\n    from "cycle_b.edl" import *;\n};\n',
    "cycle_b.edl": 'enclave {\n    from "cycle_a.edl" import *;\n};\n',
    "clash.edl": 'enclave {\n    trusted {\n        public int ecall_b(uint64_t v);\n    };\n'
                 '    from "base.edl" import *;\n};\n',
}


def run(edger, edl, out, *extra):
    return subprocess.run([sys.executable, edger, edl, "--trusted-dir", out, "--untrusted-dir", out,
                           *extra], capture_output=True, text=True, check=False)


def read(path):
    with open(path) as handle:
        return handle.read()


def main() -> int:
    edger_dir, scratch = sys.argv[1], sys.argv[2]
    edger = os.path.join(edger_dir, "veil_edger.py")
    edl_dir = os.path.join(scratch, "edl")
    os.makedirs(edl_dir, exist_ok=True)
    for name, text in FILES.items():
        with open(os.path.join(edl_dir, name), "w") as handle:
            handle.write(text)
    failures = []

    # Everything: base's types, then base's calls in order, then the importer's own.
    out = os.path.join(scratch, "all")
    result = run(edger, os.path.join(edl_dir, "all.edl"), out)
    if result.returncode != 0:
        failures.append(f"import *: exit {result.returncode}: {result.stderr.strip()}")
    else:
        args = read(os.path.join(out, "all_args.h"))
        ids = re.findall(r"all_fcn_id_(\w+call_\w+) = (\d+),", args)
        if "typedef enum colour" not in args or "typedef struct point" not in args:
            failures.append("import *: base.edl's types are missing from all_args.h")
        if ids != [("ecall_a", "0"), ("ecall_b", "1"), ("ecall_own", "2"), ("ocall_c", "0")]:
            failures.append(f"import *: function ids {ids}")
        if "int ecall_own(" not in read(os.path.join(out, "all_t.h")):
            failures.append("import *: the importer's own ecall is missing")

    # Named: only those functions, every type.
    out = os.path.join(scratch, "some")
    result = run(edger, os.path.join(edl_dir, "some.edl"), out)
    if result.returncode != 0:
        failures.append(f"named import: exit {result.returncode}: {result.stderr.strip()}")
    else:
        args = read(os.path.join(out, "some_args.h"))
        ids = re.findall(r"some_fcn_id_(\w+call_\w+) = (\d+),", args)
        if ids != [("ecall_b", "0")] or "typedef struct point" not in args:
            failures.append(f"named import: function ids {ids}, types present: "
                            f"{'typedef struct point' in args}")

    # Found through --search-path when not beside the importer.
    elsewhere = os.path.join(scratch, "elsewhere")
    os.makedirs(elsewhere, exist_ok=True)
    with open(os.path.join(elsewhere, "far.edl"), "w") as handle:
        handle.write(FILES["all.edl"])
    result = run(edger, os.path.join(elsewhere, "far.edl"), os.path.join(scratch, "far"),
                 "--search-path", edl_dir)
    if result.returncode != 0:
        failures.append(f"--search-path import: exit {result.returncode}: {result.stderr.strip()}")

    rejected = [
        ("unknown.edl", "unknown.edl", 3, r"'ecall_zzz' is not a function of 'base.edl'"),
        ("missing.edl", "missing.edl", 5, r"imported EDL 'nope.edl' not found"),
        ("cycle_a.edl", "cycle_b.edl", 2, r"import of 'cycle_a.edl' is circular"),
        ("clash.edl", "clash.edl", 5, r"function 'ecall_b' is declared twice"),
    ]
    for edl, where, line, pattern in rejected:
        out = os.path.join(scratch, "bad_" + edl)
        result = run(edger, os.path.join(edl_dir, edl), out)
        expected = re.compile(rf"{re.escape(os.path.join(edl_dir, where))}:{line}: error: .*{pattern}")
        if result.returncode != 1 or not expected.search(result.stderr):
            failures.append(f"{edl}: exit {result.returncode}, stderr {result.stderr.strip()!r}")
        elif os.path.exists(out):
            failures.append(f"{edl}: output was written despite the error")

    for failure in failures:
        print("FAIL", failure)
    total = 3 + len(rejected)
    print(f"{total - len(failures)}/{total} import checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
