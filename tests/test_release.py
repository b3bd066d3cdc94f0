"""Publishing (issue 16): one repository address and one vizlib version everywhere; vizlib
builds as a wheel and an sdist that install into a fresh virtual environment and import
with its declared runtime dependencies only; the student version of a book page runs there
on its Colab path; the workflows pass actionlint.

The fresh environments cost no download: a venv without pip gets the built wheel (installed
by this interpreter's pip) and, for each distribution it needs, symlinks to that
distribution's files in the test environment. Only the wheel's declared dependencies (and
theirs) are linked, so an import of anything undeclared fails there as it would in a
reader's environment; the Colab environment adds what a Colab runtime has itself (its
kernel, ipykernel) and nothing else.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import vizlib

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"

# GitHub repositories that the book may name besides its own (cited code, say). None yet:
# any other address in a published file is a leftover of a move or a fork.
CITED_REPOSITORIES: set[str] = set()

# What a reader's environment must not need: the test, book and grading tooling.
TOOLING = [
    "pytest",
    "jupyter_book",
    "sphinx",
    "myst_nb",
    "nbformat",
    "nbclient",
    "nbval",
    "hypothesis",
    "playwright",
    "yaml",
    "build",
    "ruff",
]
# vizlib modules that are the instructors' tools: they need the `grade` extra, not the
# runtime dependencies (see vizlib/exercises/__init__.py).
INSTRUCTOR_MODULES = {
    "vizlib.exercises.grade",
    "vizlib.exercises.sandbox",
    "vizlib.exercises._worker",
    "vizlib.exercises.student",
    "vizlib.exercises.notebooks",
}
# A Colab runtime ships these itself (the kernel that runs the notebook); everything else
# the page needs must come from the wheel's declared dependencies.
COLAB_PREINSTALLED = ["ipykernel"]
# The smallest page in book/ that has a student version (masters/book/ holds its master):
# box area and IoU as exercises, their check cells, and vizlib's own IoU.
COLAB_PAGE = "book/exercises.ipynb"
# and the lesson that runs fastest in the smoke profile (a CNN that regresses one box per
# image: data, model, training, evaluation and exercises, as every chapter has them).
COLAB_LESSON = "lessons/localisation.ipynb"


# -- one address, one version ------------------------------------------------------------


def repository_url() -> str:
    """The book's repository address: ``repository.url`` in ``_config.yml``, its one home."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"].rstrip("/")


def pages_url(url: str) -> str:
    """Where GitHub Pages publishes the book of the repository ``url``."""
    owner, repo = url.split("/")[-2:]
    return f"https://{owner.lower()}.github.io/{repo}/"


_REPOSITORY = re.compile(r"(?:github|gitlab)\.com/([\w.-]+)/([\w.-]+)", re.IGNORECASE)
_PAGES = re.compile(r"([\w-]+)\.github\.io/([\w.-]+)", re.IGNORECASE)
_VERSIONS = [
    re.compile(r"\bvizlib\s*(?:===|==|~=|>=|<=|!=)\s*v?(\d+(?:\.\d+)+[\w.]*)", re.IGNORECASE),
    re.compile(
        r"\bvizlib-(\d+(?:\.\d+)+)(?=[-.][A-Za-z])"
    ),  # vizlib-0.1.0.tar.gz, -py3-none-any.whl
    re.compile(r"\bvizlib\s*@\s*git\+\S+?@v?(\d+(?:\.\d+)+)", re.IGNORECASE),  # a tag
    re.compile(r"\bvizlib\s+v(\d+(?:\.\d+)+)", re.IGNORECASE),
]


def _repo_key(owner: str, name: str) -> str:
    name = name.rstrip(".")
    name = name[:-4] if name.lower().endswith(".git") else name
    return f"{owner}/{name}".lower()


def other_addresses(text: str, url: str) -> list[str]:
    """Repository or Pages addresses in ``text`` that are not the repository ``url``'s."""
    ours = _repo_key(*url.split("/")[-2:])
    found = [
        m.group(0)
        for m in _REPOSITORY.finditer(text)
        if _repo_key(m.group(1), m.group(2)) not in {ours} | CITED_REPOSITORIES
    ]
    found += [
        m.group(0) for m in _PAGES.finditer(text) if _repo_key(m.group(1), m.group(2)) != ours
    ]
    return found


def other_versions(text: str, version: str) -> list[str]:
    """Versions of vizlib named in ``text`` (pins, file names, tags) other than ``version``."""
    return [
        m.group(0) for pattern in _VERSIONS for m in pattern.finditer(text) if m.group(1) != version
    ]


def published_texts() -> list[tuple[str, str]]:
    """(path, text) of every file a reader sees or a release runs, less ``_config.yml``:
    notebooks' cell sources (book/, lessons/, masters/), pages, READMEs, workflows and the
    package's own files."""
    texts = []
    for folder in ("book", "lessons", "masters"):
        for path in sorted((ROOT / folder).rglob("*")):
            if ".ipynb_checkpoints" in path.parts or "checkpoints" in path.parts:
                continue
            rel = str(path.relative_to(ROOT))
            if path.suffix == ".ipynb":
                cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
                texts.append((rel, "\n".join("".join(c["source"]) for c in cells)))
            elif path.suffix == ".md":
                texts.append((rel, path.read_text(encoding="utf-8")))
    names = ["README.md", "pyproject.toml", "requirements.txt", "Makefile", ".ci/run"]
    files = [ROOT / n for n in names] + sorted(WORKFLOWS.glob("*.y*ml"))
    texts += [
        (str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in files if p.exists()
    ]
    return texts


def test_scanners_find_another_address_and_another_version():
    url = "https://github.com/seeing-objects/seeing-objects"
    ours = '%pip install "vizlib @ git+https://github.com/seeing-objects/seeing-objects.git"'
    assert other_addresses(ours, url) == []
    assert other_addresses("see https://seeing-objects.github.io/seeing-objects/", url) == []
    fork = '%pip install "vizlib @ git+https://github.com/someone/seeing-objects"'
    assert other_addresses(fork, url) == ["github.com/someone/seeing-objects"]
    assert other_addresses("https://someone.github.io/seeing-objects/", url)
    assert other_versions("pip install vizlib==1.2.3 and vizlib>=1.2.3", "1.2.3") == []
    assert other_versions("pip install vizlib==0.0.9", "1.2.3") == ["vizlib==0.0.9"]
    assert other_versions("dist/vizlib-0.0.9-py3-none-any.whl", "1.2.3")
    assert other_versions("dist/vizlib-0.0.9.tar.gz", "1.2.3")
    assert other_versions("vizlib @ git+https://github.com/a/b@v0.0.9", "1.2.3")
    assert other_versions("vizlib @ git+https://github.com/a/b@v1.2.3", "1.2.3") == []


def test_every_published_file_names_the_one_repository_and_version():
    url, version = repository_url(), vizlib.__version__
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    problems = []
    for path, text in published_texts():
        problems += [f"{path}: {a} (not {url})" for a in other_addresses(text, url)]
        problems += [f"{path}: {v} (not vizlib {version})" for v in other_versions(text, version)]
    assert not problems, (
        "the repository address lives in _config.yml (repository.url) and the version in "
        "vizlib.__version__; these name others:\n" + "\n".join(problems)
    )


def test_version_is_read_from_vizlib():
    project = tomllib_load(ROOT / "pyproject.toml")
    assert "version" not in project["project"], "the version lives in vizlib.__version__"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vizlib.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", vizlib.__version__), vizlib.__version__


def test_readme_says_where_the_book_lives_and_how_a_fork_moves_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert pages_url(repository_url()) in readme, "the README names where the book is published"
    assert "repository.url" in readme and "_config.yml" in readme, (
        "the README says how a fork changes the address (repository.url in _config.yml)"
    )


def tomllib_load(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8"))


# -- the workflows -------------------------------------------------------------------------


def workflow(name: str) -> dict:
    path = WORKFLOWS / name
    assert path.exists(), f"{path.relative_to(ROOT)} is missing"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_workflows_pass_actionlint(require):
    here = str(Path(sys.executable).parent)
    actionlint = shutil.which("actionlint", path=here) or shutil.which("actionlint")
    if actionlint is None:
        require(
            "actionlint is not installed",
            "install the test extra (pip install -e .[test]): it carries the binary",
        )
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert files, "no workflows in .github/workflows"
    result = subprocess.run(
        [actionlint, "-no-color", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _run_commands(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job.get("steps", []) if "uses" in step]


def test_book_workflow_runs_the_readme_commands_and_deploys_to_pages():
    wf = workflow("book.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    runs = _run_commands(build)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("make book", "make test"):
        assert command in readme and command in runs, command
    assert runs.index("make book") < runs.index("make test")
    upload = next(
        s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact")
    )
    assert upload["with"]["path"] == "_build/html"
    assert "actions/deploy-pages" in _uses(deploy)
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"


def test_release_workflow_publishes_on_a_version_tag_with_trusted_publishing():
    wf = workflow("release.yml")
    assert wf["on"]["push"]["tags"] == ["v*"]
    text = (WORKFLOWS / "release.yml").read_text(encoding="utf-8")
    assert "python -m build" in text
    publish = next(
        job for job in wf["jobs"].values() if "pypa/gh-action-pypi-publish" in _uses(job)
    )
    assert publish["permissions"]["id-token"] == "write", "trusted publishing needs id-token"
    assert "secrets." not in text and "password" not in text, "no stored token"
    assert "__version__" in text, "the tag is checked against vizlib.__version__"
    build = _run_commands(wf["jobs"]["build"])
    assert build.index("tools/colab_install.py --check") < build.index("python -m build"), (
        "a release checks that every notebook installs it before publishing"
    )


# -- vizlib as a package -------------------------------------------------------------------


@pytest.fixture(scope="module")
def dist(tmp_path_factory, require) -> Path:
    """``python -m build`` on a copy of the package's files: an sdist, then a wheel built
    from that sdist. No build isolation: the build backend is the test environment's."""
    if shutil.which("pyproject-build", path=str(Path(sys.executable).parent)) is None:
        require("the 'build' package is not installed", "install the test extra")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "vizlib", src / "vizlib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The wheel's runtime requirements (``Requires-Dist`` without an extra)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    reqs = [
        Requirement(line.split(":", 1)[1]) for line in lines if line.startswith("Requires-Dist:")
    ]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_closure(requirements) -> dict[str, metadata.Distribution]:
    """The installed distributions that ``requirements`` need, with theirs, recursively."""
    found: dict[str, metadata.Distribution] = {}
    todo = [Requirement(r) if isinstance(r, str) else r for r in requirements]
    while todo:
        req = todo.pop()
        key = _canonical(req.name)
        if key in found:
            continue
        found[key] = dist = metadata.distribution(req.name)
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return found


def fresh_env(path: Path, wheel: Path, requirements) -> Path:
    """A venv at ``path`` with the wheel installed and ``requirements`` (with theirs)
    linked from this environment; returns its python.

    The wheel is pure Python (``py3-none-any``, checked here), so installing it is
    unpacking it into the venv's site-packages, as an installer does (pip would add a
    second or two of its own start-up)."""
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    venv.create(path, with_pip=False, symlinks=True)
    python = path / "bin" / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = path / "lib" / version / "site-packages"
    assert site.is_dir(), site
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    linked = set()
    for dist in distribution_closure(requirements).values():
        base = Path(dist.locate_file(""))
        for file in dist.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth") or top in linked:
                continue
            target = site / top
            if not target.exists():
                target.symlink_to(base / top)
            linked.add(top)
    return python


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    return _one(dist, "vizlib-*.whl")


@pytest.mark.slow  # builds the wheel (about 5 s, once per module)
def test_build_makes_a_wheel_and_an_sdist_of_the_one_version(dist, wheel):
    version = vizlib.__version__
    assert wheel.name == f"vizlib-{version}-py3-none-any.whl"
    sdist = _one(dist, "vizlib-*.tar.gz")
    assert sdist.name == f"vizlib-{version}.tar.gz"
    import tarfile

    with tarfile.open(sdist) as tf:
        tops = {Path(n).parts[1] for n in tf.getnames() if len(Path(n).parts) > 1}
    assert {"pyproject.toml", "README.md", "vizlib"} <= tops
    assert not tops & {"tests", "book", "lessons", "masters", "tools", "benchmarks"}, tops


@pytest.mark.slow
def test_wheel_holds_vizlib_only_and_declares_runtime_dependencies_only(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"vizlib", f"vizlib-{vizlib.__version__}.dist-info"}, tops
    assert any(n.startswith("vizlib/exercises/bank/") for n in names), "the check cells' tests"
    assert "vizlib/widgets/live_figure.js" in names, "the live figure's browser side"
    declared = {_canonical(r.name) for r in wheel_requirements(wheel)}
    project = tomllib_load(ROOT / "pyproject.toml")["project"]
    assert declared == {_canonical(Requirement(r).name) for r in project["dependencies"]}
    assert not declared & {
        _canonical(t)
        for t in ("pytest", "jupyter-book", "nbval", "hypothesis", "playwright", "nbformat")
    }


IMPORT_ALL = textwrap.dedent("""
    import importlib, importlib.util, json, pkgutil, sys
    import vizlib
    skip = set(sys.argv[1].split(","))
    failed, imported = {}, []
    for info in pkgutil.walk_packages(vizlib.__path__, "vizlib."):
        if info.name in skip or info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as err:
            failed[info.name] = repr(err)
    tooling = [t for t in sys.argv[2].split(",") if importlib.util.find_spec(t) is not None]
    print(json.dumps({"file": vizlib.__file__, "version": vizlib.__version__,
                      "imported": imported, "failed": failed, "tooling": tooling}))
""")


@pytest.mark.slow
def test_wheel_imports_with_its_runtime_dependencies_only(wheel, tmp_path):
    python = fresh_env(tmp_path / "venv", wheel, wheel_requirements(wheel))
    result = subprocess.run(
        [str(python), "-I", "-c", IMPORT_ALL, ",".join(INSTRUCTOR_MODULES), ",".join(TOOLING)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).is_relative_to(tmp_path / "venv"), report["file"]
    assert report["version"] == vizlib.__version__
    assert not report["tooling"], f"the test environment leaked into the fresh one: {report}"
    assert not report["failed"], report["failed"]
    assert {
        "vizlib.boxes",
        "vizlib.widgets",
        "vizlib.viz",
        "vizlib.exercises",
        "vizlib.train",
        "vizlib.data",
    } <= set(report["imported"])


# -- Colab ---------------------------------------------------------------------------------


def test_import_enables_colabs_widget_manager_only_in_colab(monkeypatch):
    import types

    calls = []
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("enabled")
    colab.output, google.colab = output, colab
    vizlib._setup_colab()
    assert calls == [] and not vizlib.in_colab()
    for name, module in (
        ("google", google),
        ("google.colab", colab),
        ("google.colab.output", output),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    assert vizlib.in_colab()
    vizlib._setup_colab()
    assert calls == ["enabled"]

    def broken():
        raise RuntimeError("no frontend")

    output.enable_custom_widget_manager = broken
    with pytest.warns(RuntimeWarning, match="custom widget manager"):
        vizlib._setup_colab()


FAKE_COLAB_OUTPUT = """\
import os


def enable_custom_widget_manager():
    with open(os.environ["FAKE_COLAB_LOG"], "a") as log:
        log.write("enable_custom_widget_manager\\n")
"""
# Colab's kernel has google.colab imported before the first cell runs. `%pip` is replaced
# by a magic that records its line: the install is the step this machine cannot take.
FAKE_COLAB_STARTUP = """\
import os

import google.colab  # noqa: F401
from IPython import get_ipython


def _pip(line):
    with open(os.environ["FAKE_COLAB_LOG"], "a") as log:
        log.write("pip " + line + "\\n")


get_ipython().register_magic_function(_pip, "line", "pip")
"""


@pytest.mark.slow
@pytest.mark.parametrize("notebook", [COLAB_PAGE, COLAB_LESSON])
def test_student_version_runs_on_the_colab_path_from_the_wheel(
    notebook, wheel, tmp_path, monkeypatch
):
    import nbformat
    from nbclient import NotebookClient

    page = ROOT / notebook
    assert (ROOT / "masters" / notebook).exists(), "the notebook must have a student version"
    requirements = wheel_requirements(wheel) + [Requirement(n) for n in COLAB_PREINSTALLED]
    python = fresh_env(tmp_path / "venv", wheel, requirements)

    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("from . import output  # noqa\n")
    (fake / "google" / "colab" / "output.py").write_text(FAKE_COLAB_OUTPUT)
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(FAKE_COLAB_STARTUP)
    spec = tmp_path / "jupyter" / "kernels" / "fake-colab"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (fake Colab)",
                "language": "python",
            }
        )
    )
    log = tmp_path / "colab.log"
    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    for name, value in {
        "JUPYTER_PATH": tmp_path / "jupyter",
        "IPYTHONDIR": tmp_path / "ipython",
        "PYTHONPATH": fake,
        "FAKE_COLAB_LOG": log,
        "VIZLIB_PROFILE": "smoke",
        "PYTHONNOUSERSITE": "1",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("VIZLIB_BOOK", "VIZLIB_MODE"):
        monkeypatch.delenv(name, raising=False)

    nb = nbformat.read(page, as_version=4)  # an in-memory copy: the file is not touched
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import sys, vizlib\nprint(vizlib.__file__)\nprint(vizlib.in_colab())"
        )
    )
    NotebookClient(
        nb,
        kernel_name="fake-colab",
        timeout=120,
        allow_errors=False,
        resources={"metadata": {"path": str(content)}},
    ).execute()

    lines = log.read_text().splitlines()
    pip = [line for line in lines if line.startswith("pip ")]
    # the release the book was made with, from the index (vizlib imported: no fallback)
    assert pip == [f'pip install -q "vizlib=={vizlib.__version__}"'], lines
    assert lines.count("enable_custom_widget_manager") == 1, lines
    probe = "".join(o.get("text", "") for o in nb.cells[-1].outputs).split()
    assert Path(probe[0]).is_relative_to(tmp_path / "venv"), probe
    assert probe[1] == "True"
