"""Lexer, parser and checker for the EDL subset veil supports.

The grammar follows Open Enclave's EDL (oeedger8r); everything outside the subset
that veil's bridge can marshal safely is rejected with ``file:line: error: ...``
rather than guessed at. See runtime/README.md for the subset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


class EdlError(Exception):
    """An error in an EDL file, reported as ``path:line: error: message``."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: error: {self.message}"


@dataclass
class Token:
    kind: str  # "id", "int", "str", "punct", "eof"
    value: str
    line: int


PUNCT = set("{}()[];,=*-")


def tokenize(text: str, path: str) -> List[Token]:
    tokens: List[Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise EdlError(path, line, "unterminated /* comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("id", text[i:j], line))
            i = j
        elif c.isdigit():
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            literal = text[i:j]
            if not literal.isdigit():
                raise EdlError(path, line, f"'{literal}': only decimal integer literals are supported")
            tokens.append(Token("int", literal, line))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 1
            if j >= n or text[j] != '"':
                raise EdlError(path, line, "unterminated string literal")
            tokens.append(Token("str", text[i + 1 : j], line))
            i = j + 1
        elif c in PUNCT:
            tokens.append(Token("punct", c, line))
            i += 1
        elif c == "#":
            raise EdlError(path, line, "preprocessor directives are not supported in EDL")
        else:
            raise EdlError(path, line, f"unexpected character {c!r}")
    tokens.append(Token("eof", "", line))
    return tokens


# Fixed-width and other single-word scalar types: name -> (kind, signed).
SIMPLE_TYPES: Dict[str, Tuple[str, bool]] = {
    "int8_t": ("int", True),
    "int16_t": ("int", True),
    "int32_t": ("int", True),
    "int64_t": ("int", True),
    "uint8_t": ("int", False),
    "uint16_t": ("int", False),
    "uint32_t": ("int", False),
    "uint64_t": ("int", False),
    "size_t": ("int", False),
    "bool": ("bool", False),
    "float": ("float", True),
    "double": ("float", True),
    "void": ("void", False),
}

KEYWORDS = {
    "enclave", "trusted", "untrusted", "public", "struct", "enum", "union", "const",
    "unsigned", "signed", "char", "short", "int", "long", "from", "import", "include",
} | set(SIMPLE_TYPES)

UNSUPPORTED_ATTRIBUTES = {
    "isptr": "[isptr] (foreign pointer typedefs) is not supported",
    "isary": "[isary] (foreign array typedefs) is not supported",
    "wstring": "[wstring] is not supported; use [in, string] char*",
    "readonly": "[readonly] is not supported",
}

# The Open Enclave v0.19 system EDLs veil's EDLs may import, each with the functions
# it declares (itself or through its own imports), or None where that list is not
# recorded here. oeedger8r reads these files from the SDK and refuses a named import
# the file does not declare; the virtual generator has no SDK, so it checks imports
# against this record and refuses a system EDL it does not know rather than guess.
OE_SYSTEM_EDLS: Dict[str, Optional[Tuple[str, ...]]] = {
    "openenclave/edl/logging.edl": (
        "oe_log_init_ecall",
        "oe_log_is_supported_ocall",
        "oe_log_ocall",
        "oe_write_ocall",
    ),
    # Every SGX enclave imports it whole: the OE runtime's SGX ecalls and ocalls.
    "openenclave/edl/sgx/platform.edl": None,
}

UNSUPPORTED_SUFFIXES = {
    "allow": "allow(...) lists are not supported",
    "transition_using_threads": "transition_using_threads (switchless calls) is not supported",
    "propagate_errno": "propagate_errno is not supported",
}


@dataclass
class CType:
    """A type as written: const, base spelling, pointer depth."""

    base: str  # e.g. "uint8_t", "unsigned long", "struct rt_point", "rt_color"
    kind: str  # "int", "char", "bool", "float", "void", "enum", "struct"
    signed: bool
    const: bool = False
    ptr: int = 0
    user: Optional[str] = None  # EDL-declared struct/enum name

    def spelled(self) -> str:
        return ("const " if self.const else "") + self.base + "*" * self.ptr

    def pointee(self) -> "CType":
        return CType(self.base, self.kind, self.signed, False, 0, self.user)


@dataclass
class SizeRef:
    """The value of a size= or count= attribute: an integer or a parameter name."""

    literal: Optional[int] = None
    param: Optional[str] = None


@dataclass
class Attrs:
    line: int
    is_in: bool = False
    is_out: bool = False
    string: bool = False
    user_check: bool = False  # the pointer crosses as a value; nothing is copied
    size: Optional[SizeRef] = None
    count: Optional[SizeRef] = None


@dataclass
class Decl:
    name: str
    type: CType
    dims: List[int]
    attrs: Optional[Attrs]
    line: int

    def declaration(self) -> str:
        """C declaration of this parameter or member, exactly as written."""
        return f"{self.type.spelled()} {self.name}" + "".join(f"[{d}]" for d in self.dims)

    @property
    def is_buffer(self) -> bool:
        """Marshalled as a buffer; a [user_check] pointer is passed by value."""
        return (self.type.ptr > 0 or bool(self.dims)) and not self.user_check

    @property
    def user_check(self) -> bool:
        return self.attrs is not None and self.attrs.user_check


@dataclass
class Function:
    name: str
    ret: CType
    params: List[Decl]
    trusted: bool
    line: int

    def param(self, name: str) -> Optional[Decl]:
        for p in self.params:
            if p.name == name:
                return p
        return None


@dataclass
class EnumDef:
    name: str
    items: List[Tuple[str, Optional[str]]]
    line: int


@dataclass
class StructDef:
    name: str
    members: List[Decl]
    line: int


@dataclass
class Edl:
    name: str
    path: str
    types: List[object] = field(default_factory=list)  # EnumDef | StructDef, in order
    trusted: List[Function] = field(default_factory=list)
    untrusted: List[Function] = field(default_factory=list)
    system_imports: List[str] = field(default_factory=list)
    imports: List[str] = field(default_factory=list)  # paths of the user EDLs imported


class Parser:
    def __init__(self, text: str, path: str, search_paths: Tuple[str, ...] = (),
                 importers: Tuple[str, ...] = ()):
        self.path = path
        self.search_paths = tuple(search_paths)
        # The EDLs whose imports led here, outermost first: an import of one of them is a cycle.
        self.importers = importers
        self.tokens = tokenize(text, path)
        self.pos = 0
        name = os.path.splitext(os.path.basename(path))[0]
        if not name.isidentifier():
            raise EdlError(path, 1, f"EDL file name '{name}' must be a C identifier")
        self.edl = Edl(name=name, path=path)
        self.user_types: Dict[str, object] = {}
        self.enumerators: Dict[str, int] = {}
        self.function_names: Dict[str, int] = {}

    # -- token helpers -------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def error(self, message: str, tok: Optional[Token] = None) -> EdlError:
        return EdlError(self.path, (tok or self.peek()).line, message)

    @staticmethod
    def describe(tok: Token) -> str:
        return "end of file" if tok.kind == "eof" else f"'{tok.value}'"

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok.kind in ("id", "punct") and tok.value == value

    def accept(self, value: str) -> bool:
        if self.at(value):
            self.pos += 1
            return True
        return False

    def expect(self, value: str, context: str) -> Token:
        tok = self.peek()
        if not self.at(value):
            raise self.error(f"expected '{value}' {context}, found {self.describe(tok)}")
        return self.next()

    def identifier(self, what: str) -> Token:
        tok = self.peek()
        if tok.kind != "id" or tok.value in KEYWORDS:
            raise self.error(f"expected {what}, found {self.describe(tok)}")
        return self.next()

    # -- grammar -------------------------------------------------------------
    def parse(self) -> Edl:
        self.expect("enclave", "at the start of the EDL file")
        self.expect("{", "after 'enclave'")
        while not self.at("}"):
            if self.peek().kind == "eof":
                raise self.error("missing '}' closing the enclave block")
            self.item()
        self.next()
        self.accept(";")
        if self.peek().kind != "eof":
            raise self.error(f"unexpected {self.describe(self.peek())} after the enclave block")
        return self.edl

    def item(self) -> None:
        tok = self.peek()
        if tok.kind != "id":
            raise self.error(f"unexpected {self.describe(tok)} in the enclave block")
        if tok.value == "from":
            self.from_import()
        elif tok.value == "import":
            self.next()
            target = self.next()
            if target.kind != "str":
                raise self.error("expected a quoted EDL path after 'import'", target)
            if self.at(";"):
                # oeedger8r's grammar: import "file.edl" ends without one (only
                # from "file.edl" import ...; does), and it refuses a stray ';'.
                raise self.error(
                    f"import \"{target.value}\" takes no ';' (only 'from ... import ...;' ends with one)"
                )
            self.import_edl(target, None)
        elif tok.value == "include":
            raise self.error(
                "'include' is not supported: declare every type the bridge uses in the EDL itself"
            )
        elif tok.value == "enum":
            self.enum_def()
        elif tok.value == "struct":
            self.struct_def()
        elif tok.value == "union":
            raise self.error("unions are not supported")
        elif tok.value == "trusted":
            self.section(trusted=True)
        elif tok.value == "untrusted":
            self.section(trusted=False)
        else:
            raise self.error(f"unexpected '{tok.value}' in the enclave block")

    def from_import(self) -> None:
        self.next()
        target = self.next()
        if target.kind != "str":
            raise self.error("expected a quoted EDL path after 'from'", target)
        self.expect("import", "after the imported file name")
        names: Optional[List[Token]] = None
        if not self.accept("*"):
            names = [self.identifier("an imported function name")]
            while self.accept(","):
                names.append(self.identifier("an imported function name"))
        self.expect(";", "after the import list")
        self.import_edl(target, names)

    def import_edl(self, target: Token, names: Optional[List[Token]]) -> None:
        """An import: every type of the imported EDL, and its functions (names None:
        all of them) in its order, placed where the import stands."""
        if target.value.startswith("openenclave/edl/"):
            self.system_import(target, names)
            return
        path = self.locate(target)
        chain = self.importers + (os.path.abspath(self.path),)
        if os.path.abspath(path) in chain:
            raise self.error(f"import of '{target.value}' is circular", target)
        imported = parse_file(path, self.search_paths, chain)
        self.edl.imports.append(path)
        self.edl.imports.extend(p for p in imported.imports if p not in self.edl.imports)
        self.edl.system_imports.extend(
            p for p in imported.system_imports if p not in self.edl.system_imports)
        for definition in imported.types:
            self.declare_type(Token("id", definition.name, target.line), definition)
            if isinstance(definition, EnumDef):
                for item, _ in definition.items:
                    if item in self.enumerators:
                        raise self.error(f"enumerator '{item}' is declared twice", target)
                    self.enumerators[item] = target.line
        functions = imported.trusted + imported.untrusted
        if names is not None:
            by_name = {f.name: f for f in functions}
            missing = [n for n in names if n.value not in by_name]
            if missing:
                raise self.error(
                    f"'{missing[0].value}' is not a function of '{target.value}'", missing[0])
            wanted = {n.value for n in names}
            functions = [f for f in functions if f.name in wanted]
        for f in functions:
            if f.name in self.function_names:
                raise self.error(f"function '{f.name}' is declared twice", target)
            self.function_names[f.name] = target.line
            (self.edl.trusted if f.trusted else self.edl.untrusted).append(f)

    def system_import(self, target: Token, names: Optional[List[Token]]) -> None:
        """Open Enclave's system EDLs (openenclave/edl/...) declare the SDK runtime's
        own ecalls and ocalls. The virtual runtime provides those services itself,
        so importing them is accepted and generates nothing; the names imported
        must still be ones the file declares, as oeedger8r requires."""
        if target.value not in OE_SYSTEM_EDLS:
            raise self.error(
                f"import of '{target.value}': not an Open Enclave system EDL the virtual "
                f"generator knows ({', '.join(sorted(OE_SYSTEM_EDLS))}); record it and the "
                "functions it declares in OE_SYSTEM_EDLS (runtime/edger/edl_parse.py)",
                target,
            )
        declared = OE_SYSTEM_EDLS[target.value]
        for name in names or ():
            if declared is None:
                raise self.error(
                    f"'{name.value}': the functions of '{target.value}' are not recorded "
                    "in OE_SYSTEM_EDLS, so only a whole import of it can be checked "
                    f"(from \"{target.value}\" import *; or import \"{target.value}\")",
                    name,
                )
            if name.value not in declared:
                raise self.error(
                    f"'{target.value}' declares no function '{name.value}' "
                    f"(it declares {', '.join(declared)})",
                    name,
                )
        if target.value not in self.edl.system_imports:
            self.edl.system_imports.append(target.value)

    def locate(self, target: Token) -> str:
        """An imported EDL: beside the importing file, else in a search path."""
        directories = (os.path.dirname(os.path.abspath(self.path)),) + self.search_paths
        for directory in directories:
            candidate = os.path.join(directory, target.value)
            if os.path.isfile(candidate):
                return candidate
        raise self.error(
            f"imported EDL '{target.value}' not found beside {os.path.basename(self.path)} "
            f"or in the search paths ({', '.join(self.search_paths) or 'none'})",
            target,
        )

    def declare_type(self, name_tok: Token, definition: object) -> None:
        if name_tok.value in self.user_types:
            raise self.error(f"type '{name_tok.value}' is declared twice", name_tok)
        self.user_types[name_tok.value] = definition
        self.edl.types.append(definition)

    def enum_def(self) -> None:
        start = self.next()
        if not self.peek().kind == "id":
            raise self.error("anonymous enums are not supported: give the enum a name")
        name = self.identifier("an enum name")
        self.expect("{", f"after 'enum {name.value}'")
        items: List[Tuple[str, Optional[str]]] = []
        while True:
            item = self.identifier("an enumerator name")
            if item.value in self.enumerators:
                raise self.error(f"enumerator '{item.value}' is declared twice", item)
            self.enumerators[item.value] = item.line
            value: Optional[str] = None
            if self.accept("="):
                if self.at("-"):
                    # oeedger8r reads one token after '=': '-' is not a value there.
                    raise self.error(
                        f"enumerator '{item.value}' has a negative value; EDL enumerator "
                        "values are non-negative decimal integers"
                    )
                lit = self.next()
                if lit.kind != "int":
                    raise self.error(
                        f"enumerator '{item.value}' needs an integer value, found {self.describe(lit)}",
                        lit,
                    )
                if int(lit.value) >= 2**31:
                    raise self.error(f"enumerator '{item.value}' does not fit an int", lit)
                value = str(int(lit.value))
            items.append((item.value, value))
            if self.accept(","):
                if self.at("}"):
                    break
                continue
            break
        self.expect("}", f"closing enum '{name.value}'")
        self.expect(";", f"after enum '{name.value}'")
        self.declare_type(name, EnumDef(name.value, items, start.line))

    def struct_def(self) -> None:
        start = self.next()
        name = self.identifier("a struct name")
        self.expect("{", f"after 'struct {name.value}'")
        members: List[Decl] = []
        seen = set()
        while not self.accept("}"):
            if self.at("["):
                raise self.error(
                    f"attributes on members of struct '{name.value}' (deep copy) are not supported"
                )
            mtype = self.type_expr()
            mname = self.identifier("a member name")
            dims = self.dims()
            self.expect(";", f"after member '{mname.value}'")
            if mtype.ptr:
                raise self.error(
                    f"member '{mname.value}' of struct '{name.value}' is a pointer; "
                    "structs crossing the boundary must be plain data (use a fixed array)",
                    mname,
                )
            if mtype.kind == "void":
                raise self.error(f"member '{mname.value}' cannot be void", mname)
            if mname.value in seen:
                raise self.error(f"member '{mname.value}' is declared twice", mname)
            seen.add(mname.value)
            members.append(Decl(mname.value, mtype, dims, None, mname.line))
        if not members:
            raise self.error(f"struct '{name.value}' has no members", name)
        self.expect(";", f"after struct '{name.value}'")
        self.declare_type(name, StructDef(name.value, members, start.line))

    def integer_words(self, first: Token) -> str:
        """Multi-word integer spellings: char, short [int], int, long [int],
        long long [int], long double."""
        v = first.value
        if v == "char" or v == "int":
            return v
        if v == "short":
            return "short int" if self.accept("int") else "short"
        if v == "long":
            if self.accept("long"):
                return "long long int" if self.accept("int") else "long long"
            if self.accept("double"):
                return "long double"
            return "long int" if self.accept("int") else "long"
        raise self.error(f"expected an integer type, found '{v}'", first)

    def type_expr(self) -> CType:
        const = self.accept("const")
        tok = self.next()
        if tok.kind != "id":
            raise self.error(f"expected a type, found {self.describe(tok)}", tok)
        v = tok.value
        if v == "unsigned":
            word = self.next()
            if word.kind != "id" or word.value not in ("char", "short", "int", "long"):
                raise self.error("expected char, short, int or long after 'unsigned'", word)
            base = "unsigned " + self.integer_words(word)
            ctype = CType(base, "int", False)
        elif v in ("char", "short", "int", "long"):
            base = self.integer_words(tok)
            if base == "char":
                ctype = CType(base, "char", True)
            elif base == "long double":
                ctype = CType(base, "float", True)
            else:
                ctype = CType(base, "int", True)
        elif v in SIMPLE_TYPES:
            kind, signed = SIMPLE_TYPES[v]
            ctype = CType(v, kind, signed)
        elif v in ("struct", "enum"):
            name = self.identifier(f"a {v} name")
            definition = self.user_types.get(name.value)
            wanted = StructDef if v == "struct" else EnumDef
            if not isinstance(definition, wanted):
                raise self.error(f"'{v} {name.value}' is not declared in this EDL", name)
            ctype = CType(f"{v} {name.value}", v, v == "enum", user=name.value)
        elif v == "union":
            raise self.error("unions are not supported", tok)
        elif v in ("wchar_t", "signed"):
            raise self.error(f"type '{v}' is not supported", tok)
        elif v in self.user_types:
            definition = self.user_types[v]
            kind = "struct" if isinstance(definition, StructDef) else "enum"
            ctype = CType(v, kind, kind == "enum", user=v)
        else:
            raise self.error(f"unknown type '{v}' (types must be declared in this EDL)", tok)
        if self.at("const"):
            raise self.error("write 'const' before the type ('const T*'); other placements are not supported")
        ctype.const = const
        while self.accept("*"):
            ctype.ptr += 1
            if self.at("const"):
                raise self.error("const pointers ('T* const') are not supported")
        return ctype

    def dims(self) -> List[int]:
        dims: List[int] = []
        while self.accept("["):
            tok = self.next()
            if tok.kind != "int":
                raise self.error(
                    f"array dimensions must be integer literals, found {self.describe(tok)}", tok
                )
            if int(tok.value) <= 0:
                raise self.error("array dimensions must be positive", tok)
            dims.append(int(tok.value))
            self.expect("]", "closing the array dimension")
        return dims

    def attributes(self) -> Attrs:
        open_tok = self.expect("[", "opening the attribute list")
        attrs = Attrs(line=open_tok.line)
        seen = set()
        while True:
            tok = self.next()
            if tok.kind != "id":
                raise self.error(f"expected an attribute, found {self.describe(tok)}", tok)
            name = tok.value
            if name in UNSUPPORTED_ATTRIBUTES:
                raise self.error(UNSUPPORTED_ATTRIBUTES[name], tok)
            if name not in ("in", "out", "string", "size", "count", "user_check"):
                raise self.error(f"unknown attribute '{name}'", tok)
            if name in seen:
                raise self.error(f"attribute '{name}' given twice", tok)
            seen.add(name)
            if name == "in":
                attrs.is_in = True
            elif name == "out":
                attrs.is_out = True
            elif name == "string":
                attrs.string = True
            elif name == "user_check":
                attrs.user_check = True
            else:
                self.expect("=", f"after '{name}'")
                val = self.next()
                if val.kind == "int":
                    ref = SizeRef(literal=int(val.value))
                elif val.kind == "id" and val.value not in KEYWORDS:
                    ref = SizeRef(param=val.value)
                else:
                    raise self.error(
                        f"'{name}=' needs an integer or a parameter name, found {self.describe(val)}",
                        val,
                    )
                setattr(attrs, name, ref)
            if self.accept(","):
                continue
            self.expect("]", "closing the attribute list")
            return attrs

    def section(self, trusted: bool) -> None:
        word = "trusted" if trusted else "untrusted"
        self.next()
        self.expect("{", f"after '{word}'")
        while not self.accept("}"):
            if self.peek().kind == "eof":
                raise self.error(f"missing '}}' closing the {word} section")
            if trusted:
                if not self.accept("public"):
                    tok = self.peek()
                    if tok.kind == "id" and tok.value == "private":
                        raise self.error("private ecalls are not supported; declare ecalls 'public'")
                    raise self.error(
                        f"expected 'public' before an ecall, found {self.describe(tok)}"
                    )
            elif self.at("public"):
                raise self.error("'public' applies to ecalls only, not to ocalls")
            self.function(trusted)
        if self.at("transition_using_threads") or self.at("propagate_errno"):
            raise self.error(UNSUPPORTED_SUFFIXES[self.peek().value])
        self.expect(";", f"after the {word} section")

    def function(self, trusted: bool) -> None:
        ret = self.type_expr()
        name = self.identifier("a function name")
        self.expect("(", f"after function name '{name.value}'")
        params: List[Decl] = []
        if self.at("void") and self.peek(1).kind == "punct" and self.peek(1).value == ")":
            self.next()
        if not self.at(")"):
            while True:
                attrs = self.attributes() if self.at("[") else None
                ptype = self.type_expr()
                pname = self.identifier("a parameter name")
                dims = self.dims()
                params.append(Decl(pname.value, ptype, dims, attrs, pname.line))
                if self.accept(","):
                    continue
                break
        self.expect(")", f"closing the parameter list of '{name.value}'")
        tok = self.peek()
        if tok.kind == "id" and tok.value in UNSUPPORTED_SUFFIXES:
            raise self.error(UNSUPPORTED_SUFFIXES[tok.value])
        self.expect(";", f"after function '{name.value}'")
        func = Function(name.value, ret, params, trusted, name.line)
        self.check_function(func)
        (self.edl.trusted if trusted else self.edl.untrusted).append(func)

    # -- semantic checks -----------------------------------------------------
    def fail(self, line: int, message: str) -> EdlError:
        return EdlError(self.path, line, message)

    def check_function(self, f: Function) -> None:
        what = "ecall" if f.trusted else "ocall"
        if f.name in self.function_names:
            raise self.fail(f.line, f"function '{f.name}' is declared twice")
        if f.name.startswith("oe_") or f.name.startswith("veil_edger"):
            raise self.fail(f.line, f"function name '{f.name}' uses a reserved prefix")
        self.function_names[f.name] = f.line
        if f.ret.ptr:
            raise self.fail(f.line, f"{what} '{f.name}' returns a pointer; return data through an [out] parameter")
        if f.ret.kind == "struct":
            raise self.fail(f.line, f"{what} '{f.name}' returns a struct; return it through an [out] parameter")
        names = set()
        for p in f.params:
            if p.name in names:
                raise self.fail(p.line, f"parameter '{p.name}' of '{f.name}' is declared twice")
            names.add(p.name)
            if p.name.startswith("_") or p.name == "enclave":
                raise self.fail(p.line, f"parameter name '{p.name}' is reserved for the generated bridge")
        for p in f.params:
            self.check_param(f, p)

    def check_param(self, f: Function, p: Decl) -> None:
        t, a = p.type, p.attrs
        if p.user_check:
            # As in oeedger8r: the pointer value crosses, never the data; so no
            # direction, size or count, and only a plain pointer.
            if a.is_in or a.is_out or a.string or a.size or a.count:
                raise self.fail(a.line, f"[user_check] parameter '{p.name}' takes no other attribute")
            if t.ptr != 1 or p.dims:
                raise self.fail(a.line, f"[user_check] parameter '{p.name}' must be a plain pointer")
            return
        if not p.is_buffer:
            if a is not None:
                raise self.fail(a.line, f"attributes are only allowed on pointer and array parameters ('{p.name}')")
            if t.kind == "void":
                raise self.fail(p.line, f"parameter '{p.name}' cannot be void")
            return
        if t.ptr > 1:
            raise self.fail(p.line, f"parameter '{p.name}': pointers to pointers are not supported")
        if t.ptr and p.dims:
            raise self.fail(p.line, f"parameter '{p.name}': arrays of pointers are not supported")
        if a is None or not (a.is_in or a.is_out):
            raise self.fail(
                (a.line if a else p.line),
                f"pointer parameter '{p.name}' of '{f.name}' needs a direction: "
                "[in], [out], [in, out] or [user_check]",
            )
        if a.is_out and t.const:
            raise self.fail(a.line, f"[out] parameter '{p.name}' must not be const")
        if a.size is not None and a.count is not None:
            # oeedger8r refuses the pair ("simultaneous size and count").
            raise self.fail(
                a.line,
                f"parameter '{p.name}' of '{f.name}' has both size= and count=; give one: "
                "count= (elements) or size= (bytes)",
            )
        if a.string:
            if not a.is_in:
                raise self.fail(a.line, f"[string] parameter '{p.name}' must be [in] or [in, out]")
            if t.kind != "char" or t.ptr != 1:
                raise self.fail(a.line, f"[string] parameter '{p.name}' must be a char*")
            if a.size or a.count:
                raise self.fail(a.line, f"[string] parameter '{p.name}' cannot also have size= or count=")
            return
        if p.dims:
            if a.size or a.count:
                raise self.fail(a.line, f"array parameter '{p.name}' takes its size from its declaration; drop size=/count=")
            return
        if t.kind == "void" and a.size is None:
            raise self.fail(a.line, f"void* parameter '{p.name}' needs size=")
        for attr_name in ("size", "count"):
            ref: Optional[SizeRef] = getattr(a, attr_name)
            if ref is None or ref.param is None:
                continue
            target = f.param(ref.param)
            if target is None:
                raise self.fail(a.line, f"{attr_name}={ref.param}: '{f.name}' has no parameter '{ref.param}'")
            if target is p or target.is_buffer or target.type.kind not in ("int", "char"):
                raise self.fail(
                    a.line,
                    f"{attr_name}={ref.param}: '{ref.param}' must be an integer parameter passed by value",
                )


def parse_file(path: str, search_paths: Tuple[str, ...] = (),
               importers: Tuple[str, ...] = ()) -> Edl:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise EdlError(path, 0, f"cannot read EDL file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise EdlError(path, 0, "EDL file is not valid UTF-8") from exc
    return Parser(text, path, search_paths, importers).parse()
