"""Every notebook can launch in Colab: its first code cell installs the vizlib release the
book was made with (tools/colab_install.py writes that block from vizlib.__version__ and
the one repository URL in _config.yml), and it carries a Python 3 kernelspec."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("colab_install", ROOT / "tools" / "colab_install.py")
colab_install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_install)
NOTEBOOKS = sorted(
    p
    for d in ("book", "lessons", "masters")
    for p in (ROOT / d).rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts
)


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def first_code_cell(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            return "".join(cell["source"])
    return ""


def test_config_names_one_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = repository_url()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    # the theme and the launch buttons read it from `repository:`; no second copy
    assert "html_theme_options" not in config["sphinx"]["config"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_installs_vizlib_in_colab(path):
    source = first_code_cell(path)
    if "import vizlib" not in source and "from vizlib" not in source:
        pytest.skip("this notebook does not use vizlib in its first cell")
    assert '"google.colab" in sys.modules' in source, "the Colab install must be guarded"
    block = colab_install.install_block(repository_url(), colab_install.vizlib_version())
    assert block in source, (
        "the Colab install must be this release's block (vizlib.__version__, the repository "
        "URL of _config.yml): run .venv/bin/python tools/colab_install.py (make pin)"
    )


class _RecordingShell:
    """IPython's shell as the block's code uses it: a `%pip` line is recorded, not run."""

    def __init__(self):
        self.lines = []

    def run_line_magic(self, name, line):
        self.lines.append(f"{name} {line}")


def test_install_block_is_pinned_and_falls_back_to_the_release_tag():
    """The block's code as IPython runs it: pip from the index first; the repository at the
    release's tag only when vizlib still does not import (not on the index)."""
    from IPython.core.inputtransformer2 import TransformerManager

    url, version = "https://github.com/someone/book", "1.2.3"
    code = TransformerManager().transform_cell(
        "import sys\n\n" + colab_install.install_block(url, version)
    )
    for importable in (True, False):
        shell = _RecordingShell()
        saved = {k: sys.modules.get(k) for k in ("google.colab", "vizlib")}
        sys.modules["google.colab"] = types.ModuleType("google.colab")
        # installed (a stand-in: only the block's flow is tested), or not: import raises
        sys.modules["vizlib"] = types.ModuleType("vizlib") if importable else None
        try:
            exec(code, {"get_ipython": lambda shell=shell: shell})
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        pip = shell.lines
        first = 'pip install -q "vizlib==1.2.3"'
        fallback = f'pip install -q "vizlib @ git+{url}@v1.2.3"'
        assert pip == ([first] if importable else [first, fallback])


def test_install_block_rewrite_touches_the_block_only(tmp_path):
    old = (
        'import sys\n\nif "google.colab" in sys.modules:  # old\n    %pip install vizlib\n\nx = 1\n'
    )
    block = colab_install.install_block("https://github.com/a/b", "0.9.0")
    new = colab_install.with_block(old, block)
    assert new == "import sys\n\n" + block + "\nx = 1\n"
    assert colab_install.with_block(new, block) == new
    assert colab_install.with_block("x = 1\n", block) == "x = 1\n"


def test_how_to_use_shows_this_releases_install_block():
    page = (ROOT / "book" / "how_to_use.md").read_text(encoding="utf-8")
    block = colab_install.install_block(repository_url(), colab_install.vizlib_version())
    assert block in page, "book/how_to_use.md shows another setup cell than the notebooks'"


def test_every_notebook_has_this_releases_install_block():
    stale = colab_install.stale(ROOT)
    assert not stale, "run .venv/bin/python tools/colab_install.py (make pin): " + ", ".join(
        str(p.relative_to(ROOT)) for p in stale
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_kernelspec_is_python3(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb.get("metadata", {}).get("kernelspec", {}).get("name") == "python3"
