"""The layering rules of docs/architecture.md, checked on the source of every module (statically, with ast)."""

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "allseeing"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def own(names: set[str], modules: dict[str, set[str]]) -> set[str]:
    """The imported names that are modules of this package."""
    return {n for n in names if n in modules}


def third_party(names: set[str]) -> set[str]:
    roots = {n.split(".")[0] for n in names}
    return {r for r in roots if r not in ("allseeing", "__future__") and r not in sys.stdlib_module_names}


def closure(module: str, modules: dict[str, set[str]]) -> set[str]:
    """Every module of the package that ``module`` imports, directly or not."""
    seen, todo = set(), [module]
    while todo:
        for dependency in own(modules[todo.pop()], modules) - seen:
            seen.add(dependency)
            todo.append(dependency)
    return seen


def in_layer(module: str, *layers: str) -> bool:
    return any(module == f"allseeing.{layer}" or module.startswith(f"allseeing.{layer}.") for layer in layers)


def violations(modules: dict[str, set[str]]) -> list[str]:
    """Every breach of the import rules in ``modules`` (name -> imported names)."""
    found = []
    for module, names in modules.items():
        if in_layer(module, "rec"):
            allowed = {"PIL"} if module == "allseeing.rec.draw" else set()
            extra = third_party(names) - allowed
            outside = {m for m in own(names, modules) if not in_layer(m, "rec")}
            if extra or outside:
                found.append(f"{module}: rec imports {sorted(extra | outside)}")
        if in_layer(module, "eval.metrics") or module == "allseeing.eval.score":
            for dependency in {module} | closure(module, modules):
                if "torch" in third_party(modules[dependency]):
                    found.append(f"{module}: scoring reaches torch through {dependency}")
        if in_layer(module, "eval.metrics"):
            above = {m for m in own(names, modules) if in_layer(m, "eval") and not in_layer(m, "eval.metrics")}
            if above - {"allseeing.eval.errors"}:
                found.append(f"{module}: metrics import {sorted(above - {'allseeing.eval.errors'})}")
        if in_layer(module, "data"):
            bad = {m for m in own(names, modules) if in_layer(m, "model", "train", "eval")}
            if bad:
                found.append(f"{module}: data imports {sorted(bad)}")
        if module == "allseeing.config" and own(names, modules):
            found.append(f"{module}: the config loader imports {sorted(own(names, modules))}")
        if not in_layer(module, "cli", "serve", "__main__"):
            bad = {m for m in own(names, modules) if in_layer(m, "serve", "cli")}
            if bad:
                found.append(f"{module}: imports {sorted(bad)}")
    return found


def test_the_scan_sees_the_package():
    assert "allseeing.rec.parse" in MODULES
    assert "allseeing.rec.tags" in own(MODULES["allseeing.rec.parse"], MODULES)


def test_the_package_follows_the_import_rules():
    assert violations(MODULES) == []


def test_each_rule_catches_a_breach():
    planted = {
        "allseeing.rec.parse": {"numpy"},
        "allseeing.rec.graph": {"allseeing.model.build"},
        "allseeing.model.build": {"torch"},
        "allseeing.eval.metrics.iou": {"allseeing.eval.helpers", "allseeing.eval.errors"},
        "allseeing.eval.helpers": {"allseeing.model.build"},
        "allseeing.eval.errors": set(),
        "allseeing.data.tokenize": {"allseeing.train.recipe"},
        "allseeing.train.recipe": {"allseeing.cli"},
        "allseeing.cli": set(),
        "allseeing.config": {"allseeing.rec"},
        "allseeing.rec": set(),
    }
    assert violations(planted) == [
        "allseeing.rec.parse: rec imports ['numpy']",
        "allseeing.rec.graph: rec imports ['allseeing.model.build']",
        "allseeing.eval.metrics.iou: scoring reaches torch through allseeing.model.build",
        "allseeing.eval.metrics.iou: metrics import ['allseeing.eval.helpers']",
        "allseeing.data.tokenize: data imports ['allseeing.train.recipe']",
        "allseeing.train.recipe: imports ['allseeing.cli']",
        "allseeing.config: the config loader imports ['allseeing.rec']",
    ]
