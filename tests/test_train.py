"""vizlib.train: schedule, fit (determinism, dict losses, resume, crash-safe checkpoints),
overfit_one_batch, and what an executed notebook stores as progress."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import vizlib
from vizlib.train import (
    FitConfig,
    History,
    OverfitError,
    fit,
    load_latest,
    lr_factor,
    overfit_one_batch,
    restore_training_state,
    save_atomic,
    split_batch,
    training_state,
)
from vizlib.train.checkpoint import CHECKPOINT_FORMAT, checkpoint_path, list_checkpoints
from vizlib.train.schedule import POLY_POWER

ROOT = Path(__file__).resolve().parents[1]


def make_problem(seed: int = 0, n: int = 64, batch_size: int = 16):
    """A tiny classifier with dropout and a shuffled loader: every source of randomness.

    The data are always the same; ``seed`` sets the model's initial weights.
    """
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] + x[:, 1] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    vizlib.seed_everything(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, loader, opt


COMMON = dict(loss_fn=F.cross_entropy, device="cpu", seed=0, warmup_steps=3, progress="off")


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_seconds(h: History) -> dict:
    d = h.to_dict()
    d.pop("seconds")
    for e in d["epochs"]:
        e.pop("seconds")
    return d


# -- schedule ------------------------------------------------------------------------


def test_lr_factor_warmup_then_cosine():
    total, warm = 100, 10
    f = [lr_factor(s, total, warm, "cosine", 0.1) for s in range(total)]
    assert f[0] == pytest.approx(1 / 11)
    assert all(
        a < b for a, b in zip(f[:warm], f[1 : warm + 1], strict=True)
    )  # rises during warm-up
    assert f[warm] == pytest.approx(1.0)  # the peak right after it
    assert all(a >= b for a, b in zip(f[warm:-1], f[warm + 1 :], strict=True))  # then only falls
    assert f[-1] == pytest.approx(0.1, abs=1e-3)  # down to the floor
    mid = warm + (total - warm) // 2
    assert f[mid] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-9)  # half-way down the cosine
    assert lr_factor(50, 100, 0, "constant") == 1.0
    assert lr_factor(50, 100, 0, "linear") == pytest.approx(0.5)
    assert lr_factor(7, 100, 0, lambda s, t: s / t) == pytest.approx(0.07)


def test_lr_factor_poly_equals_torch_polynomial_lr():
    # DeepLab's "poly" policy: base * (1 - step / total) ** 0.9, as torch's PolynomialLR
    total = 50
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=total, power=POLY_POWER)
    for step in range(total):
        assert lr_factor(step, total, 0, "poly") == pytest.approx(
            opt.param_groups[0]["lr"], abs=1e-12
        )
        opt.step()
        sched.step()
    assert lr_factor(0, total, 0, "poly") == 1.0
    assert lr_factor(total, total, 0, "poly") == 0.0  # the end, not a complex number
    assert lr_factor(25, 50, 0, "poly") > lr_factor(25, 50, 0, "linear")  # stays up longer
    f = [lr_factor(s, 100, 10, "poly", 0.1) for s in range(100)]
    assert f[10] == pytest.approx(1.0) and f[-1] > 0.1  # warm-up, then down toward the floor
    assert all(a >= b for a, b in zip(f[10:-1], f[11:], strict=True))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(step=-1, total_steps=10), "step"),
        (dict(step=0, total_steps=0), "total_steps"),
        (dict(step=0, total_steps=10, schedule="step"), "schedule"),
        (dict(step=0, total_steps=10, min_lr_ratio=2.0), "min_lr_ratio"),
    ],
)
def test_lr_factor_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lr_factor(**kwargs)


# -- fit -------------------------------------------------------------------------------


def test_fit_is_deterministic_on_cpu_for_a_seed():
    runs = []
    for _ in range(2):
        model, loader, opt = make_problem()
        runs.append((model, fit(model, loader, opt, epochs=3, **COMMON)))
    (m1, h1), (m2, h2) = runs
    assert without_seconds(h1) == without_seconds(h2)
    assert same_weights(m1, m2)
    assert len(h1["loss"]) == 12 and h1["step"] == list(range(1, 13))
    assert h1.epoch_values("epoch") == [1, 2, 3]
    assert h1["loss"][-1] < h1["loss"][0]  # it learns
    # A different seed gives a different run (the test above can fail).
    model, loader, opt = make_problem()
    h3 = fit(model, loader, opt, epochs=3, **{**COMMON, "seed": 1})
    assert h3["loss"] != h1["loss"]


def test_fit_learning_rate_follows_the_schedule_and_model_ends_in_eval_mode():
    model, loader, opt = make_problem()
    h = fit(model, loader, opt, steps=10, **{**COMMON, "warmup_steps": 0.2, "min_lr_ratio": 0.0})
    expected = [1e-2 * lr_factor(s, 10, 2, "cosine") for s in range(10)]
    assert h["lr"] == pytest.approx(expected)
    # steps=10 with 4 batches per epoch: epochs of 4, 4 and 2 steps
    assert [len([e for e in h["epoch"] if e == k]) for k in (1, 2, 3)] == [4, 4, 2]
    assert not model.training


class DictLossModel(nn.Module):
    """Stands in for a torchvision detector: model(images, targets) -> dict of losses."""

    def __init__(self):
        super().__init__()
        self.cls = nn.Linear(6, 2)
        self.box = nn.Linear(6, 4)

    def forward(self, images, targets=None):
        x = torch.stack(images)
        if self.training:
            labels = torch.stack([t["labels"] for t in targets])
            boxes = torch.stack([t["boxes"] for t in targets])
            return {
                "loss_classifier": F.cross_entropy(self.cls(x), labels),
                "loss_box_reg": F.smooth_l1_loss(self.box(x), boxes),
            }
        return [
            {"boxes": b, "scores": s.softmax(-1).max(-1).values}
            for b, s in zip(self.box(x), self.cls(x), strict=True)
        ]


def detection_loader(n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    samples = [
        (x[i], {"labels": (x[i, 0] > 0).long(), "boxes": x[i, :4].abs().cumsum(0)})
        for i in range(n)
    ]
    return DataLoader(samples, batch_size=8, collate_fn=lambda b: tuple(zip(*b, strict=True)))


def test_fit_handles_a_dict_of_losses_and_plots_each_term():
    model = DictLossModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = fit(
        model, detection_loader(), opt, epochs=2, device="cpu", progress="off", clip_grad_norm=1.0
    )
    assert h.terms == ["loss_classifier", "loss_box_reg"]
    for i in range(len(h["loss"])):
        assert h["loss"][i] == pytest.approx(
            h["loss_classifier"][i] + h["loss_box_reg"][i], rel=1e-5
        )
    assert len(h["grad_norm"]) == 8 and all(g > 0 for g in h["grad_norm"])
    assert set(h.epochs[-1]) >= {"loss", "loss_classifier", "loss_box_reg", "lr", "seconds"}
    fig = h.plot()
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["total loss", "loss_classifier", "loss_box_reg"]


def test_fit_records_val_metrics_each_epoch():
    model, loader, opt = make_problem()
    x, y = loader.dataset.tensors
    h = fit(
        model,
        loader,
        opt,
        epochs=2,
        **COMMON,
        val_fn=lambda m: {"acc": (m(x).argmax(1) == y).float().mean()},
    )
    assert len(h["acc"]) == 2 and all(0 <= a <= 1 for a in h["acc"])
    assert [ax.get_title() for ax in h.plot().axes if ax.get_visible()][-1] == "validation"


def test_fit_stops_on_a_non_finite_loss_with_the_step():
    model, loader, opt = make_problem()
    calls = [0]

    def explodes_at_step_3(out, y):
        calls[0] += 1
        return F.cross_entropy(out, y) * (math.inf if calls[0] >= 3 else 1.0)

    with pytest.raises(FloatingPointError, match="step 3 "):
        fit(
            model,
            loader,
            opt,
            epochs=1,
            **{**COMMON, "loss_fn": explodes_at_step_3, "log_every": 5},
        )


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(), "epochs or steps"),
        (dict(epochs=1, steps=3), "epochs or steps"),
        (dict(epochs=1, warmup_steps=1.5), "warmup_steps"),
        (dict(epochs=1, amp="int8"), "amp"),
        (dict(epochs=1, clip_grad_norm=-1), "clip_grad_norm"),
        (dict(epochs=1, learning_rate=3), "unknown setting"),
        (dict(epochs=1, progress="fancy"), "progress"),
    ],
)
def test_fit_rejects_bad_settings(settings, match):
    model, loader, opt = make_problem()
    with pytest.raises(ValueError, match=match):
        fit(model, loader, opt, **settings)


def test_fit_rejects_bad_batches_and_a_model_that_needs_a_loss_fn():
    model, loader, opt = make_problem()
    with pytest.raises(ValueError, match="pair"):
        fit(model, [torch.zeros(2, 6)], opt, epochs=1, loss_fn=F.cross_entropy, progress="off")
    with pytest.raises(ValueError, match="loss_fn"):
        fit(model, loader, opt, epochs=1, device="cpu", progress="off")
    with pytest.raises(ValueError, match="epoch_steps"):
        fit(model, (b for b in loader), opt, epochs=1, loss_fn=F.cross_entropy, progress="off")


def test_split_batch_takes_a_pair_only():
    x, y = torch.zeros(2, 6), torch.ones(2)
    assert split_batch((x, y))[0] is x and split_batch([x, y])[1] is y
    for bad in (torch.zeros(2, 6), (x, y, y), "xy", 3):
        with pytest.raises(ValueError, match="pair"):
            split_batch(bad)


def test_fit_config_and_keywords_combine():
    model, loader, opt = make_problem()
    cfg = FitConfig(epochs=5, **COMMON)
    h = fit(model, loader, opt, cfg, steps=2)  # the keyword replaces the config's length
    assert len(h["loss"]) == 2


def test_amp_is_cuda_only_and_the_header_says_what_runs(capsys):
    model, loader, opt = make_problem()
    fit(model, loader, opt, epochs=1, **{**COMMON, "progress": "text", "amp": "bf16"})
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("fit: 1 epochs x 4 steps (4 steps) on cpu")
    assert "autocast" not in header and "warm-up 3 steps, then cosine" in header


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp, dtype", [("bf16", "bfloat16"), ("fp16", "float16")])
def test_mixed_precision_on_cuda_trains_and_resumes(tmp_path, amp, dtype, capsys):
    model, loader, opt = make_problem()
    settings = {
        **COMMON,
        "device": "cuda",
        "amp": amp,
        "clip_grad_norm": 1.0,
        "progress": "text",
        "checkpoint_dir": tmp_path,
    }
    h = fit(model, loader, opt, epochs=2, **settings)
    assert f"{dtype} autocast" in capsys.readouterr().out
    assert all(math.isfinite(v) for v in h["loss"]) and h["loss"][-1] < h["loss"][0]
    state, _ = load_latest(tmp_path)
    assert (state["scaler"] is not None) == (amp == "fp16")  # a GradScaler only for fp16
    model2, loader, opt2 = make_problem(seed=5)
    fit(model2, loader, opt2, epochs=2, **settings)  # complete already: loads the weights
    assert same_weights(model2, model)


# -- checkpoints and resuming ------------------------------------------------------------


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_and_ends_like_an_uninterrupted_one(
    tmp_path, capsys, monkeypatch
):
    model_a, loader, opt = make_problem()
    full = fit(model_a, loader, opt, epochs=3, **COMMON)

    def stop_mid_epoch_2(step, epoch, losses):
        if step == 6:  # 4 steps per epoch: this is the middle of epoch 2
            raise Interrupt

    model_b, loader, opt = make_problem()
    with pytest.raises(Interrupt):
        fit(
            model_b,
            loader,
            opt,
            epochs=3,
            checkpoint_dir=tmp_path,
            on_step=stop_mid_epoch_2,
            **COMMON,
        )
    assert [e for e, _ in list_checkpoints(tmp_path)] == [1]

    model_c, loader, opt = make_problem(seed=123)  # other initial weights: the checkpoint wins
    steps_run = []
    resumed = fit(
        model_c,
        loader,
        opt,
        epochs=3,
        checkpoint_dir=tmp_path,
        on_step=lambda s, e, losses: steps_run.append(s),
        **COMMON,
    )
    assert steps_run == list(range(5, 13))  # continued after epoch 1, not from scratch
    assert same_weights(model_c, model_a)
    assert without_seconds(resumed) == without_seconds(full)
    assert [e for e, _ in list_checkpoints(tmp_path)] == [3, 2]  # keeps the newest two

    # Running the finished fit again trains nothing, loads the final weights, and still
    # prints every epoch's line (the log of a resumed run is complete).
    model_d, loader, opt = make_problem(seed=7)
    again = fit(
        model_d,
        loader,
        opt,
        epochs=3,
        checkpoint_dir=tmp_path,
        on_step=lambda *a: pytest.fail("trained again"),
        **{**COMMON, "progress": "text"},
    )
    assert same_weights(model_d, model_a)
    assert without_seconds(again) == without_seconds(full)
    out = capsys.readouterr().out
    assert "resumed from" in out and "epoch 3/3  loss" in out and "already complete" in out

    # VIZLIB_RESUME=0 (a run recorded for publishing) ignores the checkpoints.
    monkeypatch.setenv("VIZLIB_RESUME", "0")
    model_e, loader, opt = make_problem()
    steps_run.clear()
    fit(
        model_e,
        loader,
        opt,
        epochs=3,
        checkpoint_dir=tmp_path,
        on_step=lambda s, e, losses: steps_run.append(s),
        **COMMON,
    )
    assert steps_run == list(range(1, 13)) and same_weights(model_e, model_a)


def test_resuming_with_another_plan_is_refused_clearly(tmp_path):
    model, loader, opt = make_problem()
    fit(model, loader, opt, epochs=1, checkpoint_dir=tmp_path, **COMMON)
    model, loader, opt = make_problem()
    with pytest.raises(ValueError, match="other settings.*epochs: checkpoint 1, now 2"):
        fit(model, loader, opt, epochs=2, checkpoint_dir=tmp_path, **COMMON)
    h = fit(model, loader, opt, epochs=2, checkpoint_dir=tmp_path, resume=False, **COMMON)
    assert len(h.epochs) == 2


KILL_MID_WRITE = r"""
import io, os, signal, sys
sys.path.insert(0, {tests!r})
import torch
from test_train import COMMON, make_problem
from vizlib.train import fit

real_save = torch.save
calls = [0]

def save_half_then_die(obj, f, *args, **kwargs):
    calls[0] += 1
    if calls[0] < 2:
        return real_save(obj, f, *args, **kwargs)
    buf = io.BytesIO()
    real_save(obj, buf)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])  # half of the epoch-2 checkpoint reaches the disk
    f.flush()
    os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)  # and the process dies mid-write

torch.save = save_half_then_die
model, loader, opt = make_problem()
fit(model, loader, opt, epochs=3, checkpoint_dir={ckpt!r}, **COMMON)
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_write_killed_halfway_leaves_the_previous_checkpoint_valid(tmp_path):
    ckpt = tmp_path / "ckpt"
    script = KILL_MID_WRITE.format(tests=str(Path(__file__).parent), ckpt=str(ckpt))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    leftovers = sorted(p.name for p in ckpt.iterdir())
    assert leftovers[1] == "epoch-0001.pt" and leftovers[0].endswith(".tmp"), leftovers
    assert "epoch-0002.pt" not in leftovers  # the half-written file never got a real name

    state, path = load_latest(ckpt)
    assert path.name == "epoch-0001.pt" and state["epoch"] == 1
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch-0001.pt"]  # stray tmp removed

    model_a, loader, opt = make_problem()
    fit(model_a, loader, opt, epochs=3, **COMMON)
    model_b, loader, opt = make_problem()
    fit(model_b, loader, opt, epochs=3, checkpoint_dir=ckpt, **COMMON)
    assert same_weights(model_a, model_b)


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
    save_atomic({"epoch": 1}, checkpoint_path(tmp_path, 1))
    save_atomic({"epoch": 2}, checkpoint_path(tmp_path, 2))
    data = checkpoint_path(tmp_path, 2).read_bytes()
    checkpoint_path(tmp_path, 2).write_bytes(data[: len(data) // 3])
    with pytest.warns(UserWarning, match="does not load"):
        state, path = load_latest(tmp_path)
    assert state == {"epoch": 1} and path.name == "epoch-0001.pt"
    assert load_latest(tmp_path / "missing") is None


def test_save_atomic_keeps_the_old_file_when_saving_fails(tmp_path, monkeypatch):
    target = checkpoint_path(tmp_path, 1)
    save_atomic({"v": torch.tensor(1)}, target)

    def broken(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"v": torch.tensor(2)}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True)["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_training_state_restores_a_run_into_fresh_objects(tmp_path):
    model, loader, opt = make_problem()
    history = fit(model, loader, opt, epochs=1, **COMMON)
    plan = {"steps": 4, "epochs": 1}
    generator = torch.Generator().manual_seed(7)
    state = training_state(
        epoch=1,
        step=4,
        plan=plan,
        model=model,
        optimizer=opt,
        scaler=None,
        history=history,
        generator=generator,
    )
    assert state["format"] == CHECKPOINT_FORMAT
    save_atomic(state, checkpoint_path(tmp_path, 1))
    saved, path = load_latest(tmp_path)  # through the disk, weights_only
    expected_draw = (torch.rand(3), torch.rand(3, generator=generator))

    model2, _, opt2 = make_problem(seed=99)  # other weights, an optimiser with no state
    generator2 = torch.Generator().manual_seed(0)
    restored, epoch, step = restore_training_state(
        saved, path, plan=dict(plan), model=model2, optimizer=opt2, generator=generator2
    )
    assert (epoch, step) == (1, 4) and restored.to_dict() == history.to_dict()
    assert same_weights(model2, model)
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )
    # the random streams continue where the saved run's stood
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            expected_draw, (torch.rand(3), torch.rand(3, generator=generator2)), strict=True
        )
    )

    with pytest.raises(ValueError, match="other settings.*steps: checkpoint 4, now 8"):
        restore_training_state(
            saved, path, plan={"steps": 8, "epochs": 1}, model=model2, optimizer=opt2
        )
    with pytest.raises(ValueError, match="another model architecture.*delete .+ to train this one afresh"):
        restore_training_state(saved, path, plan=plan, model=nn.Linear(6, 2), optimizer=opt2)
    with pytest.raises(ValueError, match="format"):
        restore_training_state(
            {**saved, "format": CHECKPOINT_FORMAT + 1},
            path,
            plan=plan,
            model=model2,
            optimizer=opt2,
        )


# -- overfit one batch -----------------------------------------------------------------


def test_overfit_one_batch_passes_a_working_model_and_leaves_it_untouched():
    model, loader, _ = make_problem()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = next(iter(loader))
    rng = torch.get_rng_state()
    report = overfit_one_batch(
        model, batch, loss_fn=F.cross_entropy, lr=1e-2, steps=60, device="cpu"
    )
    assert report.passed and report.final < report.initial / 10
    assert "passed" in str(report)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_overfit_one_batch_catches_a_broken_loss():
    model, loader, _ = make_problem()
    batch = next(iter(loader))

    def shuffled_labels(out, y):  # a classic bug: targets not aligned with the outputs
        return F.cross_entropy(out, y[torch.randperm(len(y))])

    with pytest.raises(OverfitError, match="FAILED"):
        overfit_one_batch(model, batch, loss_fn=shuffled_labels, lr=1e-2, steps=60, device="cpu")
    report = overfit_one_batch(
        model, batch, loss_fn=F.cross_entropy, lr=1e-9, steps=20, device="cpu", strict=False
    )
    assert not report.passed and "barely moved" in report.message
    with pytest.raises(ValueError, match="grad_fn"):
        overfit_one_batch(
            model, batch, loss_fn=lambda o, y: F.cross_entropy(o.detach(), y), device="cpu"
        )


def test_overfit_one_batch_reports_parameters_that_get_no_gradient():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(6, 2)
            self.unused = nn.Linear(6, 2)

        def forward(self, x):
            return self.used(x) * 0  # the output ignores every parameter's effect on the loss...

    _, loader, _ = make_problem()
    report = overfit_one_batch(
        Skips(), next(iter(loader)), loss_fn=F.cross_entropy, steps=10, device="cpu", strict=False
    )
    assert not report.passed
    assert report.frozen == ["unused.weight", "unused.bias"]
    assert "unused.weight" in report.message


# -- progress in an executed notebook ----------------------------------------------------

NOTEBOOK_CELLS = [
    """import os, torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from vizlib.train import fit
x = torch.randn(64, 6); y = (x[:, 0] > 0).long()
loader = DataLoader(TensorDataset(x, y), batch_size=16)
def run():
    model = torch.nn.Linear(6, 2)
    return fit(model, loader, torch.optim.Adam(model.parameters(), 1e-2), epochs=2,
               loss_fn=F.cross_entropy, device="cpu")""",
    "os.environ['VIZLIB_MODE'] = 'static'\nh = run()",
    "os.environ['VIZLIB_MODE'] = 'live'\nh = run()",
]


@pytest.mark.slow
def test_progress_stored_in_an_executed_notebook_is_text_not_a_widget(tmp_path, monkeypatch):
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("VIZLIB_MODE", raising=False)
    monkeypatch.delenv("VIZLIB_BOOK", raising=False)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    stored = json.dumps(nbformat.writes(nb))
    assert "application/vnd.jupyter.widget" not in stored

    def kinds(cell):
        return [(o["output_type"], sorted(o.get("data", {})), o.get("name")) for o in cell.outputs]

    static, live = nb.cells[1], nb.cells[2]
    text = "".join(o["text"] for o in static.outputs if o["output_type"] == "stream")
    lines = text.strip().splitlines()
    assert lines[0].startswith("fit: 2 epochs x 4 steps")
    assert lines[1].startswith("epoch 1/2  loss ") and lines[2].startswith("epoch 2/2  loss ")
    assert "\r" not in text  # no carriage-return bar frames
    assert [k for k in kinds(static) if k[0] != "stream"] == [
        ("display_data", ["image/png", "text/plain"], None)
    ]

    displays = [o for o in live.outputs if o["output_type"] == "display_data"]
    bar, curve = displays
    assert "<progress" in bar["data"]["text/html"]
    assert bar["data"]["text/plain"].startswith("[" + "#" * 30 + "] done: 2 epochs")
    assert "image/png" in curve["data"]  # the final curve, not the placeholder
    live_text = "".join(o["text"] for o in live.outputs if o["output_type"] == "stream")
    assert "epoch 2/2  loss " in live_text
