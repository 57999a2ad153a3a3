"""The package layout: dependencies point one way (no upward import) and there is no import
cycle. Read from the source with ``ast`` (nothing is imported), including imports inside
functions; imports under ``if TYPE_CHECKING:`` are for type hints only and are skipped."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "i2s"

# Lowest first. A module may import from its own package and from lower layers only;
# packages in one layer are independent of each other.
LAYERS = [
    ["_version", "errors"],
    ["provenance", "resources", "progress"],
    ["media"],
    ["ops"],
    ["models"],
    ["get3d"],
    ["weights", "faces"],
    ["embedding", "edits", "demo", "directions"],
    ["embedding3d"],  # takes the 2D perceptual loss from embedding
    ["experiments", "dataset"],
    ["web"],
    ["cli"],
    ["__main__"],  # python -m i2s (and torchrun -m i2s): the command line
    [""],  # i2s/__init__.py: the public API
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """``i2s.models.stylegan2`` -> ``models``; ``i2s.errors`` -> ``errors``; ``i2s`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, module: str) -> set[str]:
    """The i2s modules (or packages) a source file imports at run time."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for block in ast.walk(tree) if _type_checking_block(block)
               for n in ast.walk(block)}
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "i2s"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "i2s":
                continue
            # `from i2s.experiments import affine` names submodules: the package's
            # __init__ is only run first, as for any submodule import
            subs = {f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")}
            found |= subs
            if len(subs) < len(node.names):
                found.add(target)
    return found


def _is_module(name: str) -> bool:
    p = SRC.parent / name.replace(".", "/")
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def import_graph() -> dict[str, set[str]]:
    """module -> the i2s modules it imports (a package import counts as its __init__)."""
    graph = {}
    for path in SRC.rglob("*.py"):
        module = module_name(path)
        graph[module] = imports_of(path, module) - {module}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        here = package_of(module)
        for t in targets:
            there = package_of(t)
            if there != here and RANK[there] >= RANK[here]:
                bad.append(f"{module} -> {t}")
    return sorted(bad)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in import_graph()}
    assert packages <= set(RANK), sorted(packages - set(RANK))


def test_no_upward_import():
    assert upward_imports(import_graph()) == []


def test_models_never_import_weights():
    graph = import_graph()
    assert not [f"{m} -> {t}" for m, ts in graph.items() if package_of(m) == "models"
                for t in ts if package_of(t) == "weights"]


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("graph,upward,cycle", [
    ({"i2s.models.a": {"i2s.weights.load"}, "i2s.weights.load": set()}, 1, False),
    ({"i2s.ops.a": {"i2s.ops.b"}, "i2s.ops.b": {"i2s.ops.a"}}, 0, True),
    ({"i2s.faces.a": {"i2s.weights.b"}, "i2s.weights.b": set()}, 1, False),  # same layer
    ({"i2s.cli.a": {"i2s.models.b", "i2s"}, "i2s.models.b": set(), "i2s": set()}, 1, False),
    ({"i2s.embedding.a": {"i2s.models.b"}, "i2s.models.b": set()}, 0, False),
])
def test_the_checks_catch_planted_mistakes(graph, upward, cycle):
    assert len(upward_imports(graph)) == upward
    assert (find_cycle(graph) is not None) == cycle
