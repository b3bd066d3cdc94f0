"""Widget: the focal loss against p_t, and who carries the total loss in a dense detector.

A one-stage detector scores about a hundred thousand anchors per image, nearly all of
them easy background. With cross-entropy each easy example adds a small loss, but there
are so many that together they outweigh the few hard ones. The focal loss (Lin et al.,
2017) multiplies cross-entropy by ``(1 - p_t) ** gamma``, which nearly silences the easy
examples (``p_t`` near 1); ``alpha`` weighs positives against negatives.

The left panel is the paper's Figure 1: loss against ``p_t`` for several ``gamma``. The
right panel scores a synthetic dense batch (100 000 negatives, mostly easy, and 100
positives) and shows which share of the total loss comes from the easy negatives, the
hard negatives and the positives, with cross-entropy and with the chosen focal loss;
``FocalLossWidget(batch=...)`` shows a detector's real scores there instead (the RetinaNet
chapter feeds it its model's).
Every loss value comes from :mod:`vizlib.losses`.
"""

from __future__ import annotations

import torch

from vizlib import losses
from vizlib.viz import grids

from ._base import Control, Widget

__all__ = ["FocalLossWidget", "GAMMAS", "GROUPS", "check_batch", "dense_batch", "loss_shares"]

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
N_EASY_NEG, N_HARD_NEG, N_POS = 99_000, 1_000, 100
GROUPS = ("easy negatives", "hard negatives", "positives")
_GROUP_COLORS = ("#56B4E9", "#0072B2", "#D55E00")
_GAMMA_COLORS = ("#000000", "#CC79A7", "#009E73", "#0072B2", "#E69F00")

_BATCH: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def dense_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed synthetic batch of anchor scores, like one image of a dense detector.

    99 000 easy negatives (logit about -5: ``p_t`` about 0.99), 1 000 hard negatives
    (logit about 0) and 100 positives (logit about 0.5), drawn from a seeded generator.

    Returns:
        (Tensor[N] float32 logits, Tensor[N] float32 targets in {0, 1}, Tensor[N] int64
        group index into :data:`GROUPS`), N = 100 100.
    """
    global _BATCH
    if _BATCH is None:
        g = torch.Generator().manual_seed(0)
        logits = torch.cat(
            [
                torch.randn(N_EASY_NEG, generator=g) * 1.0 - 5.0,
                torch.randn(N_HARD_NEG, generator=g) * 1.5 + 0.0,
                torch.randn(N_POS, generator=g) * 1.5 + 0.5,
            ]
        )
        targets = torch.cat([torch.zeros(N_EASY_NEG + N_HARD_NEG), torch.ones(N_POS)])
        groups = torch.cat(
            [torch.zeros(N_EASY_NEG), torch.ones(N_HARD_NEG), torch.full((N_POS,), 2.0)]
        ).long()
        _BATCH = (logits, targets, groups)
    return _BATCH


def check_batch(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of scores for :func:`loss_shares`: ``(logits [N], targets [N] in {0, 1},
    groups [N] int64 in 0 .. 2)`` (indices into :data:`GROUPS`), e.g. a detector's real
    scores; ValueError otherwise."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 3:
        raise ValueError("batch must be (logits [N], targets [N], groups [N])")
    logits, targets, groups = (torch.as_tensor(t) for t in batch)
    if logits.dim() != 1 or targets.shape != logits.shape or groups.shape != logits.shape:
        raise ValueError(
            f"batch must hold three tensors [N] of one length, got "
            f"{tuple(logits.shape)}, {tuple(targets.shape)}, {tuple(groups.shape)}"
        )
    if len(logits) == 0 or not bool(torch.isfinite(logits).all()):
        raise ValueError("batch logits must be finite, and at least one")
    if bool(((groups < 0) | (groups >= len(GROUPS))).any()):
        raise ValueError(f"groups must be indices into {GROUPS}")
    return logits.float(), targets.float(), groups.long()


def loss_shares(gamma: float, alpha: float | None, batch=None) -> tuple[list[float], float]:
    """Share of the total loss of :func:`dense_batch` from each group of :data:`GROUPS`.

    Args:
        gamma (float): focusing exponent, >= 0 (0 and ``alpha=None``: cross-entropy).
        alpha (float or None): weight of the positives, in [0, 1], or None.
        batch (tuple, optional): ``(logits, targets, groups)`` to score instead of
            :func:`dense_batch` (see :func:`check_batch`).

    Returns:
        (list of 3 floats summing to 1, the total loss as a float)
    """
    logits, targets, groups = dense_batch() if batch is None else check_batch(batch)
    loss = losses.sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma)  # [N]
    per_group = torch.zeros(len(GROUPS), dtype=loss.dtype).index_add_(0, groups, loss)  # [3]
    total = float(per_group.sum())
    return (per_group / total).tolist(), total


class FocalLossWidget(Widget):
    """Focal loss against ``p_t`` for a ``gamma`` slider (and ``alpha``), with loss shares.

    Args:
        batch (tuple, optional): ``(logits [N], targets [N], groups [N])`` whose loss
            shares the right panel shows (a detector's real scores, see
            :func:`check_batch`); default the synthetic :func:`dense_batch`.
        **defaults: initial control values.
    """

    controls = [
        Control("gamma", "γ (gamma)", values=list(GAMMAS), default=2.0),
        Control("alpha", "α (alpha)", values=["none", 0.25, 0.5, 0.75], default="none"),
    ]

    def __init__(self, batch=None, **defaults):
        self.batch = None if batch is None else check_batch(batch)
        super().__init__(**defaults)

    def figure(self, gamma=2.0, alpha="none"):
        alpha = None if alpha == "none" else alpha  # "none": no class weighting
        p_t = torch.linspace(0.01, 1.0, 100)  # [100]
        curves = {g: losses.focal_loss_curve(p_t, gamma=g) for g in GAMMAS}
        ce_shares, ce_total = loss_shares(0.0, None, self.batch)
        fl_shares, fl_total = loss_shares(gamma, alpha, self.batch)
        groups = (dense_batch() if self.batch is None else self.batch)[2]
        n_easy = f"{int((groups == 0).sum()):,}".replace(",", " ")
        # how much the factor (1 - p_t)^gamma shrinks a well-classified example
        at = torch.tensor([0.9, 0.968])
        ratio = losses.focal_loss_curve(at, gamma=0.0) / losses.focal_loss_curve(at, gamma=gamma)
        alpha_text = "none" if alpha is None else f"{alpha:g}"
        title = (
            f"focal loss, γ = {gamma:g}, α = {alpha_text}: the {n_easy} easy negatives carry "
            f"{100 * fl_shares[0]:.1f}% of the loss (cross-entropy: {100 * ce_shares[0]:.1f}%)"
            f"<br><sub>at p_t = 0.9 the loss is {float(ratio[0]):.0f}× smaller than cross-entropy, "
            f"at p_t = 0.968 {float(ratio[1]):.0f}×; total loss of the batch: "
            f"CE {ce_total:.0f}, focal {fl_total:.1f}</sub>"
        )
        layout = grids.panel_layout(
            [(14, 15), (14, 13)],
            ["loss against p_t", "share of the total loss"],
            grid_panels=[False, False],
            cell=20.0,
            gap=135,
            top=105,
            bottom=100,
            title=title,
        )
        layout["xaxis"].update(title={"text": "p_t, probability of the true class"}, range=[0, 1.0])
        layout["yaxis"].update(title={"text": "loss"}, range=[0, 5.0])
        layout["xaxis2"].update(
            range=[0, 100], title={"text": "% of the total loss"}, ticksuffix="%"
        )
        layout["yaxis2"].update(autorange="reversed")
        layout["barmode"] = "stack"
        layout["showlegend"] = True
        layout["legend"] = {
            "x": layout["xaxis"]["domain"][1],
            "xanchor": "right",
            "y": 1.0,
            "yanchor": "top",
            "font": {"size": 11},
            "bgcolor": "rgba(255,255,255,0.8)",
        }

        data = []
        x = grids.compact(p_t, 3)
        for g, color in zip(GAMMAS, _GAMMA_COLORS, strict=True):
            chosen = g == gamma
            data.append(
                dict(
                    type="scatter",
                    x=x,
                    y=grids.compact(curves[g], 4),
                    xaxis="x",
                    yaxis="y",
                    mode="lines",
                    name=f"γ = {g:g}" + (" (CE)" if g == 0 else ""),
                    line={"color": color, "width": 3.5 if chosen else 1.3},
                    opacity=1.0 if chosen else 0.5,
                    hovertemplate="p_t %{x}: loss %{y}<extra>γ = " + f"{g:g}" + "</extra>",
                )
            )
        # with alpha, the chosen gamma's curve splits: positives weigh alpha, negatives 1 - alpha
        weighted = {"pos": [], "neg": []}
        if alpha is not None:
            weighted["pos"] = grids.compact(
                losses.focal_loss_curve(p_t, gamma=gamma, alpha_t=alpha), 4
            )
            weighted["neg"] = grids.compact(
                losses.focal_loss_curve(p_t, gamma=gamma, alpha_t=1 - alpha), 4
            )
        xw = x if alpha is not None else []
        data.append(
            dict(
                type="scatter",
                x=xw,
                y=weighted["pos"],
                xaxis="x",
                yaxis="y",
                mode="lines",
                name=f"γ = {gamma:g}, positive (α_t = α)",
                showlegend=alpha is not None,
                line={"color": "#D55E00", "width": 2.5},
            )
        )
        data.append(
            dict(
                type="scatter",
                x=xw,
                y=weighted["neg"],
                xaxis="x",
                yaxis="y",
                mode="lines",
                name=f"γ = {gamma:g}, negative (α_t = 1 − α)",
                showlegend=alpha is not None,
                line={"color": "#D55E00", "width": 2.5, "dash": "dash"},
            )
        )
        bars = ["cross-entropy", f"focal γ={gamma:g}, α={alpha_text}"]
        for k, (group, color) in enumerate(zip(GROUPS, _GROUP_COLORS, strict=True)):
            shares = [round(100 * ce_shares[k], 2), round(100 * fl_shares[k], 2)]
            data.append(
                dict(
                    type="bar",
                    orientation="h",
                    x=shares,
                    y=bars,
                    xaxis="x2",
                    yaxis="y2",
                    name=group,
                    marker={"color": color},
                    text=[f"{s:.0f}%" if s >= 8 else "" for s in shares],
                    textposition="inside",
                    textangle=0,
                    insidetextanchor="middle",
                    legend="legend2",
                    hovertemplate="%{y}: " + group + " %{x:.1f}%<extra></extra>",
                )
            )
        # a second legend, for the groups, under the bars
        layout["legend2"] = {
            "x": layout["xaxis2"]["domain"][0],
            "xanchor": "left",
            "y": -0.24,
            "yanchor": "top",
            "orientation": "h",
            "font": {"size": 11},
            "traceorder": "normal",
        }
        return grids.figure(data, layout)
