"""The setup of every lesson: profile, device, threads, seed and checkpoint folder in one call.

A lesson keeps its settings in a dataclass that students read and edit, one instance per
profile, and hands them to :func:`start_lesson`::

    @dataclass(frozen=True)
    class Settings:
        steps: int = 250
        seed: int = 0

    lesson = vizlib.start_lesson("fcn", {"full": Settings(), "smoke": Settings(steps=2)})
    settings = lesson.settings

which picks the profile's settings (:func:`vizlib.profile`), the device
(:func:`vizlib.device`), the number of CPU threads, seeds every generator
(:func:`vizlib.seed_everything`) and names the checkpoint folder, then prints one line that
says what it chose. The Colab install stays in the notebook: it must run before vizlib
can be imported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from . import PROFILES, device, profile, seed_everything

__all__ = ["Lesson", "start_lesson"]

# Small convolutions gain little from more than a few threads, and threads that outnumber
# the free cores slow everything down: on a shared 2-core machine one thread trained the
# chapters' models several times faster than two.
MAX_AUTO_THREADS = 4
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclasses.dataclass(frozen=True)
class Lesson:
    """What :func:`start_lesson` chose for a lesson's run.

    Attributes:
        name (str): the lesson's name, e.g. ``"fcn"``.
        profile (str): ``"full"`` or ``"smoke"`` (:func:`vizlib.profile`).
        device (torch.device): where the lesson trains.
        settings: the profile's settings dataclass, with ``changes`` applied.
        seed (int): the seed every generator was seeded with (``settings.seed``).
        threads (int): the CPU threads torch uses (``torch.get_num_threads()`` afterwards).
        checkpoints (Path): the lesson's checkpoint folder, absolute, under the working
            folder; not created until a checkpoint is written.
        started (float): ``time.perf_counter()`` when the lesson started.
    """

    name: str
    profile: str
    device: object
    settings: object
    seed: int
    threads: int
    checkpoints: Path
    started: float


def start_lesson(
    name: str, settings: Mapping, *, changes: Mapping | None = None, device=None
) -> Lesson:
    """Set up a lesson's run and say in one printed line what was chosen.

    In order: the profile's settings are picked (``settings[vizlib.profile()]``) and
    ``changes`` applied to them; the device is chosen; on a CPU the number of torch
    threads is set; every generator is seeded with ``settings.seed``; the checkpoint
    folder is named.

    Threads (CPU only; on a GPU the CPU threads are left as they are), first that applies:

    1. the settings' own ``threads`` field, when it has one that is not ``None``;
    2. the environment variable ``OMP_NUM_THREADS``, when set (its first number);
    3. automatic: half the CPUs this process may use, at least 1 and at most 4. Logical
       CPUs often come in hyperthread pairs and the notebook's other work needs a core;
       on a 2-core machine that is one thread.

    Checkpoints go to ``checkpoints/<name>-<profile>-<fingerprint>`` under the working
    folder (the notebook's own folder in Jupyter, ``/content`` in Colab), where a student
    and a grader's sandbox may write. The fingerprint is 8 hex digits of a hash of the
    settings' ``repr``: each choice of settings has its own folder, so editing a setting
    trains afresh instead of resuming a run made with other settings, and changing it back
    resumes. ``VIZLIB_RESUME=0`` makes :func:`vizlib.train.fit` ignore checkpoints.

    Args:
        name (str): the lesson's name, used for its checkpoint folder: letters, digits,
            ``_``, ``.`` and ``-``, e.g. ``"fcn"``.
        settings (Mapping[str, dataclass]): one settings dataclass instance per profile,
            keyed by every name in :data:`vizlib.PROFILES` (``"full"`` and ``"smoke"``), all
            of the same class, each with an int field ``seed`` and optionally ``threads``.
        changes (Mapping[str, object], optional): fields to change in the chosen settings,
            as :func:`dataclasses.replace` would, e.g. ``{"data": "voc"}``.
        device (str or torch.device, optional): ``"cpu"``, ``"cuda"`` or ``"mps"`` to
            override :func:`vizlib.device` (CUDA, then MPS, then the CPU).

    Returns:
        Lesson: the profile, device, settings, seed, threads and checkpoint folder.

    Raises:
        ValueError: if ``name`` is not a folder-safe name; if ``settings`` lacks a profile,
            names an unknown one, or holds something other than instances of one dataclass
            with an int ``seed``; if ``changes`` names a field the settings lack; if
            ``device`` is not a device or not available here; if the threads (the field or
            ``OMP_NUM_THREADS``) are not a positive int.
    """
    import torch

    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            "name must be the lesson's name, letters, digits, '_', '.' and '-' "
            f"(it names its checkpoint folder), e.g. 'fcn'; got {name!r}"
        )
    run_profile = profile()
    chosen = _apply(_profile_settings(settings, run_profile), changes)
    if "seed" not in {f.name for f in dataclasses.fields(chosen)}:
        raise ValueError(
            f"the settings {type(chosen).__name__} need an int field 'seed' "
            "(every generator is seeded with it)"
        )
    seed = chosen.seed
    dev = _device(device)
    threads, why = _choose_threads(
        dev.type,
        getattr(chosen, "threads", None),
        os.environ.get("OMP_NUM_THREADS"),
        _usable_cpus(),
    )
    seed_everything(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    checkpoints = Path.cwd() / "checkpoints" / f"{name}-{run_profile}-{_fingerprint(chosen)}"
    lesson = Lesson(
        name=name,
        profile=run_profile,
        device=dev,
        settings=chosen,
        seed=seed,
        threads=threads,
        checkpoints=checkpoints,
        started=time.perf_counter(),
    )
    print(_summary(lesson, why))
    return lesson


# -- the steps of start_lesson ---------------------------------------------------------


def _fingerprint(settings) -> str:
    """8 hex digits that change whenever a field of ``settings`` changes (sha256 of its repr)."""
    return hashlib.sha256(repr(settings).encode("utf-8")).hexdigest()[:8]


def _check_instance(what: str, value) -> None:
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        kind = f"the class {value.__name__}" if isinstance(value, type) else type(value).__name__
        raise ValueError(f"{what} must be an instance of a dataclass (e.g. Settings()), got {kind}")


def _profile_settings(settings: Mapping, run_profile: str):
    """The settings of ``run_profile``, after checking that every profile has some."""
    if not isinstance(settings, Mapping):
        raise ValueError(
            "settings must be a dict with one settings dataclass per profile, "
            f"{{'full': ..., 'smoke': ...}}; got {type(settings).__name__}"
        )
    unknown = [k for k in settings if k not in PROFILES]
    missing = [p for p in PROFILES if p not in settings]
    if unknown or missing:
        raise ValueError(
            f"settings must have exactly the profiles {PROFILES} as keys; "
            f"missing {missing}, unknown {unknown}"
        )
    for key, value in settings.items():
        _check_instance(f"settings[{key!r}]", value)
    classes = {type(value).__name__ for value in settings.values()}
    if len({type(value) for value in settings.values()}) > 1:
        raise ValueError(f"every profile's settings must be of one class, got {sorted(classes)}")
    return settings[run_profile]


def _apply(chosen, changes: Mapping | None):
    if changes is None:
        return chosen
    if not isinstance(changes, Mapping):
        raise ValueError(
            f"changes must be a dict of field names to values, got {type(changes).__name__}"
        )
    fields = [f.name for f in dataclasses.fields(chosen)]
    unknown = [k for k in changes if k not in fields]
    if unknown:
        raise ValueError(
            f"changes name fields {type(chosen).__name__} does not have: {unknown}; "
            f"its fields are {fields}"
        )
    return dataclasses.replace(chosen, **changes)


def _device(requested):
    import torch

    if requested is None:
        return device()
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda' or 'mps', got {requested!r} ({exc})"
        ) from None
    mps = getattr(torch.backends, "mps", None)
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": mps is not None and mps.is_available(),
    }
    if dev.type not in available:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'mps', got {requested!r}")
    if not available[dev.type]:
        raise ValueError(
            f"device {requested!r} is not available on this machine; "
            f"leave device unset to use the best one ({device()})"
        )
    return dev


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on (Linux)
    except AttributeError:
        return os.cpu_count() or 1


def _choose_threads(device_type: str, field, omp: str | None, cpus: int) -> tuple[int | None, str]:
    """(threads to set, or None to leave torch's; why), by the rules of :func:`start_lesson`."""
    if device_type != "cpu":
        return None, f"left as they are: the model runs on {device_type}"
    if field is not None:
        if isinstance(field, bool) or not isinstance(field, int) or field < 1:
            raise ValueError(f"settings.threads must be a positive int or None, got {field!r}")
        return field, "settings.threads"
    if omp is not None and omp.strip():
        first = omp.split(",")[0].strip()  # OpenMP allows one number per nesting level
        if not first.isdigit() or int(first) < 1:
            raise ValueError(
                f"OMP_NUM_THREADS={omp!r} is not a positive int; unset it to "
                "choose the threads automatically"
            )
        return int(first), "OMP_NUM_THREADS"
    threads = max(1, min(MAX_AUTO_THREADS, cpus // 2))
    return threads, f"automatic for {cpus} CPU{'s' if cpus != 1 else ''}"


def _summary(lesson: Lesson, why: str) -> str:
    import torch

    dev = lesson.device.type
    if dev == "cuda":
        dev = f"cuda ({torch.cuda.get_device_name(lesson.device)})"
    try:
        import torchvision

        versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    except ImportError:
        versions = f"torch {torch.__version__}"
    try:
        folder = lesson.checkpoints.relative_to(Path.cwd())
    except ValueError:  # the working folder changed since
        folder = lesson.checkpoints
    plural = "s" if lesson.threads != 1 else ""
    return (
        f"{lesson.name}: profile {lesson.profile}, device {dev}, {versions}, "
        f"{lesson.threads} CPU thread{plural} ({why}), seed {lesson.seed}, "
        f"checkpoints in {folder.as_posix()}/"
    )
