"""A region captioner: RoIAlign features of each box, a GRU that writes its caption.

This is the head DenseCap (Johnson et al. 2016) puts where Faster R-CNN has its box
head: the same RoI features (here :func:`torchvision.ops.roi_align`, equal to
``vizlib.roi.roi_align``) feed a recurrent language model instead of a classifier.
The pieces:

* :class:`TinyBackbone`: four 3x3 convolutions, stride 4 overall (the first two have
  stride 2, which keeps it cheap): ``[B, 3, H, W]`` to ``[B, C, H/4, W/4]``;
* :class:`CaptionDecoder`: a GRU language model conditioned on one feature vector per
  region; :meth:`CaptionDecoder.forward` trains with *teacher forcing* (the reference
  words are its inputs), :meth:`CaptionDecoder.greedy` writes a caption one most-likely
  word at a time until ``<end>``;
* :class:`RegionCaptioner`: backbone, RoIAlign, a region encoder that also sees the box
  (RoIAlign resizes every region to the same grid, so "small" or "large" can only come
  from the box), optional *context* (one self-attention layer over the regions of the same
  image, so that a region can describe its neighbour), and the decoder;
* :func:`caption_loss`: cross-entropy per word, ``<pad>`` ignored.

Token ids follow ``vizlib.data.captions.Vocabulary``: ``<pad>`` = 0, ``<start>`` = 1,
``<end>`` = 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from .._checks import check_positive_int

__all__ = [
    "PAD_ID",
    "START_ID",
    "END_ID",
    "TinyBackbone",
    "CaptionDecoder",
    "RegionCaptioner",
    "caption_loss",
]

PAD_ID, START_ID, END_ID = 0, 1, 2


def _check_features(features, dim: int) -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ValueError(f"features must be a Tensor[K, {dim}], got {shape}")
    if features.shape[1] != dim:
        raise ValueError(f"features must have {dim} columns, got {features.shape[1]}")
    if not torch.isfinite(features).all():
        raise ValueError("features must be finite (no NaN or inf)")
    return features


def _check_tokens(tokens, vocab_size: int, k: int | None = None) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        raise ValueError("tokens must be an int64 Tensor[K, T] of token ids")
    if tokens.dtype != torch.int64:
        raise ValueError(f"tokens must be int64, got {tokens.dtype}")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}")
    if k is not None and tokens.shape[0] != k:
        raise ValueError(f"tokens has {tokens.shape[0]} rows but there are {k} regions")
    return tokens


class TinyBackbone(nn.Sequential):
    """Four 3x3 conv + BatchNorm + ReLU layers; the 1st and 2nd have stride 2.

    Args:
        channels (int): output channels ``C``.

    Shapes: ``[B, 3, H, W]`` -> ``[B, C, H/4, W/4]`` (``stride = 4``).
    """

    stride = 4

    def __init__(self, channels: int = 64):
        c = check_positive_int("channels", channels)
        layers = []
        for cin, cout, s in ((3, c // 2, 2), (c // 2, c, 2), (c, c, 1), (c, c, 1)):
            layers += [nn.Conv2d(cin, cout, 3, s, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        super().__init__(*layers)
        self.out_channels = c


class CaptionDecoder(nn.Module):
    """A GRU language model that starts from one feature vector per region.

    The feature sets the GRU's first hidden state; each step reads the previous word's
    embedding and predicts the next word.

    Args:
        vocab_size (int): number of token ids ``V`` (pad, start and end included).
        feature_dim (int): size ``F`` of a region's feature vector.
        hidden (int): GRU state size.
        embed (int): word embedding size.
    """

    def __init__(self, vocab_size: int, feature_dim: int, hidden: int = 128, embed: int = 32):
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        if self.vocab_size <= END_ID:
            raise ValueError(f"vocab_size must be > {END_ID} (pad, start, end), got {vocab_size}")
        self.feature_dim = check_positive_int("feature_dim", feature_dim)
        self.init = nn.Linear(self.feature_dim, check_positive_int("hidden", hidden))
        self.embed = nn.Embedding(self.vocab_size, check_positive_int("embed", embed))
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, self.vocab_size)

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the inputs are ``<start>`` then the reference words.

        Args:
            features (Tensor[K, F]): one vector per region.
            tokens (Tensor[K, T] int64): the reference captions, ending with ``<end>``
                and padded with ``<pad>`` (``Vocabulary.encode``).

        Returns:
            Tensor[K, T, V]: logits; row ``t`` predicts ``tokens[:, t]``.
        """
        features = _check_features(features, self.feature_dim)
        tokens = _check_tokens(tokens, self.vocab_size, len(features))
        start = tokens.new_full((len(tokens), 1), START_ID)
        inputs = torch.cat([start, tokens[:, :-1]], dim=1)  # [K, T]: shifted right
        h0 = torch.tanh(self.init(features))[None]  # [1, K, hidden]
        states, _ = self.gru(self.embed(inputs), h0)  # [K, T, hidden]
        return self.out(states)  # [K, T, V]

    @torch.no_grad()
    def greedy(self, features: torch.Tensor, max_len: int = 12) -> torch.Tensor:
        """Write captions one most-likely word at a time.

        Args:
            features (Tensor[K, F]): one vector per region.
            max_len (int): at most this many tokens per caption (``<end>`` included).

        Returns:
            Tensor[K, L] int64, ``L <= max_len``: each row's words, then ``<end>``, then
            ``<pad>``. Stops as soon as every row has written ``<end>``.
        """
        features = _check_features(features, self.feature_dim)
        max_len = check_positive_int("max_len", max_len)
        k = len(features)
        h = torch.tanh(self.init(features))[None]  # [1, K, hidden]
        word = torch.full((k, 1), START_ID, dtype=torch.int64, device=features.device)
        done = torch.zeros(k, dtype=torch.bool, device=features.device)
        out = []
        for _ in range(max_len):
            state, h = self.gru(self.embed(word), h)  # [K, 1, hidden]
            word = self.out(state).argmax(-1)  # [K, 1]
            word = word.masked_fill(done[:, None], PAD_ID)  # finished rows write <pad>
            out.append(word)
            done |= word[:, 0] == END_ID
            if done.all():
                break
        if not out:
            return torch.zeros(k, 0, dtype=torch.int64)
        return torch.cat(out, dim=1)


class RegionCaptioner(nn.Module):
    """Backbone, RoIAlign per box, region encoder (+ box, + optional context), decoder.

    Args:
        vocab_size (int): number of token ids.
        channels (int): backbone channels ``C``.
        pool (int): RoIAlign output side ``P`` (a region becomes ``C x P x P``).
        feature_dim (int): region feature size ``F`` fed to the decoder.
        context (bool): let the regions of one image attend to each other (one
            ``nn.MultiheadAttention`` layer) before decoding; needed to name a neighbour.
        hidden (int): GRU state size.
    """

    def __init__(
        self,
        vocab_size: int,
        channels: int = 64,
        pool: int = 4,
        feature_dim: int = 128,
        context: bool = True,
        hidden: int = 128,
    ):
        super().__init__()
        self.backbone = TinyBackbone(channels)
        self.pool = check_positive_int("pool", pool)
        f = check_positive_int("feature_dim", feature_dim)
        self.region = nn.Sequential(nn.Linear(channels * pool * pool + 4, f), nn.ReLU())
        self.context = bool(context)
        if self.context:
            self.where = nn.Linear(4, f)  # box position, added before attention
            self.attention = nn.MultiheadAttention(f, num_heads=4, batch_first=True)
            self.norm = nn.LayerNorm(f)
        self.decoder = CaptionDecoder(vocab_size, f, hidden=hidden)

    def region_features(self, images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """One feature vector per box.

        Args:
            images (Tensor[B, 3, H, W]): float images.
            boxes (list of B Tensor[Ki, 4]): xyxy boxes in image pixels, per image.

        Returns:
            Tensor[K, F]: ``K = sum(Ki)``, in the order of the boxes.
        """
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError("images must be a float Tensor[B, 3, H, W]")
        if not isinstance(boxes, (list, tuple)) or len(boxes) != len(images):
            raise ValueError(
                f"boxes must be a list with one Tensor[Ki, 4] per image ({len(images)})"
            )
        for b in boxes:
            if not isinstance(b, torch.Tensor) or b.dim() != 2 or b.shape[1] != 4:
                raise ValueError("each entry of boxes must be a Tensor[Ki, 4] (xyxy)")
            if len(b) and ((b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any()):
                raise ValueError("boxes must have x1 <= x2 and y1 <= y2")
        h, w = images.shape[-2:]
        fmap = self.backbone(images)  # [B, C, H/4, W/4]
        boxes = [b.to(fmap.dtype) for b in boxes]
        pooled = roi_align(fmap, boxes, self.pool, 1 / self.backbone.stride, 2, aligned=True)
        scale = images.new_tensor([w, h, w, h])
        where = torch.cat(boxes) / scale if len(pooled) else images.new_zeros(0, 4)  # [K, 4]
        feats = self.region(torch.cat([pooled.flatten(1), where], dim=1))  # [K, F]
        if not self.context or not len(feats):
            return feats
        counts = [len(b) for b in boxes]
        tokens = feats + self.where(where)
        padded = nn.utils.rnn.pad_sequence(list(tokens.split(counts)), batch_first=True)
        n = torch.tensor(counts, device=feats.device)
        pad = torch.arange(padded.shape[1], device=feats.device)[None] >= n[:, None]  # [B, N]
        keys = pad.clone()
        keys[:, 0] &= n > 0  # an image without boxes: one dummy key, no all-masked row
        mixed, _ = self.attention(padded, padded, padded, key_padding_mask=keys)  # [B, N, F]
        mixed = mixed[~pad]  # [K, F] in the boxes' order
        return self.norm(feats + mixed)

    def forward(self, images, boxes, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[K, T, V]`` for the reference ``tokens [K, T]``."""
        return self.decoder(self.region_features(images, boxes), tokens)

    @torch.no_grad()
    def caption(self, images, boxes, max_len: int = 12) -> torch.Tensor:
        """Greedy captions, ``Tensor[K, L]`` token ids (see :meth:`CaptionDecoder.greedy`)."""
        return self.decoder.greedy(self.region_features(images, boxes), max_len)


def caption_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per reference word (``<end>`` counts, ``<pad>`` does not).

    Args:
        logits (Tensor[K, T, V]): the decoder's output.
        tokens (Tensor[K, T] int64): the reference token ids.

    Returns:
        Tensor[]: the loss.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError("logits must be a Tensor[K, T, V]")
    tokens = _check_tokens(tokens, logits.shape[-1])
    if tokens.shape != logits.shape[:2]:
        raise ValueError(
            f"tokens {tuple(tokens.shape)} must match logits' first two dims "
            f"{tuple(logits.shape[:2])}"
        )
    if not (tokens != PAD_ID).any():
        raise ValueError("tokens hold no word to score (all <pad>)")
    return F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), ignore_index=PAD_ID)
