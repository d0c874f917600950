#!/usr/bin/env python3
"""CTest driver for veil's EDL generator and .conf compiler, no pytest needed.

    check_edger.py <runtime/edger dir> <scratch dir> [project EDL]...

Each unsupported or malformed input must fail with exit status 1 and a
``file:line: error:`` message naming the problem; the supported constructs, and
each project EDL given, must generate the five files oeedger8r generates.
"""

import os
import re
import subprocess
import sys

HEADER = 'enclave {\n    trusted {\n        public void ecall_ok(int x);\n    };\n'

# (name, EDL text, expected line, regex the message must contain)
REJECTED = [
    ("user_check_with_direction",
     HEADER + "    untrusted {\n        void ocall_raw([user_check, in] double* p);\n    };\n};\n",
     6, r"\[user_check\] parameter 'p' takes no other attribute"),
    ("no_direction",
     HEADER + "    untrusted {\n        void ocall_raw(uint8_t* p, size_t n);\n    };\n};\n",
     6, r"needs a direction"),
    ("array_no_direction",
     "enclave {\n    trusted {\n        public void ecall_k(uint8_t key[16]);\n    };\n};\n",
     3, r"needs a direction"),
    ("syntax_missing_semicolon",
     "enclave {\n    trusted {\n        public void ecall_a(int x)\n    };\n};\n",
     4, r"expected ';'"),
    ("syntax_unclosed",
     "enclave {\n    trusted {\n        public void ecall_a(int x);\n", 4, r"missing '}'"),
    ("unknown_attribute",
     "enclave {\n    trusted {\n        public void ecall_a([in, sized=4] uint8_t* p);\n    };\n};\n",
     3, r"unknown attribute 'sized'"),
    ("isptr", "enclave {\n    trusted {\n        public void ecall_a([in, isptr] uint8_t* p);\n    };\n};\n",
     3, r"isptr"),
    ("isary", "enclave {\n    trusted {\n        public void ecall_a([in, isary] uint8_t* p);\n    };\n};\n",
     3, r"isary"),
    ("wstring", "enclave {\n    trusted {\n        public void ecall_a([in, wstring] char* p);\n    };\n};\n",
     3, r"wstring"),
    ("allow_list",
     "enclave {\n    trusted {\n        public void ecall_a(int x) allow(ocall_b);\n    };\n"
     "    untrusted {\n        void ocall_b(void);\n    };\n};\n",
     3, r"allow"),
    ("switchless",
     "enclave {\n    trusted {\n        public void ecall_a(int x) transition_using_threads;\n    };\n};\n",
     3, r"transition_using_threads"),
    ("private_ecall",
     "enclave {\n    trusted {\n        void ecall_a(int x);\n    };\n};\n", 3, r"public"),
    ("out_string",
     "enclave {\n    trusted {\n        public void ecall_a([out, string] char* s);\n    };\n};\n",
     3, r"\[string\].*\[in\]"),
    ("string_not_char",
     "enclave {\n    trusted {\n        public void ecall_a([in, string] uint8_t* s);\n    };\n};\n",
     3, r"char\*"),
    ("const_out",
     "enclave {\n    trusted {\n        public void ecall_a([out] const int* v);\n    };\n};\n",
     3, r"must not be const"),
    ("size_unknown_param",
     "enclave {\n    trusted {\n        public void ecall_a([in, count=m] const int* v, size_t n);\n    };\n};\n",
     3, r"no parameter 'm'"),
    ("size_from_pointer",
     "enclave {\n    trusted {\n        public void ecall_a([in, count=q] const int* v, [in] size_t* q);\n    };\n};\n",
     3, r"integer parameter passed by value"),
    ("void_pointer_without_size",
     "enclave {\n    trusted {\n        public void ecall_a([in] const void* v);\n    };\n};\n",
     3, r"needs size="),
    ("pointer_to_pointer",
     "enclave {\n    trusted {\n        public void ecall_a([in] int** v);\n    };\n};\n",
     3, r"pointers to pointers"),
    ("pointer_return",
     "enclave {\n    trusted {\n        public int* ecall_a(void);\n    };\n};\n", 3, r"returns a pointer"),
    ("struct_pointer_member",
     "enclave {\n    struct s {\n        int* p;\n    };\n};\n", 3, r"pointer"),
    ("struct_member_attributes",
     "enclave {\n    struct s {\n        [count=4] int* p;\n    };\n};\n", 3, r"deep copy"),
    ("unknown_type",
     "enclave {\n    trusted {\n        public void ecall_a(my_handle_t h);\n    };\n};\n",
     3, r"unknown type 'my_handle_t'"),
    ("union", "enclave {\n    union u {\n        int a;\n    };\n};\n", 2, r"unions"),
    ("include", 'enclave {\n    include "types.h"\n};\n', 2, r"include"),
    ("user_import_missing", 'enclave {\n    from "mine.edl" import *;\n};\n', 2,
     r"imported EDL 'mine.edl' not found"),
    ("hex_literal",
     "enclave {\n    trusted {\n        public void ecall_a([in, size=0x10] const void* p);\n    };\n};\n",
     3, r"decimal"),
    ("duplicate_function",
     "enclave {\n    trusted {\n        public void ecall_a(void);\n        public void ecall_a(void);\n"
     "    };\n};\n", 4, r"declared twice"),
    ("reserved_parameter",
     "enclave {\n    trusted {\n        public void ecall_a(int _result);\n    };\n};\n", 3, r"reserved"),
    ("unterminated_comment", "enclave {\n/* never closed\n};\n", 2, r"unterminated"),
    # Grammar oeedger8r (v0.19) refuses, so the virtual generator refuses it too.
    ("named_import_undeclared",
     'enclave {\n    from "openenclave/edl/logging.edl" import oe_log_ocall,\n'
     '        oe_syscall_ocall;\n};\n', 3, r"declares no function 'oe_syscall_ocall'"),
    ("import_semicolon", 'enclave {\n    import "openenclave/edl/sgx/platform.edl";\n};\n',
     2, r"takes no ';'"),
    ("negative_enum", "enclave {\n    enum e {\n        A = 0,\n        B = -3\n    };\n};\n",
     4, r"'B' has a negative value"),
    ("size_and_count",
     "enclave {\n    trusted {\n        public void ecall_a([in, size=4, count=n] const void* p,"
     " size_t n);\n    };\n};\n", 3, r"'p' of 'ecall_a' has both size= and count="),
    # System EDLs the generator has no record of: it cannot tell what they declare.
    ("unknown_system_import", 'enclave {\n    import "openenclave/edl/syscall.edl"\n};\n',
     2, r"not an Open Enclave system EDL the virtual generator knows"),
    ("named_import_unrecorded",
     'enclave {\n    from "openenclave/edl/sgx/platform.edl" import oe_get_sgx_report_ecall;\n};\n',
     2, r"only a whole import"),
    ("preprocessor", "#include <x.h>\nenclave {\n};\n", 1, r"preprocessor"),
]

REJECTED_CONF = [
    ("unknown_key", "NumHeapPages=1\nNumStackPages=1\nNumTCS=1\nNumUserThreads=2\n", 4, r"NumUserThreads"),
    ("missing_tcs", "NumHeapPages=1\nNumStackPages=1\n", 0, r"NumTCS.*required"),
    ("zero_tcs", "NumHeapPages=1\nNumStackPages=1\nNumTCS=0\n", 3, r"NumTCS"),
    ("duplicate", "NumHeapPages=1\nNumHeapPages=2\nNumStackPages=1\nNumTCS=1\n", 2, r"twice"),
    ("not_a_number", "NumHeapPages=lots\nNumStackPages=1\nNumTCS=1\n", 1, r"integer"),
    ("bad_debug", "Debug=2\nNumHeapPages=1\nNumStackPages=1\nNumTCS=1\n", 1, r"Debug"),
]


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def main() -> int:
    edger_dir, scratch = sys.argv[1], sys.argv[2]
    edger = os.path.join(edger_dir, "veil_edger.py")
    conf = os.path.join(edger_dir, "veil_conf.py")
    os.makedirs(scratch, exist_ok=True)
    failures = []

    for name, text, line, pattern in REJECTED:
        path = os.path.join(scratch, f"bad_{name}.edl")
        with open(path, "w") as handle:
            handle.write(text)
        out_dir = os.path.join(scratch, f"out_{name}")
        result = run([sys.executable, edger, path, "--trusted", "--trusted-dir", out_dir])
        message = result.stderr.strip()
        expected = re.compile(rf"^{re.escape(path)}:{line}: error: .*{pattern}")
        if result.returncode != 1 or not expected.search(message):
            failures.append(f"{name}: exit {result.returncode}, stderr: {message!r}")
        elif os.path.exists(os.path.join(out_dir, f"bad_{name}_t.c")):
            failures.append(f"{name}: output was written despite the error")

    for name, text, line, pattern in REJECTED_CONF:
        path = os.path.join(scratch, f"bad_{name}.conf")
        with open(path, "w") as handle:
            handle.write(text)
        result = run([sys.executable, conf, path, os.path.join(scratch, f"{name}_conf.c")])
        expected = re.compile(rf"^{re.escape(path)}:{line}: error: .*{pattern}")
        if result.returncode != 1 or not expected.search(result.stderr.strip()):
            failures.append(f"conf {name}: exit {result.returncode}, stderr: {result.stderr.strip()!r}")

    # Supported EDL: both sides by default, one side on request, found via --search-path.
    good = ("enclave {\n    from \"openenclave/edl/logging.edl\" import *;\n"
            "    from \"openenclave/edl/logging.edl\" import oe_log_ocall, oe_write_ocall;\n"
            "    import \"openenclave/edl/sgx/platform.edl\"\n"
            "    enum e { A, B = 2147483647 };\n    struct s { e kind; uint8_t k[4]; };\n"
            "    trusted {\n        public int ecall_a([in, count=n] const s* v, size_t n);\n    };\n"
            "    untrusted {\n        void ocall_b([in, string] const char* m);\n    };\n};\n")
    good_dir = os.path.join(scratch, "good_edl")
    os.makedirs(good_dir, exist_ok=True)
    with open(os.path.join(good_dir, "good.edl"), "w") as handle:
        handle.write(good)
    both = os.path.join(scratch, "good_both")
    result = run([sys.executable, edger, "good.edl", "--search-path", good_dir,
                  "--trusted-dir", both, "--untrusted-dir", both])
    produced = sorted(os.listdir(both)) if os.path.isdir(both) else []
    wanted = ["good_args.h", "good_t.c", "good_t.h", "good_u.c", "good_u.h"]
    if result.returncode != 0 or produced != wanted:
        failures.append(f"good EDL: exit {result.returncode}, files {produced}, {result.stderr!r}")
    host_only = os.path.join(scratch, "good_host")
    result = run([sys.executable, edger, os.path.join(good_dir, "good.edl"), "--untrusted",
                  "--untrusted-dir", host_only])
    produced = sorted(os.listdir(host_only)) if os.path.isdir(host_only) else []
    if result.returncode != 0 or produced != ["good_args.h", "good_u.c", "good_u.h"]:
        failures.append(f"--untrusted: exit {result.returncode}, files {produced}")
    result = run([sys.executable, edger, "missing.edl"])
    if result.returncode != 1 or "not found" not in result.stderr:
        failures.append(f"missing EDL: exit {result.returncode}, {result.stderr!r}")

    project_edls = sys.argv[3:]
    for edl in project_edls:
        name = os.path.splitext(os.path.basename(edl))[0]
        out_dir = os.path.join(scratch, f"project_{name}")
        result = run([sys.executable, edger, edl, "--trusted-dir", out_dir, "--untrusted-dir", out_dir])
        produced = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
        wanted = sorted(f"{name}{suffix}" for suffix in ("_args.h", "_t.c", "_t.h", "_u.c", "_u.h"))
        if result.returncode != 0 or produced != wanted:
            failures.append(f"{edl}: exit {result.returncode}, files {produced}, {result.stderr!r}")

    for failure in failures:
        print("FAIL", failure)
    total = len(REJECTED) + len(REJECTED_CONF) + 3 + len(project_edls)
    print(f"{total - len(failures)}/{total} generator checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
