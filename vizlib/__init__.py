"""vizlib: the helper library of the book.

Three layers, imports only point downwards (see DESIGN.md):

1. core maths, pure torch/numpy: ``boxes``, ``anchors``, ``nms``, ``metrics``,
   ``conv_algebra``, ``receptive_field``, ``losses``;
2. drawing: ``viz``;
3. widgets: ``widgets``.

This module holds the few settings every page and chapter reads: the run profile,
the device, the seed, and how figures are displayed; ``start_lesson`` (in ``session``)
is the one setup call of every lesson.
"""

from __future__ import annotations

import os
import random
import sys

__version__ = "0.1.0"

PROFILES = ("smoke", "full")
MODES = ("live", "static")

__all__ = [
    "__version__",
    "profile",
    "device",
    "seed_everything",
    "display_mode",
    "start_lesson",
    "Lesson",
    "PROFILES",
    "in_colab",
]


def profile() -> str:
    """The run profile, read from the environment variable ``VIZLIB_PROFILE``.

    ``full`` (the default) trains for real; ``smoke`` shrinks sizes and steps so that
    every cell still runs, in seconds, on a CPU (CI uses it).

    Raises:
        ValueError: if ``VIZLIB_PROFILE`` is set to anything else.
    """
    value = os.environ.get("VIZLIB_PROFILE", "full").strip().lower() or "full"
    if value not in PROFILES:
        raise ValueError(
            f"VIZLIB_PROFILE={os.environ.get('VIZLIB_PROFILE')!r} is not a profile; "
            f"expected one of {PROFILES} (unset means 'full')"
        )
    return value


def device():
    """The best available ``torch.device``: cuda, then mps, then cpu."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and torch (all devices) so a run repeats; returns the seed.

    On a CPU the same seed gives the same numbers. On a GPU some kernels stay
    non-deterministic (atomic adds); chapters say so where it matters.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def display_mode() -> str:
    """How widgets draw: ``live`` (ipywidgets controls driving a kernel) or ``static``.

    ``static`` renders a plotly figure whose slider steps were computed ahead, so that a
    reader of the published web book drags the slider with no kernel. The environment
    variable ``VIZLIB_MODE`` (``live`` | ``static``) overrides; while the book is built or
    a lesson executed for publishing (``VIZLIB_BOOK=1``) the default is ``static``. Unset, it is ``live`` inside a Jupyter kernel and
    ``static`` anywhere else.
    """
    value = os.environ.get("VIZLIB_MODE", "").strip().lower()
    if not value and os.environ.get("VIZLIB_BOOK", "").strip().lower() in ("1", "true", "yes"):
        value = "static"
    if value:
        if value not in MODES:
            raise ValueError(
                f"VIZLIB_MODE={value!r} is not a display mode; expected one of {MODES} "
                "(or unset, to choose automatically)"
            )
        return value
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return "static"

    if shell is not None and getattr(shell, "kernel", None) is not None:
        return "live"
    return "static"


def in_colab() -> bool:
    """True inside a Google Colab runtime (its kernel imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def _setup_colab() -> None:
    """In Colab, turn on its custom widget manager, once per kernel, at ``import vizlib``.

    Colab renders ipywidgets' own controls without help, but third-party widgets (plotly's
    ``FigureWidget`` is one) only after ``google.colab.output.enable_custom_widget_manager()``.
    Every page imports vizlib in its setup cell, so doing it here keeps that call out of the
    notebooks. A failure warns and leaves the rest of vizlib working.
    """
    if not in_colab():
        return
    try:
        from google.colab import output

        output.enable_custom_widget_manager()
    except Exception as err:  # a widget manager must never break the import
        import warnings

        warnings.warn(
            f"vizlib: could not enable Colab's custom widget manager ({err!r}); "
            "third-party widgets may not render",
            RuntimeWarning,
            stacklevel=2,
        )


# After the names it uses are defined: session imports profile, device and seed_everything.
from .session import Lesson, start_lesson  # noqa: E402


def _setup_book_rendering() -> None:
    # While the book is built (VIZLIB_BOOK=1) plain fig.show() must emit text/html.
    from .display import building_book, use_book_renderer

    if building_book():
        use_book_renderer()


_setup_book_rendering()
_setup_colab()
