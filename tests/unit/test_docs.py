"""What a reader of the repository relies on: the README's tables, and benchmarks that run without the tests."""
import ast

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


def test_benchmarks_do_not_import_the_test_package():
    for script in (ROOT / "bench").glob("*.py"):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        modules += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [m for m in modules if m == "tests" or m.startswith("tests.")], script.name
