"""Every notebook can launch in Colab: its first code cell installs what Colab lacks from
the one repository URL in _config.yml, and it carries a Python 3 kernelspec."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
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
    assert f"git+{repository_url()}" in source, (
        f"the Colab install must use the repository URL of _config.yml ({repository_url()})"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_kernelspec_is_python3(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb.get("metadata", {}).get("kernelspec", {}).get("name") == "python3"
