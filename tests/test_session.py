"""vizlib.start_lesson: the one setup call of every lesson picks the profile's settings, the
device, the CPU threads, seeds every generator, names a checkpoint folder in the working
folder, says all of it in one line, and refuses bad input with a ValueError."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import vizlib
from vizlib.session import _choose_threads


@dataclasses.dataclass(frozen=True)
class Settings:
    steps: int = 250
    lr: float = 3e-3
    data: str = "scenes"
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class ThreadedSettings:
    steps: int = 250
    threads: int | None = None
    seed: int = 0


SETTINGS = {"full": Settings(), "smoke": Settings(steps=2, seed=7)}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Each test runs in its own working folder, with the profile and threads it sets, and
    leaves torch's thread count as it found it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIZLIB_PROFILE", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def start(*args, **kwargs):
    kwargs.setdefault("device", "cpu")
    return vizlib.start_lesson(*args, **kwargs)


# -- profiles and settings -----------------------------------------------------------------


@pytest.mark.parametrize("run_profile", ["full", "smoke"])
def test_picks_the_settings_of_the_profile(monkeypatch, run_profile):
    monkeypatch.setenv("VIZLIB_PROFILE", run_profile)
    lesson = start("fcn", SETTINGS)
    assert lesson.profile == run_profile
    assert lesson.settings is SETTINGS[run_profile]
    assert lesson.seed == SETTINGS[run_profile].seed
    assert lesson.name == "fcn"


def test_unset_profile_is_full():
    assert start("fcn", SETTINGS).settings == Settings()


def test_changes_apply_to_the_chosen_settings_only(monkeypatch):
    monkeypatch.setenv("VIZLIB_PROFILE", "smoke")
    lesson = start("fcn", SETTINGS, changes={"data": "voc", "lr": 1e-3})
    assert lesson.settings == Settings(steps=2, seed=7, data="voc", lr=1e-3)
    assert SETTINGS["smoke"] == Settings(steps=2, seed=7)  # the input is not modified


def test_seeds_python_numpy_and_torch_with_the_settings_seed(monkeypatch):
    monkeypatch.setenv("VIZLIB_PROFILE", "smoke")
    start("fcn", SETTINGS)  # seed 7
    drawn = (random.random(), float(np.random.rand()), float(torch.rand(())))
    vizlib.seed_everything(7)
    assert drawn == (random.random(), float(np.random.rand()), float(torch.rand(())))


def test_device_defaults_to_vizlib_device():
    lesson = vizlib.start_lesson("fcn", SETTINGS)
    assert lesson.device == vizlib.device()


def test_device_can_be_forced_to_the_cpu():
    assert start("fcn", SETTINGS, device="cpu").device == torch.device("cpu")


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"full": Settings()}, r"missing \['smoke'\]"),
        ({"full": Settings(), "smoke": Settings(), "fast": Settings()}, r"unknown \['fast'\]"),
        ({"full": Settings(), "Smoke": Settings()}, r"missing \['smoke'\], unknown \['Smoke'\]"),
        (Settings(), "one settings dataclass per profile"),
        ([Settings(), Settings()], "one settings dataclass per profile"),
        ({"full": Settings, "smoke": Settings()}, "instance of a dataclass.*the class Settings"),
        ({"full": {"steps": 1, "seed": 0}, "smoke": Settings()}, "instance of a dataclass.*dict"),
        ({"full": Settings(), "smoke": ThreadedSettings()}, "of one class"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        start("fcn", settings)


def test_settings_need_a_seed():
    @dataclasses.dataclass
    class NoSeed:
        steps: int = 1

    with pytest.raises(ValueError, match="int field 'seed'"):
        start("fcn", {"full": NoSeed(), "smoke": NoSeed()})


def test_a_seed_that_is_not_an_int_is_refused():
    with pytest.raises(ValueError, match="seed must be an int"):
        start("fcn", {"full": Settings(seed=0.5), "smoke": Settings()})


@pytest.mark.parametrize("name", ["", "../fcn", "fcn/unet", "my lesson", ".hidden", 3, None])
def test_names_that_are_not_folder_names_are_refused(name):
    with pytest.raises(ValueError, match="name must be the lesson's name"):
        start(name, SETTINGS)


def test_changes_to_unknown_fields_are_refused():
    with pytest.raises(ValueError, match=r"does not have: \['step'\]"):
        start("fcn", SETTINGS, changes={"step": 10})
    with pytest.raises(ValueError, match="changes must be a dict"):
        start("fcn", SETTINGS, changes=[("steps", 10)])


def test_a_typo_in_the_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("VIZLIB_PROFILE", "smok")
    with pytest.raises(ValueError, match="not a profile"):
        start("fcn", SETTINGS)


@pytest.mark.parametrize(
    "dev, message",
    [
        ("tpu", "must be 'cpu', 'cuda' or 'mps'"),
        ("meta", "must be 'cpu', 'cuda' or 'mps'"),
        (3.5, "must be 'cpu', 'cuda' or 'mps'"),
    ],
)
def test_bad_devices_are_refused(dev, message):
    with pytest.raises(ValueError, match=message):
        start("fcn", SETTINGS, device=dev)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_absent_gpu_is_refused():
    with pytest.raises(ValueError, match="'cuda' is not available on this machine"):
        start("fcn", SETTINGS, device="cuda")


# -- threads -------------------------------------------------------------------------------


def test_omp_num_threads_is_honoured(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    lesson = start("fcn", SETTINGS)
    assert lesson.threads == 2 == torch.get_num_threads()


def test_omp_num_threads_with_nesting_levels_uses_the_first(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")
    assert start("fcn", SETTINGS).threads == 2


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_omp_num_threads_is_refused(monkeypatch, value):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        start("fcn", SETTINGS)


def test_the_settings_threads_field_comes_first(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    settings = {"full": ThreadedSettings(threads=1), "smoke": ThreadedSettings(threads=1)}
    lesson = start("yolo", settings)
    assert lesson.threads == 1 == torch.get_num_threads()


def test_a_threads_field_of_none_means_automatic(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    settings = {"full": ThreadedSettings(), "smoke": ThreadedSettings()}
    assert start("yolo", settings).threads == 2


@pytest.mark.parametrize("threads", [0, -2, 1.0, True, "1"])
def test_a_bad_threads_field_is_refused(threads):
    settings = {"full": ThreadedSettings(threads=threads), "smoke": ThreadedSettings()}
    with pytest.raises(ValueError, match="settings.threads must be a positive int"):
        start("yolo", settings)


@pytest.mark.parametrize("cpus, threads", [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (8, 4), (64, 4)])
def test_automatic_threads_are_half_the_cpus_from_1_to_4(cpus, threads):
    assert _choose_threads("cpu", None, None, cpus) == (
        threads,
        f"automatic for {cpus} CPU{'s' * (cpus > 1)}",
    )
    assert _choose_threads("cpu", None, "", cpus)[0] == threads  # set but empty: unset


def test_automatic_threads_are_set_on_the_cpu():
    lesson = start("fcn", SETTINGS)
    cpus = len(__import__("os").sched_getaffinity(0))
    assert lesson.threads == max(1, min(4, cpus // 2)) == torch.get_num_threads()


@pytest.mark.parametrize("device_type", ["cuda", "mps"])
def test_threads_are_left_alone_on_a_gpu(device_type):
    # even where the settings or the environment name a number: they are CPU settings
    assert _choose_threads(device_type, 1, "2", 8) == (
        None,
        f"left as they are: the model runs on {device_type}",
    )


# -- the checkpoint folder -------------------------------------------------------------------


def test_checkpoints_go_under_the_working_folder(tmp_path):
    lesson = start("fcn", SETTINGS)
    assert lesson.checkpoints.is_absolute()
    assert lesson.checkpoints.parent == tmp_path.resolve() / "checkpoints"
    assert re.fullmatch(r"fcn-full-[0-9a-f]{8}", lesson.checkpoints.name)
    assert not lesson.checkpoints.exists()  # created by the first checkpoint, not here


def test_the_checkpoint_folder_depends_on_the_settings_not_on_the_run(monkeypatch):
    first = start("fcn", SETTINGS).checkpoints
    assert (
        start("fcn", {"full": Settings(), "smoke": Settings()}).checkpoints == first
    )  # same settings
    assert start("fcn", SETTINGS, changes={"lr": 1e-3}).checkpoints != first  # an edited setting
    assert start("unet", SETTINGS).checkpoints.name.startswith("unet-full-")
    monkeypatch.setenv("VIZLIB_PROFILE", "smoke")
    assert start("fcn", SETTINGS).checkpoints.name.startswith("fcn-smoke-")


def test_the_checkpoint_folder_is_writable_and_fit_resumes_from_it():
    from vizlib.train import fit

    lesson = start("tiny", {"full": Settings(steps=2), "smoke": Settings(steps=2)})
    model = torch.nn.Linear(2, 1)
    batches = [(torch.ones(4, 2), torch.zeros(4, 1))] * 2
    loss = torch.nn.functional.mse_loss
    fit(
        model,
        batches,
        torch.optim.SGD(model.parameters(), lr=0.1),
        steps=2,
        loss_fn=loss,
        device="cpu",
        checkpoint_dir=lesson.checkpoints,
        progress="off",
    )
    assert sorted(p.name for p in lesson.checkpoints.iterdir()) == ["epoch-0001.pt"]
    assert Path.cwd() in lesson.checkpoints.parents


# -- the printed line ------------------------------------------------------------------------


def test_one_line_says_what_was_chosen(capsys, monkeypatch):
    monkeypatch.setenv("VIZLIB_PROFILE", "smoke")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    lesson = start("fcn", SETTINGS)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n")
    line = out.strip()
    assert line.startswith("fcn: profile smoke, device cpu, ")
    assert f"torch {torch.__version__}" in line
    assert "1 CPU thread (OMP_NUM_THREADS)" in line
    assert "seed 7" in line
    assert line.endswith(f"checkpoints in checkpoints/{lesson.checkpoints.name}/")


def test_the_line_counts_threads_in_the_plural(capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    start("fcn", SETTINGS)
    assert "2 CPU threads (OMP_NUM_THREADS)" in capsys.readouterr().out


def test_on_a_gpu_the_line_names_it_and_leaves_the_threads(monkeypatch):
    # no GPU needed: the line is made from the Lesson and torch's name for the device
    from vizlib.session import Lesson, _summary

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    lesson = Lesson(
        name="yolo",
        profile="full",
        device=torch.device("cuda"),
        settings=Settings(),
        seed=0,
        threads=8,
        checkpoints=Path.cwd() / "checkpoints" / "yolo-full-0123abcd",
        started=0.0,
    )
    why = _choose_threads("cuda", None, None, 16)[1]
    line = _summary(lesson, why)
    assert line.startswith("yolo: profile full, device cuda (Tesla T4), torch ")
    assert "8 CPU threads (left as they are: the model runs on cuda), seed 0, " in line
    assert line.endswith("checkpoints in checkpoints/yolo-full-0123abcd/")
