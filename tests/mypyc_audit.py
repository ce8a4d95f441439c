"""Find code that mypyc compiles differently from what the interpreter runs.

mypyc compiles `a == b` and `a != b` to an identity comparison when the static type of an operand
is one of our own (native) classes that does not define `__eq__` in its source: attrs adds
`__eq__` when the program runs, after mypyc has decided.  The interpreter would call attrs'
field-by-field `__eq__`; the compiled build would answer "different" for two equal entries.
This audit type-checks the compiled modules with mypy and lists every such comparison, so that
tests/test_compiled_build.py fails on one before it can change a run.

It also lists one function binding the same name in two `except ... as name` clauses of different
exception types: mypyc gives the name the first clause's type, so the second clause fails with a
TypeError instead of handling its exception.

    python tests/mypyc_audit.py        # prints the offending comparisons, exits 1 if any
"""

from __future__ import annotations

import sys
from pathlib import Path

from mypy import build
from mypy.modulefinder import BuildSource
from mypy.nodes import ComparisonExpr, Expression, MypyFile, Node, TypeInfo
from mypy.options import Options
from mypy.types import Instance, Type, get_proper_type

ROOT = Path(__file__).resolve().parent.parent


def compiled_modules() -> list[str]:
    """The list setup.py compiles (read from setup.py, so there is one list)."""
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMPILED_MODULES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise LookupError("COMPILED_MODULES not found in setup.py")


def _own_class_without_eq(typ: Type | None, ours: set[str]) -> TypeInfo | None:
    proper = get_proper_type(typ) if typ is not None else None
    if not isinstance(proper, Instance):
        return None
    info = proper.type
    if info.module_name not in ours or info.is_enum or info.tuple_type is not None:
        return None  # enums compare by identity anyway; named tuples are tuples
    for base in info.mro:
        if base.module_name in ours and "__eq__" in base.names and base.names["__eq__"].plugin_generated is False:
            return None
    return info


_SKIP = {"node", "info", "names", "analyzed", "type", "fullname", "unanalyzed_type", "imports", "alias_deps"}


def _comparisons_in(tree: MypyFile) -> list[ComparisonExpr]:
    # mypy's visitor classes are compiled traits that an interpreted class cannot extend, so walk
    # the syntax tree by the attributes mypyc lists for each node class, never into references.
    found: list[ComparisonExpr] = []
    seen: set[int] = set()
    stack: list[object] = [tree.defs]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        if not isinstance(item, Node) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ComparisonExpr):
            found.append(item)
        for cls in type(item).__mro__:
            for name in getattr(cls, "__mypyc_attrs__", ()):
                if name not in _SKIP:
                    stack.append(getattr(item, name, None))
    return found


def _comparisons(tree: MypyFile, types: dict[Expression, Type], ours: set[str], path: str) -> list[str]:
    found = []
    for expr in _comparisons_in(tree):
        for op, left, right in expr.pairwise():
            if op not in ("==", "!="):
                continue
            for side in (left, right):
                info = _own_class_without_eq(types.get(side), ours)
                if info is not None:
                    found.append(f"{path}:{expr.line}: `{op}` on {info.name}, which mypyc compiles to an "
                                 f"identity test (compare the fields, or type the operand `object`)")
                    break
    return sorted(set(found), key=lambda line: int(line.split(":")[1]))


def _except_names(path: Path, shown: str) -> list[str]:
    import ast

    found = []
    for fn in ast.walk(ast.parse(path.read_text())):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        bound: dict[str, set[str]] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.ExceptHandler) and node.name:
                bound.setdefault(node.name, set()).add(ast.unparse(node.type) if node.type else "BaseException")
        found += [f"{shown}:{fn.lineno}: {fn.name}() binds `{name}` to {' and '.join(sorted(types))}; mypyc types "
                  f"it as one of them (give each clause its own name)" for name, types in bound.items() if len(types) > 1]
    return found


def audit(sources: dict[str, Path] | None = None) -> list[str]:
    """Offending comparisons in `sources` (module name -> file; by default what setup.py compiles)."""
    if sources is None:
        sources = {m: ROOT.joinpath(*m.split(".")).with_suffix(".py") for m in compiled_modules()}
    options = Options()
    options.ignore_missing_imports = True
    options.follow_imports = "silent"
    options.export_types = True
    options.preserve_asts = True
    options.incremental = False
    result = build.build([BuildSource(str(path), m) for m, path in sources.items()], options)
    ours = set(sources)
    found: list[str] = []
    for m, path in sources.items():
        tree = result.graph[m].tree
        assert tree is not None, m
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        found += _comparisons(tree, result.types, ours, str(shown))
        found += _except_names(path, str(shown))
    return found


if __name__ == "__main__":
    problems = audit()
    print("\n".join(problems) or "nothing that mypyc compiles differently")
    sys.exit(1 if problems else 0)
