#!/usr/bin/env python3
"""The codes that several layers share (statuses, features, activations, losses,
inference modes, limits) are declared once, as enums in edl/veil.edl. This script
writes them out for the two layers that cannot include the generated bridge
headers: the public C++ API (veil/codes.h, installed) and the Python package
(veil/_codes.py). Values are never written by hand anywhere else.

    veil_codes.py <veil.edl> <codes.h> <_codes.py>

An enum VEIL_<PREFIX>_<NAME> item becomes <name> (lower case) in both outputs;
C++ keywords get a trailing underscore (private -> private_).
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from edl_parse import EdlError, EnumDef, parse_file  # noqa: E402

# EDL enum -> (C++ name, what it becomes). "enum": a scoped enum of int32_t;
# "limits": uint32_t constants in a namespace; "names": a name table only.
EXPORTS = {
    "veil_status_t": ("Status", "names"),
    "veil_feature_t": ("Feature", "names"),
    "veil_activation_t": ("Activation", "enum"),
    "veil_loss_t": ("Loss", "enum"),
    "veil_inference_mode_t": ("InferenceMode", "enum"),
    "veil_layer_kind_t": ("LayerKind", "enum"),
    "veil_pool_t": ("Pool", "enum"),
    "veil_limit_t": ("limits", "limits"),
}
edl_path = ""  # for error messages
CPP_KEYWORDS = {"private", "public", "protected", "default", "delete", "new"}


def short_names(enum: EnumDef):
    """(short name, full name, value) per item: in veil_loss_t, VEIL_LOSS_CROSS_ENTROPY
    is cross_entropy. Status names (VEIL_OK, VEIL_ERR_...) are kept whole."""
    prefix = enum.name[: -len("_t")].upper() + "_"
    out, value = [], -1
    for name, literal in enum.items:
        value = int(literal) if literal is not None else value + 1
        if enum.name == "veil_status_t":
            out.append((name, name, value))
            continue
        if not name.startswith(prefix):
            raise EdlError(edl_path, enum.line, f"{name} in {enum.name} must start with {prefix}")
        out.append((name[len(prefix):].lower(), name, value))
    return out


def cpp(edl_name: str, enums) -> str:
    lines = [
        "// Generated from " + edl_name + " by runtime/edger/veil_codes.py: do not edit.",
        "#pragma once",
        "#include <cstdint>",
        "",
        "namespace veil {",
    ]
    for enum in enums:
        name, kind = EXPORTS[enum.name]
        items = short_names(enum)
        lines.append("")
        if kind == "enum":
            lines.append(f"/** {enum.name} of the EDL. */")
            lines.append(f"enum class {name} : int32_t {{")
            idents = [short + "_" if short in CPP_KEYWORDS else short for short, _, _ in items]
            for ident, (_, _, value) in zip(idents, items):
                lines.append(f"  {ident} = {value},")
            lines.append("};")
            lines.append(f"/** True for a {name} value the EDL declares (for data read from a file). */")
            lines.append(f"constexpr bool is_valid({name} v) {{")
            lines.append("  switch (v) {")
            for ident in idents:
                lines.append(f"    case {name}::{ident}:")
            lines.append("      return true;")
            lines.append("  }")
            lines.append("  return false;")
            lines.append("}")
        elif kind == "limits":
            lines.append(f"/** {enum.name} of the EDL. */")
            lines.append("namespace limits {")
            for short, _, value in items:
                lines.append(f"constexpr uint32_t {short} = {value};")
            lines.append("}  // namespace limits")
        else:
            lines.append(f"/** The names of {enum.name} values (NULL past the end). */")
            lines.append(f"struct {name}Name {{")
            lines.append("  int64_t value;")
            lines.append("  const char* name;")
            lines.append("};")
            lines.append(f"inline constexpr {name}Name k{name}Names[] = {{")
            for short, full, value in items:
                spelled = short if name == "Status" else short.replace("_", "-")
                lines.append(f'    {{{value}, "{spelled}"}},')
            lines.append("    {0, nullptr},")
            lines.append("};")
    lines += ["", "}  // namespace veil", ""]
    return "\n".join(lines)


def python(edl_name: str, enums) -> str:
    lines = [f'"""Generated from {edl_name} by runtime/edger/veil_codes.py: do not edit."""', ""]
    for enum in enums:
        name, kind = EXPORTS[enum.name]
        items = short_names(enum)
        const = enum.name[len("veil_"):-len("_t")].upper()
        if kind == "names":
            lines.append(f"{const}_NAMES = {{")
            for short, _, value in items:
                spelled = short if name == "Status" else short.replace("_", "-")
                lines.append(f"    {value}: {spelled!r},")
        else:
            lines.append(f"{const} = {{")
            for short, _, value in items:
                lines.append(f"    {short!r}: {value},")
        lines.append("}")
    lines.append("")
    return "\n".join(lines)


def main(argv) -> int:
    if len(argv) != 4:
        print("usage: veil_codes.py <veil.edl> <codes.h> <_codes.py>", file=sys.stderr)
        return 2
    global edl_path
    edl_path = argv[1]
    try:
        edl = parse_file(edl_path)
        enums = [t for t in edl.types if isinstance(t, EnumDef) and t.name in EXPORTS]
        missing = set(EXPORTS) - {e.name for e in enums}
        if missing:
            raise EdlError(edl_path, 0, f"enums {sorted(missing)} are not declared")
        name = os.path.basename(edl_path)
        outputs = ((argv[2], cpp(name, enums)), (argv[3], python(name, enums)))
    except EdlError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path, text in outputs:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
