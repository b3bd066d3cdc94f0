"""``fit`` under ``torchrun``, proven on CPU processes (gloo).

Each test launches ``torchrun`` on ``tests/distributed_train.py`` (a real launch: the
elastic agent, the rendezvous, the worker processes) and compares what rank 0 wrote with
the same script's run in this process. Every launch has a timeout, so that a hang fails
the test instead of stopping the suite. Two launches (~25-30 s each on 2 cores):

* two "nodes" (two torchrun agents, one process each, c10d rendezvous on localhost),
  uninterrupted: the same weights and per-step losses as one process at twice the batch;
  then, in the same processes, a Faster R-CNN whose rank 1 reads only images without
  objects: no hang, no error;
* two processes on one node, rank 1 killed (SIGKILL) mid-epoch, ``--max-restarts=1``:
  every process resumes from the last checkpoint and ends with the same weights.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distributed_train  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "distributed_train.py"
TIMEOUT = 300  # seconds per launch; a hang fails here


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _run(cmd: list[str], log: Path) -> str:
    try:
        with open(log, "w") as f:
            proc = subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), timeout=TIMEOUT
            )
    except subprocess.TimeoutExpired:
        pytest.fail(f"torchrun hung (> {TIMEOUT} s):\n{log.read_text()[-3000:]}")
    text = log.read_text()
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{text[-3000:]}"
    return text


@pytest.fixture(scope="module")
def reference():
    """One process at batch 8: the weights and per-step losses every launch must equal."""
    torch.set_num_threads(1)
    return distributed_train.reference(batch_size=8)


def _assert_same_run(out: Path, reference) -> None:
    weights, steps = reference
    got = torch.load(out / "final.pt", weights_only=True)
    for name, w in weights.items():
        torch.testing.assert_close(got["model"][name], w, rtol=1e-5, atol=1e-6, msg=name)
    assert got["steps"]["step"] == steps["step"]
    # the recorded losses are the mean over the processes: the one-process batch's loss
    torch.testing.assert_close(
        torch.tensor(got["steps"]["loss"]), torch.tensor(steps["loss"]), rtol=1e-5, atol=1e-6
    )


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """Two torchrun agents on this machine (``--nnodes=2``), one process each."""
    out = tmp_path_factory.mktemp("two_nodes")
    port = _free_port()
    agents = []
    for node in range(2):
        cmd = _torchrun(
            "--nnodes=2",
            "--nproc_per_node=1",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint=127.0.0.1:{port}",
            "--rdzv_id=vizlib-test",
            str(SCRIPT),
            str(out),
            "--batch-size=4",
            "--detector",
        )
        log = open(out / f"node{node}.log", "w")  # noqa: SIM115 - closed below
        agents.append(
            (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env()), log)
        )
    try:
        codes = [p.wait(timeout=TIMEOUT) for p, _ in agents]
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun on two nodes hung")
    finally:
        for p, log in agents:
            p.kill() if p.poll() is None else None
            log.close()
    logs = [(out / f"node{n}.log").read_text() for n in range(2)]
    assert codes == [0, 0], f"exit codes {codes}:\n" + "\n".join(x[-2000:] for x in logs)
    return out, logs


@pytest.mark.slow
def test_two_processes_take_the_step_of_one_at_double_batch(two_nodes, reference):
    out, _ = two_nodes
    _assert_same_run(out, reference)


@pytest.mark.slow
def test_two_nodes_train_together_and_only_rank0_reports(two_nodes):
    _, logs = two_nodes
    shown = [log for log in logs if "x 2 processes (DDP)" in log]
    assert len(shown) == 1, "rank 0 alone shows progress, and it saw a world of 2"
    assert all("epoch" not in log for log in logs if log not in shown)


@pytest.mark.slow
def test_a_killed_rank_resumes_from_the_last_checkpoint(tmp_path, reference):
    checkpoints = tmp_path / "checkpoints"
    log = _run(
        _torchrun(
            "--standalone",
            "--nproc_per_node=2",
            "--max-restarts=1",
            str(SCRIPT),
            str(tmp_path),
            "--batch-size=4",
            f"--checkpoints={checkpoints}",
            "--kill-rank-at-step=12",  # mid-way through epoch 2 of 3 (8 steps each)
        ),
        tmp_path / "torchrun.log",
    )
    assert "exitcode: -9" in log, "rank 1 was killed"
    assert "resumed from" in log and "epoch-0001.pt" in log
    _assert_same_run(tmp_path, reference)
    # rank 0 wrote every checkpoint whole: each loads, and no temporary file is left
    files = sorted(p.name for p in checkpoints.iterdir())
    assert files == ["epoch-0002.pt", "epoch-0003.pt"], files
    for name in files:
        state = torch.load(checkpoints / name, weights_only=True)
        assert state["plan"]["world_size"] == 2


@pytest.mark.slow
def test_a_detector_whose_rank_sees_no_object_does_not_hang(two_nodes):
    out, _ = two_nodes
    steps = torch.load(out / "detector.pt", weights_only=True)["steps"]
    assert steps["step"] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(steps["loss"])))


@pytest.mark.parametrize("world", ["1", ""])
def test_one_process_without_torchrun_is_not_distributed(monkeypatch, world):
    from vizlib.train.distributed import join

    monkeypatch.setenv("WORLD_SIZE", world)
    assert join("cpu") is None


def test_a_world_size_without_torchrun_is_a_clear_error(monkeypatch):
    from vizlib.train.distributed import join

    monkeypatch.setenv("WORLD_SIZE", "2")
    for var in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        join("cpu")


def test_fit_under_torchrun_takes_a_data_loader(monkeypatch):
    from vizlib.train.distributed import Distributed, shard_loader

    run = Distributed(rank=0, local_rank=0, world_size=2, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="DataLoader"):
        shard_loader([(torch.zeros(1), torch.zeros(1))], run)
    loader = torch.utils.data.DataLoader(distributed_train.tiny_data(), batch_size=4, shuffle=True)
    sharded = shard_loader(loader, run, seed=3)
    assert len(sharded) == 8 and sharded.sampler.shuffle and sharded.sampler.seed == 3
