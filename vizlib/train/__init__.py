"""Training: the loop every chapter shares, and the checks around it.

* :func:`fit` trains a model and returns a :class:`History` (``loop.py``);
* :func:`overfit_one_batch` checks in seconds that a model and its loss can learn
  at all, before the real training (``overfit.py``);
* :func:`lr_factor` is the warm-up + cosine learning-rate schedule (``schedule.py``);
* ``checkpoint.py`` writes and reads the crash-safe checkpoints ``fit`` resumes from,
  and builds and applies what they hold (:func:`training_state`);
* ``distributed.py`` lets the same ``fit`` call run under ``torchrun`` on several
  processes (DistributedDataParallel; see ``book/distributed``);
* ``progress.py`` decides how progress shows: live bar and curve in a notebook,
  plain text lines in the published book, a tqdm bar in a terminal.

A chapter's training cell::

    from vizlib.train import fit, overfit_one_batch

    overfit_one_batch(model, next(iter(train_loader)))      # seconds; raises if broken
    history = fit(model, train_loader, torch.optim.AdamW(model.parameters(), lr=1e-3),
                  epochs=10, warmup_steps=0.05, clip_grad_norm=1.0,
                  checkpoint_dir="checkpoints/fcn", seed=0,
                  val_fn=lambda m: {"mIoU": evaluate_segmentation(m, val_loader, 3)["mIoU"]})
    history.plot()
"""

from .checkpoint import load_latest, restore_training_state, save_atomic, training_state
from .history import History
from .loop import FitConfig, compute_losses, fit, move_to, split_batch
from .overfit import OverfitError, OverfitReport, overfit_one_batch
from .schedule import lr_factor

__all__ = [
    "FitConfig",
    "History",
    "OverfitError",
    "OverfitReport",
    "compute_losses",
    "fit",
    "load_latest",
    "lr_factor",
    "move_to",
    "overfit_one_batch",
    "restore_training_state",
    "save_atomic",
    "split_batch",
    "training_state",
]
