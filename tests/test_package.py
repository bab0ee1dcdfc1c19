"""The package's shape: short modules, data flowing one way, no module reaching into another's private names."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ebmlib"
# The flow of data: a module may import only the modules before it (README, "The library").
FLOW = ["_runtime", "_checks", "_files", "toy", "cifar10", "digits", "images", "nets", "losses", "checkpoint", "distributed",
        "train", "train_images", "energy", "mcmc", "ebm", "transport", "samplers", "wasserstein", "metrics", "features", "plot"]
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def imports_of(path):
    """(module imported from the package, names taken from it) for every relative import in ``path``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = path.parent if node.level == 1 else path.parent.parent
            if node.module is None:  # from . import a, b
                for alias in node.names:
                    yield (base / alias.name).relative_to(PACKAGE).as_posix(), None
            else:
                yield (base / node.module.replace(".", "/")).relative_to(PACKAGE).as_posix(), \
                    [alias.name for alias in node.names]


def test_the_flow_lists_every_core_module():
    core = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert core == set(FLOW)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_modules_are_short(path):
    assert len(path.read_text().splitlines()) <= 450


@pytest.mark.parametrize("name", FLOW)
def test_a_module_imports_only_modules_before_it(name):
    for module, _ in imports_of(PACKAGE / f"{name}.py"):
        assert module != ".", f"{name} imports from ebmlib/__init__"
        assert module in FLOW and FLOW.index(module) < FLOW.index(name), f"{name} imports {module}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_takes_another_modules_private_names(path):
    for module, names in imports_of(path):
        private = [n for n in names or () if n.startswith("_")]
        assert not private, f"{path.name} imports {private} from {module}"
