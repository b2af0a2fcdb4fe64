"""The house in layers, read from the imports: each layer of `outwit/` imports only from the layers below it, there is
no circle, the entry points stay thin and nothing imports them, and every file reads in one sitting."""
import ast
from graphlib import CycleError, TopologicalSorter

import pytest

from tests.paths import ROOT

# From the bottom up; a module may import from its own layer and those below. `model.py` (the networks, published
# beside each model) is below them all.
LAYERS = [("outwit.config", "outwit.storage", "outwit.text"), ("outwit.ml",), ("outwit.dadc",), ("outwit.hub",),
          ("outwit.services",), ("outwit.ui",), ("outwit.sim",), ("outwit.cli", "outwit.round_runner")]
ENTRY_POINTS = ("app", "trainer", "flagging")
NOT_IN = {"outwit.ml": ("gradio", "huggingface_hub"), "outwit.dadc": ("gradio", "huggingface_hub"),
          "outwit.hub": ("gradio",), "outwit.services": ("gradio",)}


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path) -> set[str]:
    """Every module a file imports, as written (`from outwit.ml import data` counts as outwit.ml.data)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def layer(name: str) -> int | None:
    for number, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return number
    return None


def package_files():
    return sorted((ROOT / "outwit").rglob("*.py"))


def test_each_layer_imports_only_from_the_layers_below_it():
    upward = []
    for path in package_files():
        mine = layer(module_name(path))
        for name in imports(path):
            theirs = layer(name)
            if theirs is not None and theirs > mine:
                upward.append(f"{module_name(path)} -> {name}")
            if name.split(".")[0] in ENTRY_POINTS:
                upward.append(f"{module_name(path)} -> {name} (an entry point)")
    assert not upward


@pytest.mark.parametrize("package, banned", sorted(NOT_IN.items()))
def test_the_lower_layers_need_no_page_and_no_hub(package, banned):
    for path in package_files():
        if module_name(path).startswith(package):
            used = {name.split(".")[0] for name in imports(path)}
            assert not used & set(banned), f"{module_name(path)} imports {used & set(banned)}"


def test_no_module_of_the_package_imports_itself_round_in_a_circle():
    modules = {module_name(path): path for path in package_files()}
    graph = {name: {i for i in imports(path) if i in modules and i != name} for name, path in modules.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        pytest.fail(f"an import circle: {' -> '.join(err.args[1])}")


def test_nothing_imports_trainer_py_and_the_entry_points_stay_thin():
    everything = [*package_files(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py"),
                  *[ROOT / f"{name}.py" for name in ENTRY_POINTS]]
    assert not [str(p) for p in everything if "trainer" in {name.split(".")[0] for name in imports(p)}]
    assert len((ROOT / "app.py").read_text(encoding="utf-8").splitlines()) < 80


def test_every_file_reads_in_one_sitting():
    sources = [*ROOT.glob("*.py"), *package_files(), *(ROOT / "outwit").rglob("*.js"),
               *(ROOT / "outwit").rglob("*.css"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")]
    lines = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in sources}
    assert not {name: n for name, n in lines.items() if n > 300}
