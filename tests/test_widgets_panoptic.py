"""The PQ decomposer widget: its numbers are vizlib's merge and PQ, every segment is
matched, a false positive or a false negative as PQ counts them, the controls change the
figure, the static figure stays small, and it takes a model's outputs."""

from __future__ import annotations

import pytest
import torch

from vizlib.metrics.panoptic import panoptic_quality
from vizlib.nn.panoptic import panoptic_merge
from vizlib.widgets import PanopticPQWidget, all_widget_classes
from vizlib.widgets.panoptic import default_scene, pq_widget_numbers


def test_registered():
    assert all_widget_classes()["PanopticPQWidget"] is PanopticPQWidget


@pytest.mark.parametrize("state", [(0.5, 0.5, 4096), (0.3, 0.9, 64), (0.7, 0.1, 0)])
def test_numbers_are_the_merge_and_pq(state):
    scene = default_scene()
    n = pq_widget_numbers(scene, *state)
    ids, segments = panoptic_merge(
        scene["scores"],
        scene["labels"],
        scene["masks"],
        scene["semantic"],
        scene["stuff_categories"],
        state[1],
        state[0],
        state[2],
    )
    assert torch.equal(n["ids"], ids)
    r = panoptic_quality([(ids, segments)], [scene["truth"]], scene["categories"])
    assert n["pq"].all == r.all or (n["pq"].all.pq != n["pq"].all.pq and r.all.pq != r.all.pq)
    counts = sum(c.tp for c in r.per_class.values()), sum(c.fp for c in r.per_class.values())
    assert (len(n["matches"].matches), len(n["matches"].false_positives)) == counts
    assert len(n["matches"].false_negatives) == sum(c.fn for c in r.per_class.values())
    # every predicted pixel is void, matched or a FP; every true pixel matched or a FN
    assert set(n["pred_outcome"][ids.numpy() > 0].tolist()) <= {1, 2}
    assert set(n["truth_outcome"].ravel().tolist()) <= {1, 3}


def test_the_default_min_area_drops_every_stuff_segment_of_a_scene():
    n = pq_widget_numbers(default_scene(), 0.5, 0.5, 4096)
    assert not any(not s["isthing"] for s in n["segments"])
    assert n["pq"].stuff.pq == 0.0
    assert pq_widget_numbers(default_scene(), 0.5, 0.5, 64)["pq"].stuff.pq > 0.5


def test_controls_change_the_figure_and_keep_its_traces():
    w = PanopticPQWidget()
    base = w.render()
    kinds = [t.type for t in base.data]
    for c in PanopticPQWidget.controls:
        texts = {w.render(**{c.name: v}).to_json() for v in c.values}
        assert len(texts) > 1, c.name
    for _, state in w.static_states():
        assert [t.type for t in w.figure(**state).data] == kinds


def test_static_figure_is_small():
    fig = PanopticPQWidget().static_figure()
    assert len(fig.layout.sliders) == 2 and len(fig.frames) == 9
    assert len(fig.to_json()) < 1_000_000


def test_bad_scene_raises():
    with pytest.raises(ValueError, match="missing"):
        PanopticPQWidget(scene={"image": torch.zeros(3, 8, 8)})
    scene = default_scene()
    with pytest.raises(ValueError, match="like the image"):
        PanopticPQWidget(scene=scene | {"semantic": scene["semantic"][:10]})
    with pytest.raises(ValueError, match="stuff_min_area"):
        PanopticPQWidget(stuff_min_area=5)
