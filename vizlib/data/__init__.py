"""Data for every chapter: generated scenes (default) and opt-in real data sets."""

from .scenes import *  # noqa: F401,F403
from .scenes import __all__ as _scenes_all

__all__ = list(_scenes_all)
