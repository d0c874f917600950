#!/usr/bin/env python3
"""Generate the boundary test's cases from an EDL, with runtime/edger's parser.

    gen_boundary_cases.py <runtime/edger dir> <file.edl> <output dir>

Writes <output dir>/boundary_cases.cc and boundary_ecalls.h. For every ecall of
the EDL (so a new ecall is covered without touching this script) the cases are:
its valid call; each pointer parameter NULL in turn; each count parameter (a
by-value integer that sizes a buffer through size= or count=) one more and one
less than in the valid call. The valid calls themselves are written by hand in
boundary_plans.cc; boundary_harness.h says how the pieces fit.
"""

import os
import sys
from typing import List

sys.dont_write_bytecode = True  # run from CMake: no caches in the source tree


def fail(message: str) -> None:
    print(f"gen_boundary_cases.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def lent_count(f, p) -> str:
    """veil.edl's convention: a [user_check] pointer p holds p_count elements."""
    name = f"{p.name}_count"
    if f.param(name) is None:
        fail(f"{f.name}: [user_check] parameter '{p.name}' needs a by-value '{name}'")
    return name


def is_pointer(p) -> bool:
    """A marshalled buffer or a [user_check] pointer: both get a host buffer here."""
    return p.is_buffer or p.user_check


def count_params(f) -> List[str]:
    """By-value parameters that size a buffer, in declaration order."""
    names = []
    for p in f.params:
        if p.user_check:
            names.append(lent_count(f, p))
        if not p.is_buffer or p.attrs is None:
            continue
        for ref in (p.attrs.size, p.attrs.count):
            if ref is not None and ref.param is not None and ref.param not in names:
                names.append(ref.param)
    return [p.name for p in f.params if p.name in names]


def is_session(p) -> bool:
    # veil.edl's convention: the session id is the by-value `uint64_t session`.
    return not p.is_buffer and p.name == "session" and p.type.base == "uint64_t"


def pointee(p) -> str:
    return ("const " if p.type.const else "") + p.type.base


def byte_count(f, p, count_expr) -> str:
    """C++ expression for the bytes the bridge copies for buffer parameter p;
    count_expr(name) spells the value of the by-value parameter `name`."""
    a = p.attrs
    if p.user_check:
        return f"times({count_expr(lent_count(f, p))}, sizeof({p.type.base}))"
    if p.dims:
        total = 1
        for d in p.dims:
            total *= d
        return f"uint64_t{{{total}}} * sizeof({p.type.base})"
    if a.string:
        fail(f"{f.name}: [string] parameter '{p.name}': teach this script its valid length")
    element = "1" if a.size is not None or p.type.kind == "void" else f"sizeof({p.type.base})"
    ref = a.size if a.size is not None else a.count
    if ref is None:
        return element
    if ref.param is None:
        return f"times({ref.literal}, {element})"
    return f"times({count_expr(ref.param)}, {element})"


def scalar_type(f, p) -> str:
    if p.type.kind not in ("int", "char", "bool", "enum"):
        fail(f"{f.name}: cannot pass '{p.declaration()}' by value yet; extend this script")
    return p.type.base


def invoke_function(f) -> List[str]:
    if f.ret.spelled() != "int":
        fail(f"{f.name} returns {f.ret.spelled()}; veil's ecalls return an int veil_status_t")
    out = [
        f"Outcome invoke_{f.name}(Harness& h, const Call& call, Change change,",
        "                         const std::string& changed) {",
        "  (void)call, (void)change, (void)changed;  // an ecall without arguments uses none",
    ]
    for p in f.params:
        if not is_pointer(p):
            t = scalar_type(f, p)
            out.append(f"  const {t} {p.name} = scalar<{t}>(call, change, changed, \"{p.name}\");")
    for p in f.params:
        if not is_pointer(p):
            continue
        if len(p.dims) > 1:
            fail(f"{f.name}: multi-dimensional array parameter '{p.name}' is not supported yet")
        null = f"change == Change::kNull && changed == \"{p.name}\""
        size = byte_count(f, p, lambda name: f"static_cast<uint64_t>({name})")
        if p.attrs.is_in or p.user_check:  # a lent pointer carries input (veil.edl)
            out.append(f"  Buffer {p.name}_buffer =")
            out.append(f"      in_buffer(call, change, {null}, \"{p.name}\", {size});")
        else:
            out.append(f"  Buffer {p.name}_buffer = out_buffer({null}, {size});")
    args = ["h.enclave()", "&status"] + [
        (f"{p.name}_buffer.as<{pointee(p)}>()" if is_pointer(p) else p.name) for p in f.params
    ]
    out += [
        "  int status = -1;",
        f"  const oe_result_t bridge = {f.name}(" + ", ".join(args) + ");",
        "  return Outcome{bridge, status};",
        "}",
        "",
    ]
    return out


def default_call(f) -> List[str]:
    counts = count_params(f)
    out = [f"Call default_{f.name}(Harness& h) {{", "  Call call;"]
    for p in f.params:
        if is_pointer(p):
            continue
        if is_session(p):
            value = "static_cast<int64_t>(h.session())"
        else:
            value = "1" if p.name in counts else "0"  # a count of 1 makes NULL a real error
        out.append(f"  call.scalars[\"{p.name}\"] = {value};")
    for p in f.params:
        if is_pointer(p) and (p.user_check or p.attrs.is_in):
            size = byte_count(f, p, lambda name: f"static_cast<uint64_t>(call.scalars[\"{name}\"])")
            out.append(f"  call.inputs[\"{p.name}\"].assign({size}, 0);")
    out += ["  (void)h;", "  return call;", "}", ""]
    return out


def generate(edl) -> dict:
    ecalls = edl.trusted
    if not ecalls:
        fail(f"{edl.path} declares no ecalls")
    header = [
        f"// Generated by tests/cpp/hardening/gen_boundary_cases.py from {os.path.basename(edl.path)}.",
        "// Do not edit: change the EDL and rebuild.",
        "#pragma once",
        "",
        "// One macro per ecall of the EDL, for code that only exists while the ecall does.",
    ] + [f"#define BOUNDARY_HAS_{f.name} 1" for f in ecalls] + [""]

    cc = [
        f"// Generated by tests/cpp/hardening/gen_boundary_cases.py from {os.path.basename(edl.path)}.",
        "// Do not edit: change the EDL (or the script) and rebuild.",
        "#include <cstdint>",
        "#include <string>",
        "#include <vector>",
        "",
        "#include \"boundary_harness.h\"",
        f"#include \"{edl.name}_u.h\"",
        "",
        "namespace boundary {",
        "namespace {",
        "",
    ]
    for f in ecalls:
        cc += invoke_function(f)
        cc += default_call(f)
    cc += ["}  // namespace", "", "const std::vector<Case>& all_cases() {",
           "  static const std::vector<Case> cases = {"]
    for f in ecalls:
        session = "true" if any(is_session(p) for p in f.params) else "false"
        cc.append(f"      {{\"{f.name}\", Change::kNone, \"\", {session}}},")
        for p in f.params:
            if is_pointer(p):
                cc.append(f"      {{\"{f.name}\", Change::kNull, \"{p.name}\", {session}}},")
        for c in count_params(f):
            cc.append(f"      {{\"{f.name}\", Change::kCountUp, \"{c}\", {session}}},")
            cc.append(f"      {{\"{f.name}\", Change::kCountDown, \"{c}\", {session}}},")
    cc += ["  };", "  return cases;", "}", ""]
    cc += ["Invoke invoker(const std::string& ecall) {"]
    for f in ecalls:
        cc.append(f"  if (ecall == \"{f.name}\") return &invoke_{f.name};")
    cc += ["  return nullptr;", "}", ""]
    cc += ["Call default_call(Harness& h, const std::string& ecall) {"]
    for f in ecalls:
        cc.append(f"  if (ecall == \"{f.name}\") return default_{f.name}(h);")
    cc += ["  throw SetupError(\"no ecall named \" + ecall);", "}", "",
           "}  // namespace boundary", ""]
    return {"boundary_ecalls.h": "\n".join(header), "boundary_cases.cc": "\n".join(cc)}


def main() -> int:
    if len(sys.argv) != 4:
        fail("usage: gen_boundary_cases.py <runtime/edger dir> <file.edl> <output dir>")
    edger_dir, edl_path, out_dir = sys.argv[1:]
    sys.path.insert(0, os.path.abspath(edger_dir))
    from edl_parse import EdlError, parse_file  # runtime/edger: the generator's own parser

    try:
        edl = parse_file(edl_path)
    except EdlError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    for name, text in generate(edl).items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
