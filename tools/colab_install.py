"""The one Colab install block, written into every notebook, pinned to this release.

Every notebook of the book (``book/``, ``lessons/``, ``masters/``) starts with a code cell
that, in Colab only, installs the vizlib release the book was made with::

    if "google.colab" in sys.modules:  # Colab lacks vizlib: the release this book was made with
        %pip install -q "vizlib==X.Y.Z"
        try:
            import vizlib  # noqa: F401
        except ImportError:  # not on the package index: the repository at the release's tag
            %pip install -q "vizlib @ git+<repository.url>@vX.Y.Z"

``X.Y.Z`` is ``vizlib.__version__`` and ``<repository.url>`` the address in ``_config.yml``,
their one home each. After a version bump or in a fork, rewrite every block::

    .venv/bin/python tools/colab_install.py          # or: make pin
    .venv/bin/python tools/colab_install.py --check  # exit 1 if a block differs

Only the lines indented under the guard change; a record's source hash ignores them
(``vizlib.records.source_hash``), so a release does not make recorded runs stale.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARD = 'if "google.colab" in sys.modules:'
FOLDERS = ("book", "lessons", "masters")


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` of ``_config.yml``, without a trailing slash."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"].rstrip("/")


def vizlib_version(root: Path = ROOT) -> str:
    """``vizlib.__version__``, read from the source (importing vizlib would import torch)."""
    tree = ast.parse((root / "vizlib" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise ValueError("vizlib/__init__.py sets no __version__")


def install_block(url: str, version: str) -> str:
    """The guard and the lines under it, newline-ended."""
    return (
        f"{GUARD}  # Colab lacks vizlib: the release this book was made with\n"
        f'    %pip install -q "vizlib=={version}"\n'
        "    try:\n"
        "        import vizlib  # noqa: F401\n"
        "    except ImportError:  # not on the package index: the repository at the release's tag\n"
        f'        %pip install -q "vizlib @ git+{url}@v{version}"\n'
    )


def with_block(source: str, block: str) -> str:
    """``source`` with its guarded install block (the guard line and every line indented
    under it) replaced by ``block``; unchanged when it has no guard."""
    lines = source.splitlines(keepends=True)
    for start, line in enumerate(lines):
        if line.startswith(GUARD):
            end = start + 1
            while end < len(lines) and lines[end][:1] in (" ", "\t"):
                end += 1
            return "".join(lines[:start]) + block + "".join(lines[end:])
    return source


def notebooks(root: Path = ROOT) -> list[Path]:
    """Every notebook of the book, checkpoints excluded, sorted."""
    return sorted(
        p
        for folder in FOLDERS
        for p in (root / folder).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and "checkpoints" not in p.parts
    )


def first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb["cells"] if c.get("cell_type") == "code"), None)


def _rewritten(path: Path, block: str) -> str | None:
    """The notebook's new text, or None when its block is already ``block`` or it has none."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    cell = first_code_cell(nb)
    if cell is None:
        return None
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    new = with_block(source, block)
    if new == source:
        return None
    # nbformat's own layout (one string per line, indent 1), so the diff is the block only
    cell["source"] = new.splitlines(keepends=True)
    out = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return out


def stale(root: Path = ROOT) -> list[Path]:
    """The notebooks whose install block differs from this release's."""
    block = install_block(repository_url(root), vizlib_version(root))
    return [p for p in notebooks(root) if _rewritten(p, block) is not None]


def rewrite(root: Path = ROOT) -> list[Path]:
    """Rewrite every notebook's install block for this release; returns those changed."""
    block = install_block(repository_url(root), vizlib_version(root))
    changed = []
    for path in notebooks(root):
        text = _rewritten(path, block)
        if text is not None:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    paths = stale() if args.check else rewrite()
    for path in paths:
        print(f"{'stale' if args.check else 'rewrote'}: {path.relative_to(ROOT)}")
    if args.check and paths:
        print("run: .venv/bin/python tools/colab_install.py (make pin)")
    return 1 if args.check and paths else 0


if __name__ == "__main__":
    sys.exit(main())
