"""What a reader of the repository relies on: the README's tables, and benchmarks that run as it says, without the
tests."""
import ast
import importlib
from pathlib import Path

from outwit.config import ENV
from tests.paths import ROOT


def markdown_table_after(text: str, heading: str) -> list[list[str]]:
    """The rows of the first table under `heading`, as Markdown renders it: a blank line ends a table."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_configuration_table_is_one_table_naming_every_variable():
    rows = markdown_table_after((ROOT / "README.md").read_text(encoding="utf-8"), "## Configuration")
    header, rule, *body = rows
    assert header == ["variable", "default", "meaning"] and set("".join(rule)) <= {"-", " ", ":"}
    named = [row[0].strip("`") for row in body]
    assert sorted(named) == sorted(ENV.values()), "every variable, each once, in the one table"
    assert all(len(row) == 3 and row[2] for row in body)


def imported(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    return modules + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]


def test_benchmarks_and_tests_stand_apart():
    """The benchmarks run without the tests, and the tests without the benchmarks: what both need is in outwit/."""
    for script in (ROOT / "bench").glob("*.py"):
        assert not [m for m in imported(script) if m == "tests" or m.startswith("tests.")], script.name
    for test in (ROOT / "tests").rglob("*.py"):
        assert not [m for m in imported(test) if m == "bench" or m.startswith("bench.")], test.name


def test_each_benchmark_is_a_module_run_as_the_readme_says():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for script in sorted((ROOT / "bench").glob("*.py")):
        if script.stem == "__init__":
            continue
        text = script.read_text(encoding="utf-8")
        assert "sys.path" not in text, f"{script.name} edits sys.path"
        assert f"python -m bench.{script.stem}" in text and f"python -m bench.{script.stem}" in readme, script.name
        module = importlib.import_module(f"bench.{script.stem}")
        assert callable(module.main)
