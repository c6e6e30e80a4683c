"""Only ``toolkit/backends/`` builds runners: every other module asks ``open_runner`` for one.

Read from the package's source (its AST), so a new module that constructs a runner class, or
defines its own runner, fails here.
"""

import ast
from pathlib import Path

import toolkit

PACKAGE = Path(toolkit.__file__).parent
BACKENDS = PACKAGE / "backends"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def base_names(node: ast.ClassDef) -> set:
    return {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases if isinstance(b, (ast.Name, ast.Attribute))}


def runner_classes() -> set:
    """Every class in the package that derives from ``Runner``, directly or not."""
    classes = {node.name: base_names(node) for _, tree in modules()
               for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = {"Runner"}
    while True:
        more = {name for name, bases in classes.items() if bases & found} - found
        if not more:
            return found
        found |= more


def called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def test_no_module_outside_backends_constructs_or_defines_a_runner():
    runners = runner_classes()
    assert {"TorchRunner", "OnnxRuntimeRunner", "TensorRTRunner", "SGBMRunner", "LRCheckRunner"} <= runners
    offences = []
    for path, tree in modules():
        if BACKENDS in path.parents:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called_name(node) in runners:
                offences.append(f"{path.relative_to(PACKAGE)}:{node.lineno} constructs {called_name(node)}")
            if isinstance(node, ast.ClassDef) and base_names(node) & runners:
                offences.append(f"{path.relative_to(PACKAGE)}:{node.lineno} defines runner {node.name}")
    assert not offences, "build runners with toolkit.backends.open_runner(RunnerSpec(...)):\n" + "\n".join(offences)


def test_the_check_sees_a_construction(tmp_path):
    tree = ast.parse("from toolkit.backends.sgbm import SGBMRunner\nrunner = SGBMRunner(max_disp=64)\n")
    calls = [called_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert "SGBMRunner" in calls and "SGBMRunner" in runner_classes()
