"""vizlib's layers, checked on its source: imports only point downwards (core maths <- nn
and data <- evaluation and training <- drawing <- widgets <- exercises and the lesson
setup), and no module imports another module's private (``_name``) name. See the
one-home table of ``shared/DESIGN.md``: a concept lives in one module, and whatever two
modules share is public in that home."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VIZLIB = Path(__file__).resolve().parents[1] / "vizlib"

CORE = (
    "boxes",
    "anchors",
    "nms",
    "losses",
    "metrics",
    "conv_algebra",
    "receptive_field",
    "upsampling",
    "roi",
    "proposals",
    "_checks",
)
LAYER = {
    **dict.fromkeys(CORE, 0),
    "nn": 1,
    "data": 1,
    "evaluate": 2,
    "train": 2,
    "records": 2,
    "viz": 3,
    "display": 3,
    "widgets": 4,
    "exercises": 5,
    "session": 5,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(VIZLIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(line, imported module, imported names) of every ``from vizlib... import`` in a file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target == "vizlib" or target.startswith("vizlib."):
            yield node.lineno, target, [a.name for a in node.names]


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


FILES = sorted(VIZLIB.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(VIZLIB)))
def test_no_private_name_crosses_modules(path):
    here = _module_name(path)
    bad = [
        f"line {line}: {target}.{name}"
        for line, target, names in _imports(path)
        for name in names
        if name.startswith("_")
        and not name.startswith("__")
        and target != here
        and target.rsplit(".", 1)[-1] != here.rsplit(".", 1)[-1]
    ]
    assert not bad, f"{path.name} imports private names of other modules: {bad}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(VIZLIB)))
def test_imports_only_point_downwards(path):
    me = _top(_module_name(path))
    if me not in LAYER:
        return
    bad = [
        f"line {line}: {target}"
        for line, target, _ in _imports(path)
        if _top(target) in LAYER and _top(target) != me and LAYER[_top(target)] > LAYER[me]
    ]
    assert not bad, f"{path.name} ({me}, layer {LAYER[me]}) imports from a higher layer: {bad}"


def test_every_top_level_module_has_a_layer():
    tops = {
        p.stem if p.suffix == ".py" else p.name
        for p in VIZLIB.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__")
        or (p.is_dir() and (p / "__init__.py").is_file())
    }
    assert tops <= set(LAYER), (
        f"give these modules a layer in tests/test_layers.py: {sorted(tops - set(LAYER))}"
    )


def test_the_scan_sees_a_private_import(tmp_path, monkeypatch):
    # the scan itself can fail: a module that imports another's private name is caught
    fake = tmp_path / "vizlib"
    (fake / "nn").mkdir(parents=True)
    (fake / "nn" / "__init__.py").write_text("")
    (fake / "nn" / "bad.py").write_text("from ..boxes import _secret\nfrom ..viz import draw\n")
    monkeypatch.setattr(__import__(__name__), "VIZLIB", fake)
    imports = list(_imports(fake / "nn" / "bad.py"))
    assert imports == [(1, "vizlib.boxes", ["_secret"]), (2, "vizlib.viz", ["draw"])]
    with pytest.raises(AssertionError, match="private"):
        test_no_private_name_crosses_modules(fake / "nn" / "bad.py")
    with pytest.raises(AssertionError, match="higher layer"):
        test_imports_only_point_downwards(fake / "nn" / "bad.py")
