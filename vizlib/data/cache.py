"""Keep generated scenes so that an epoch does not regenerate them.

Generation is deterministic, so a cache never changes what a data set returns, only
how fast: at 64 px a scene takes about 1.5 ms on one core (a GPU training a
small model eats far more per second than that, so the data loader keeps them); at
256 px it is several times slower, and a folder on disk lets DataLoader workers and
later runs share the work. See ``benchmarks/bench_scenes.py`` for the measured rates.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .scenes import Scene, SceneConfig, make_scene

__all__ = ["SceneCache"]

_ARRAYS = ("image", "semantic", "instances", "labels", "boxes", "keypoints")


class SceneCache:
    """Scenes of one stream ``(seed, config)``, generated once, then served from memory
    (and, with a folder, from ``.npz`` files on disk).

    Args:
        seed (int): the stream.
        config (SceneConfig): the generator settings.
        num_objects (int, optional): forced number of things (localisation view).
        store (bool | str | Path): ``False``: no cache; ``True``: memory; a folder:
            memory and disk (files are named after the seed, the index and a hash of
            the config, so different settings never collide).
    """

    def __init__(self, seed: int, config: SceneConfig, num_objects: int | None = None, store=True):
        self.seed, self.config, self.num_objects = seed, config, num_objects
        if not isinstance(store, (bool, str, Path)):
            raise ValueError(f"cache must be True, False or a folder path, got {store!r}")
        self.memory: dict[int, Scene] | None = {} if store is not False else None
        self.folder = Path(store) if isinstance(store, (str, Path)) else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        key = repr(sorted(asdict(config).items())) + f"|{num_objects}"
        self._tag = hashlib.sha1(key.encode()).hexdigest()[:10]

    def _path(self, index: int) -> Path:
        return self.folder / f"scene_s{self.seed}_i{index}_{self._tag}.npz"

    def get(self, index: int) -> Scene:
        if self.memory is not None and index in self.memory:
            return self.memory[index]
        scene = None
        if self.folder is not None and self._path(index).exists():
            with np.load(self._path(index)) as data:
                scene = Scene(
                    **{k: data[k] for k in _ARRAYS}, seed=self.seed, index=index, config=self.config
                )
        if scene is None:
            scene = make_scene(self.seed, index, self.config, num_objects=self.num_objects)
            if self.folder is not None:
                # write then rename, so a reader in another process never sees half a file
                tmp = self._path(index).with_suffix(".tmp.npz")
                np.savez(tmp, **{k: getattr(scene, k) for k in _ARRAYS})
                tmp.replace(self._path(index))
        if self.memory is not None:
            self.memory[index] = scene
        return scene
