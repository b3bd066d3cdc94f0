"""Where a chapter's data comes from, and the checks every chapter's data function makes.

The chapters train on generated scenes by default (no network) and on a real data set
when asked (an opt-in download). Each chapter's data function (``segmentation_data``,
``localisation_data``, ...) takes the same arguments; :func:`check_data_args` checks them
once for all of them.
"""

from __future__ import annotations

from .._checks import check_choice, check_positive_int

__all__ = ["DATA_SOURCES", "check_data_args"]

#: ``"scenes"``: the generated scenes (the default); ``"voc"``: PASCAL VOC 2012 (opt-in).
DATA_SOURCES = ("scenes", "voc")


def check_data_args(
    source, image_size, train_images, val_images, seed, download
) -> tuple[int, int, int, int]:
    """Check the arguments of a chapter's data function.

    Args:
        source (str): one of :data:`DATA_SOURCES`.
        image_size (int): side of the square images, > 0.
        train_images, val_images (int): set sizes, > 0.
        seed (int): >= 0.
        download (bool): whether a real data set may be fetched.

    Returns:
        tuple[int, int, int, int]: ``image_size, train_images, val_images, seed``, checked.

    Raises:
        ValueError: naming the first bad argument and what was expected.
    """
    check_choice("source", source, DATA_SOURCES)
    if not isinstance(download, bool):
        raise ValueError(f"download must be True or False, got {download!r}")
    return (
        check_positive_int("image_size", image_size),
        check_positive_int("train_images", train_images),
        check_positive_int("val_images", val_images),
        check_positive_int("seed", seed, allow_zero=True),
    )
