"""The shop app imports neither gdpr nor feeds, and its modules import each other one way only."""

from __future__ import annotations

import ast
from pathlib import Path

import shop

SHOP = Path(shop.__file__).parent


def shop_imports() -> dict[str, set[str]]:
    """Every shop module (migrations aside) and the modules it imports, anywhere in its code."""
    found: dict[str, set[str]] = {}
    for path in SHOP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(("shop", *path.relative_to(SHOP).with_suffix("").parts)).removesuffix(".__init__")
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        found[name] = imported
    return found


def test_shop_imports_neither_gdpr_nor_feeds():
    outward = {
        (module, name)
        for module, names in shop_imports().items()
        for name in names
        if name.split(".")[0] in ("gdpr", "feeds", "clerk", "clerkfeeds")
    }
    assert not outward


def test_no_import_circle_inside_shop():
    imports = shop_imports()
    edges = {module: {n for n in names if n in imports and n != module} for module, names in imports.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            for nxt in edges[module] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    assert not [module for module in imports if reaches(module, module)]
