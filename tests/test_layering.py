"""Imports run one way: domain → resources → assets → orchestration (docs/architecture.md, "Layout").

Every import counts, also one inside a function: a lazy import is still a dependency, only a later one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("domain", "resources", "assets", "orchestration")
ALLOWED = {
    "domain": {"domain"},
    "resources": {"domain", "resources"},
    "assets": {"domain", "resources", "assets"},
    "orchestration": set(LAYERS),
}
ASSET_STAGES = ("ingestion", "features", "modeling", "scoring", "monitoring", "governance", "warehouse")
ENVIRONMENT_NAMES = {"environ", "getenv", "environb", "getenvb"}


def modules() -> dict[str, ast.Module]:
    found = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


MODULES = modules()


def imported(module: str, tree: ast.Module) -> set[str]:
    """Project modules `module` imports, anywhere in its body (relative imports resolved)."""
    package = module.split(".") if module in {m.rsplit(".", 1)[0] for m in MODULES} else module.split(".")[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            names.add(target)
            # `from assets.modeling import training` imports the module assets.modeling.training
            names.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and (
                    (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                    or (isinstance(node.func, ast.Name) and node.func.id == "__import__")):
            names.add(node.args[0].value)  # importlib.import_module("...") and __import__("...") by name
    return {name for name in names if name.split(".")[0] in LAYERS}


def stage(module: str) -> str:
    """`assets.<stage>` for a module of an asset stage; `assets` for the shared base modules beside them."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[1] in ASSET_STAGES else parts[0]


def run_at_import(tree: ast.Module) -> Iterator[ast.AST]:
    """Nodes evaluated when the module is imported: everything but function (and lambda) bodies. Decorators,
    default values and class bodies run at import, so they are included."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            pending.extend([*node.decorator_list, *node.args.defaults, *node.args.kw_defaults])
            pending.extend(a.annotation for a in (*node.args.args, *node.args.kwonlyargs) if a.annotation)
        elif isinstance(node, ast.Lambda):
            pending.extend([*node.args.defaults, *node.args.kw_defaults])
        else:
            pending.extend(child for child in ast.iter_child_nodes(node) if child is not None)


def reads_environment(tree: ast.Module) -> list[int]:
    """Lines that read the environment at import: `os.environ`/`os.getenv`, or those names imported from os."""
    from_os = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "os" for alias in node.names if alias.name in ENVIRONMENT_NAMES}
    lines = []
    for node in run_at_import(tree):
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES and isinstance(node.value, ast.Name)
                and node.value.id == "os") or (isinstance(node, ast.Name) and node.id in from_os):
            lines.append(node.lineno)
    return sorted(lines)


def import_graph(of: dict[str, ast.Module]) -> dict[str, set[str]]:
    return {module: imported(module, tree) for module, tree in of.items()}


def stage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    stages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module.startswith("assets"):
            stages.setdefault(stage(module), set()).update(
                stage(t) for t in targets if t.startswith("assets") and stage(t) != stage(module))
    return stages


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each node that lies on one (depth-first search)."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node, [node])
    return found


GRAPH = import_graph(MODULES)


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_the_layers_below_it(layer):
    upward = sorted(f"{module} imports {target}" for module, targets in GRAPH.items() if module.split(".")[0] == layer
                    for target in targets if target.split(".")[0] not in ALLOWED[layer])
    assert upward == [], f"{layer} may import only {sorted(ALLOWED[layer])}"


def test_nothing_below_orchestration_reads_the_environment_at_import():
    found = [f"{module}:{line}" for module, tree in MODULES.items() if module.split(".")[0] != "orchestration"
             for line in reads_environment(tree)]
    assert found == [], "read the environment inside a function (domain/settings.py), not when the module loads"


def test_asset_stages_do_not_import_each_other_in_a_cycle():
    found = cycles(stage_graph(GRAPH))
    assert found == [], "asset stages import each other in a cycle: " + "; ".join(" → ".join(c) for c in found)


def test_shared_asset_modules_import_no_stage():
    base = sorted(f"{module} imports {target}" for module, targets in GRAPH.items() if stage(module) == "assets"
                  for target in targets if target.startswith("assets") and stage(target) != "assets")
    assert base == [], "assets/*.py are the base every stage may use: they import no stage"


def test_the_checks_see_what_they_look_for():
    """The rules above pass vacuously if the parser misses imports; these small modules prove it does not."""
    sample = {
        "assets.modeling.m": ast.parse("def f():\n    from assets.monitoring.x import y\n"),
        "assets.monitoring.x": ast.parse("from ..modeling import m\nimport os\nKEY = os.environ.get('A')\n"),
        "resources.r": ast.parse("import os\ndef f(key=os.getenv('B')):\n    return os.environ['C']\n"),
        "domain.d": ast.parse("import importlib\ndef f():\n    importlib.import_module('orchestration.e')\n"
                              "    return __import__('assets.x')\n"),
    }
    graph = import_graph(sample)
    assert graph["domain.d"] == {"orchestration.e", "assets.x"}
    assert graph["assets.modeling.m"] == {"assets.monitoring.x"}
    assert graph["assets.monitoring.x"] == {"assets.modeling"}
    assert cycles(stage_graph(graph)) == [["assets.modeling", "assets.monitoring", "assets.modeling"]]
    assert reads_environment(sample["assets.monitoring.x"]) == [3]
    assert reads_environment(sample["resources.r"]) == [2]  # a default value runs at import; the body does not
