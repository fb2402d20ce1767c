"""The layers of ``suite`` import one way (docs/architecture.md): no module imports one of a
later layer, no command imports another, there is no import cycle, and an import inside a
function says beside it why it is there (``# lazy: ...``: it keeps TensorFlow, JAX or
matplotlib from loading where they are not needed).

Read from the source with ``ast``; nothing is imported.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parent.parent
LAYERS = ("core", "data", "weights", "models", "analysis", "training", "callbacks", "config", "workflows", "api",
          "commands")
FOLDERS = {"suite": REPO / "suite", "suite.models": REPO / "models", "suite.callbacks": REPO / "callbacks"}
COMMANDS = ("train", "evaluate", "predict", "visualize", "export", "compare", "results")
HEAVY = ("tensorflow", "keras", "jax", "matplotlib", "torch")


def module_name(path):
    for package, folder in sorted(FOLDERS.items(), key=lambda kv: -len(str(kv[1]))):
        if path.is_relative_to(folder):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            return ".".join((package, *parts))
    raise AssertionError(path)


def library_files():
    files = [p for folder in FOLDERS.values() for p in folder.rglob("*.py")]
    return [p for p in files if p.name != "__main__.py" and "__pycache__" not in p.parts]


MODULES = {module_name(p): p for p in library_files()}


def layer(module):
    parts = module.split(".")
    if len(parts) == 1:
        return None  # suite/__init__.py
    return LAYERS.index(parts[1])


def target(node, module, is_package):
    """The suite modules an import names (``from suite.x import y`` names suite.x.y if that
    is a module, else suite.x)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def imports(path):
    """``[(imported module, line, inside a function)]`` of one file."""
    module = module_name(path) if path in MODULES.values() else path.stem
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in target(child, module, path.name == "__init__.py"):
                    found.append((name, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def suite_imports(path):
    return [(name, line, inner) for name, line, inner in imports(path) if name.split(".")[0] == "suite"]


def resolve(name):
    """The module an imported name lives in: the longest prefix that is a module."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def test_every_layer_is_a_folder_and_every_module_has_a_layer():
    assert [l for l in LAYERS if resolve(f"suite.{l}") != f"suite.{l}"] == []
    assert [m for m in MODULES if m != "suite" and m.split(".")[1] not in LAYERS] == []


def test_no_module_imports_a_later_layer():
    upward = []
    for module, path in MODULES.items():
        for name, line, _ in suite_imports(path):
            there = resolve(name)
            if module != "suite" and layer(there) is not None and layer(there) > layer(module):
                upward.append(f"{path.relative_to(REPO)}:{line} imports {there}")
    assert upward == []


def test_there_is_no_import_cycle():
    graph = {m: {resolve(n) for n, _, _ in suite_imports(p)} - {m} for m, p in MODULES.items()}
    # a package may import its own modules (suite.models registers its families); a module
    # that imports its own package back would close a cycle and is caught below
    for m in graph:
        graph[m] = {n for n in graph[m] if not (n.startswith(m + ".") and MODULES[m].name == "__init__.py")}
    state, cycles = {}, []

    def walk(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                walk(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    assert cycles == []


def test_imports_inside_functions_say_why():
    unexplained = []
    for path in [*MODULES.values(), *(REPO / f"{c}.py" for c in COMMANDS)]:
        lines = path.read_text().splitlines()
        for name, line, inner in imports(path):
            ours_or_heavy = name.split(".")[0] in ("suite", *HEAVY)
            if inner and ours_or_heavy and "# lazy:" not in lines[line - 1] + lines[line - 2]:
                unexplained.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert unexplained == []


def test_commands_are_thin_and_import_no_other_command():
    for name in COMMANDS:
        script = REPO / f"{name}.py"
        assert [n for n, _, _ in imports(script) if n.split(".")[0] == "suite"] == [f"suite.commands.{name}"]
    for module, path in MODULES.items():
        if module.startswith("suite.commands."):
            others = [n for n, _, _ in suite_imports(path) if resolve(n).startswith("suite.commands.")]
            assert others == [], f"{module} imports {others}"
            functions = [n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)]
            assert functions == ["parse_args", "main"], module
        else:
            top_level = {n.split(".")[0] for n, _, _ in imports(path)}
            assert not top_level & {*COMMANDS, "models", "callbacks"}, f"{module} imports {top_level & {*COMMANDS}}"


def test_one_did_you_mean():
    users = [p.relative_to(REPO) for p in MODULES.values() if "get_close_matches" in p.read_text()]
    assert [str(p) for p in users] == ["suite/core/registry.py"]


def test_installed_as_one_package_with_a_console_script_per_command():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    assert "py-modules" not in setuptools
    assert {p.split(".")[0] for p in setuptools["packages"]} == {"suite"}
    code = [p for p in setuptools["packages"] if not p.startswith("suite.shipped.")]
    assert sorted(code) == sorted(m for m, p in MODULES.items() if p.name == "__init__.py")
    # the shipped files travel as package data (suite.core.paths finds them)
    shipped = {p: setuptools["package-dir"][p] for p in setuptools["packages"] if p.startswith("suite.shipped.")}
    assert shipped == {"suite.shipped.configs": "configs", "suite.shipped.weights": "weights",
                       "suite.shipped.data": "data"}
    assert set(setuptools["package-data"]) == set(shipped)
    scripts = project["project"]["scripts"]
    assert scripts == {f"cifar10-{name}": f"suite.commands.{name}:main" for name in (*COMMANDS, "models")}
