"""Region captions of the scenes (vizlib.data.captions), the region captioner
(vizlib.nn.captioning) and the caption scores (vizlib.metrics.captions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vizlib.data import scenes as scenes_module
from vizlib.data.captions import (
    COLOUR_WORDS,
    RELATION_WORDS,
    SIZE_WORDS,
    SLOTS,
    Vocabulary,
    caption_slots,
    colour_word,
    hue_of,
    relation_word,
    scene_captions,
)
from vizlib.data.scenes import THING_CLASSES, make_scene
from vizlib.metrics.captions import caption_scores
from vizlib.nn.captioning import (
    END_ID,
    PAD_ID,
    CaptionDecoder,
    RegionCaptioner,
    caption_loss,
)

# ------------------------------------------------------------------------ captions


@pytest.mark.parametrize(
    "rgb, word",
    [
        ((1.0, 0.1, 0.1), "red"),
        ((255, 140, 0), "orange"),
        ((1.0, 1.0, 0.2), "yellow"),
        ((0.1, 0.9, 0.1), "green"),
        ((0.1, 0.2, 1.0), "blue"),
        ((0.1, 1.0, 1.0), "blue"),  # cyan counts as blue
        ((0.6, 0.1, 1.0), "purple"),
        ((1.0, 0.2, 0.7), "pink"),
        ((1.0, 0.1, 0.2), "red"),  # hue 354: red wraps around 0
    ],
)
def test_colour_word(rgb, word):
    assert colour_word(rgb) == word


def test_hue_matches_colorsys():
    import colorsys

    rng = np.random.default_rng(0)
    for rgb in rng.random((50, 3)):
        assert hue_of(rgb) == pytest.approx(colorsys.rgb_to_hsv(*rgb)[0] * 360 % 360, abs=1e-9)


def test_colour_ranges_cover_the_circle_once():
    edges = [(s, e) for _, s, e in COLOUR_WORDS]
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:], strict=False))
    assert edges[-1][1] - edges[0][0] == 360


@pytest.mark.parametrize("rgb", [(0.5, 0.5, 0.5), (1, 2), (np.nan, 0, 1), (-1, 0, 1)], ids=str)
def test_colour_word_rejects_bad_input(rgb):
    with pytest.raises(ValueError):
        colour_word(rgb)


def test_relation_word():
    box = (0, 0, 10, 10)
    assert relation_word(box, (20, 0, 30, 10)) == "left of"
    assert relation_word((20, 0, 30, 10), box) == "right of"
    assert relation_word(box, (0, 30, 10, 40)) == "above"  # y grows downwards
    assert relation_word((0, 30, 10, 40), box) == "below"
    with pytest.raises(ValueError, match="x1 <= x2"):
        relation_word((10, 0, 0, 10), box)
    with pytest.raises(ValueError, match="4 finite"):
        relation_word((0, 0, 10), box)


def test_scene_captions_follow_the_ground_truth():
    for index in range(40):
        scene = make_scene(5, index)
        caps = scene_captions(scene)
        assert len(caps) == scene.num_objects
        centres = (scene.boxes[:, :2] + scene.boxes[:, 2:]) / 2
        for i, cap in enumerate(caps):
            assert cap.shape == THING_CLASSES[scene.labels[i] - 1]
            area = scene.masks[i].sum() / scene.masks[i].size
            assert cap.size == ("small" if area < 0.04 else "large")
            words = cap.text.split()
            assert words[:4] == ["a", cap.size, cap.colour, cap.shape]
            if scene.num_objects == 1:
                assert cap.relation == "" and cap.other == -1 and len(words) == 4
                continue
            d = np.hypot(*(centres - centres[i]).T)
            d[i] = np.inf
            assert d[cap.other] == d.min()
            assert cap.relation in RELATION_WORDS
            article = "an" if cap.other_colour == "orange" else "a"
            assert cap.text.endswith(
                f"{cap.relation} {article} {cap.other_colour} {cap.other_shape}"
            )
            assert cap.other_shape == caps[cap.other].shape
            assert cap.other_colour == caps[cap.other].colour
        plain = [c.text for c in scene_captions(scene, relations=False)]
        assert plain == [" ".join(c.text.split()[:4]) for c in caps]


def test_caption_colour_is_the_colour_the_generator_drew(monkeypatch):
    """Force the generator's colours: the captions must name them, whatever the shading."""
    drawn = iter([np.array(c, dtype=np.float32) for c in [(1, 0.1, 0.1), (0.1, 0.2, 1.0)] * 400])
    monkeypatch.setattr(scenes_module, "_random_thing_colour", lambda rng: next(drawn))
    scene = make_scene(0, 3, num_objects=2)
    # placements may be redrawn, which draws colours too: read which ones were kept
    words = {c.colour for c in scene_captions(scene)}
    assert words <= {"red", "blue"} and words


def test_caption_slots_read_captions_back():
    for index in range(20):
        for cap in scene_captions(make_scene(3, index)):
            slots = caption_slots(cap.text)
            assert [slots[k] for k in SLOTS] == [
                cap.size,
                cap.colour,
                cap.shape,
                cap.relation,
                cap.other_colour,
                cap.other_shape,
            ]
    assert caption_slots("a small violet star")["colour"] is None
    assert caption_slots("a small red star near a blue cross")["relation"] is None
    assert caption_slots("a small red star above an orange cross")["other_colour"] == "orange"
    assert caption_slots("a small red star above a orange cross")["other_colour"] is None
    assert caption_slots("a small")["shape"] is None
    assert caption_slots("")["size"] is None
    with pytest.raises(ValueError, match="string"):
        caption_slots(None)


def test_scene_captions_rejects_non_scenes():
    with pytest.raises(ValueError, match="Scene"):
        scene_captions("a red star")


def test_vocabulary_round_trip():
    vocab = Vocabulary()
    texts = ["a small red star left of a blue cross", "a large green ellipse"]
    ids = vocab.encode(texts)
    assert ids.shape == (2, 10) and ids.dtype == torch.int64
    assert ids[0, -1] == END_ID and ids[1, 4] == END_ID and (ids[1, 5:] == PAD_ID).all()
    assert vocab.decode(ids) == texts
    assert vocab.encode(texts, length=12).shape == (2, 12)
    assert set(SIZE_WORDS) <= set(vocab.itos)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode(["a violet star"])
    with pytest.raises(ValueError, match="shorter"):
        vocab.encode(texts, length=5)
    with pytest.raises(ValueError, match="list of strings"):
        vocab.encode("a red star")
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([[99]])
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary(["a", "a"])


def test_every_scene_caption_encodes():
    vocab = Vocabulary()
    texts = [c.text for i in range(30) for c in scene_captions(make_scene(1, i))]
    assert vocab.decode(vocab.encode(texts)) == texts


# ------------------------------------------------------------------------ model


def test_decoder_shapes_and_teacher_forcing():
    torch.manual_seed(0)
    dec = CaptionDecoder(vocab_size=20, feature_dim=8, hidden=16)
    feats, tokens = torch.randn(5, 8), torch.randint(3, 20, (5, 7))
    logits = dec(feats, tokens)
    assert logits.shape == (5, 7, 20)
    # teacher forcing: the logits at step t depend on tokens before t only
    changed = tokens.clone()
    changed[:, 4] = 3 + (changed[:, 4] - 2) % 17
    other = dec(feats, changed)
    assert torch.allclose(logits[:, :5], other[:, :5]) and not torch.allclose(
        logits[:, 5:], other[:, 5:]
    )


def test_greedy_stops_at_end():
    dec = CaptionDecoder(vocab_size=10, feature_dim=4, hidden=8)
    with torch.no_grad():  # always say <end>: one step, then stop
        dec.out.weight.zero_()
        dec.out.bias.zero_()
        dec.out.bias[END_ID] = 5.0
    ids = dec.greedy(torch.randn(3, 4), max_len=12)
    assert ids.shape == (3, 1) and (ids == END_ID).all()
    with torch.no_grad():  # never say <end>: runs to max_len
        dec.out.bias[END_ID] = -5.0
        dec.out.bias[5] = 5.0
    assert dec.greedy(torch.randn(3, 4), max_len=6).shape == (3, 6)


def test_greedy_pads_rows_that_ended():
    dec = CaptionDecoder(vocab_size=10, feature_dim=1, hidden=4)
    with torch.no_grad():  # the feature decides: positive -> <end> at once, else word 5
        dec.init.weight.fill_(10.0)
        dec.init.bias.zero_()
        dec.embed.weight.zero_()
        dec.gru.weight_hh_l0.zero_()
        dec.gru.bias_hh_l0.zero_()
        dec.gru.bias_ih_l0.zero_()
        dec.gru.bias_ih_l0[: 2 * 4] = 10.0  # reset and update gates open: h stays h0
        dec.out.weight.zero_()
        dec.out.weight[END_ID, 0] = 5.0
        dec.out.bias.zero_()
        dec.out.bias[5] = 1.0
    ids = dec.greedy(torch.tensor([[1.0], [-1.0]]), max_len=4)
    assert ids[0].tolist() == [END_ID, PAD_ID, PAD_ID, PAD_ID]
    assert ids[1].tolist() == [5, 5, 5, 5]


@pytest.mark.parametrize("context", [True, False])
def test_region_captioner_shapes(context):
    torch.manual_seed(0)
    model = RegionCaptioner(vocab_size=25, channels=8, feature_dim=16, hidden=16, context=context)
    images = torch.rand(3, 3, 32, 32)
    boxes = [
        torch.tensor([[0.0, 0, 10, 10], [5, 5, 30, 20]]),
        torch.zeros(0, 4),
        torch.tensor([[2.0, 3, 9, 31]]),
    ]
    feats = model.region_features(images, boxes)
    assert feats.shape == (3, 16) and torch.isfinite(feats).all()
    tokens = torch.randint(3, 25, (3, 6))
    assert model(images, boxes, tokens).shape == (3, 6, 25)
    ids = model.caption(images, boxes, max_len=5)
    assert ids.shape[0] == 3 and ids.shape[1] <= 5


def test_context_lets_a_region_see_its_neighbours():
    torch.manual_seed(0)
    model = RegionCaptioner(vocab_size=25, channels=8, feature_dim=16, hidden=16).eval()
    images = torch.rand(1, 3, 32, 32)
    one = model.region_features(images, [torch.tensor([[0.0, 0, 10, 10]])])
    two = model.region_features(images, [torch.tensor([[0.0, 0, 10, 10], [15, 15, 30, 30]])])
    assert not torch.allclose(one[0], two[0])
    plain = RegionCaptioner(
        vocab_size=25, channels=8, feature_dim=16, hidden=16, context=False
    ).eval()
    one = plain.region_features(images, [torch.tensor([[0.0, 0, 10, 10]])])
    two = plain.region_features(images, [torch.tensor([[0.0, 0, 10, 10], [15, 15, 30, 30]])])
    assert torch.allclose(one[0], two[0])


def test_bad_inputs_raise():
    dec = CaptionDecoder(vocab_size=10, feature_dim=4)
    with pytest.raises(ValueError, match="Tensor\\[K, 4\\]"):
        dec(torch.randn(4), torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="4 columns"):
        dec(torch.randn(2, 5), torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="finite"):
        dec(torch.full((2, 4), float("nan")), torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="0..9"):
        dec(torch.randn(2, 4), torch.full((2, 3), 10))
    with pytest.raises(ValueError, match="int64"):
        dec(torch.randn(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="2 regions"):
        dec(torch.randn(2, 4), torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="vocab_size"):
        CaptionDecoder(vocab_size=2, feature_dim=4)
    model = RegionCaptioner(vocab_size=10, channels=8, feature_dim=8, hidden=8)
    with pytest.raises(ValueError, match="one Tensor"):
        model.region_features(torch.rand(2, 3, 32, 32), [torch.zeros(1, 4)])
    with pytest.raises(ValueError, match="x1 <= x2"):
        model.region_features(torch.rand(1, 3, 32, 32), [torch.tensor([[5.0, 0, 1, 4]])])
    with pytest.raises(ValueError, match="B, 3, H, W"):
        model.region_features(torch.rand(3, 32, 32), [torch.zeros(1, 4)])
    with pytest.raises(ValueError, match="match"):
        caption_loss(torch.randn(2, 3, 10), torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="all <pad>"):
        caption_loss(torch.randn(2, 3, 10), torch.zeros(2, 3, dtype=torch.int64))


def test_loss_ignores_padding():
    logits = torch.randn(2, 4, 6)
    tokens = torch.tensor([[3, 4, END_ID, PAD_ID], [5, END_ID, PAD_ID, PAD_ID]])
    expected = torch.nn.functional.cross_entropy(
        torch.cat([logits[0, :3], logits[1, :2]]), torch.tensor([3, 4, END_ID, 5, END_ID])
    )
    assert torch.allclose(caption_loss(logits, tokens), expected)


def test_training_overfits_a_few_scenes():
    """A few dozen steps on four scenes drive the loss down and the captions right."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is faster, and never thrashes
    try:
        _overfit_four_scenes()
    finally:
        torch.set_num_threads(threads)


def _overfit_four_scenes():
    torch.manual_seed(0)
    vocab = Vocabulary()
    scenes = [make_scene(0, i, num_objects=2) for i in range(4)]
    images = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in scenes])
    boxes = [torch.from_numpy(s.boxes) for s in scenes]
    texts = [c.text for s in scenes for c in scene_captions(s)]
    tokens = vocab.encode(texts)
    model = RegionCaptioner(len(vocab), channels=16, feature_dim=64, hidden=64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = caption_loss(model(images, boxes, tokens), tokens)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    predicted = vocab.decode(model.caption(images, boxes))
    assert caption_scores(predicted, texts)["word"] > 0.9


# ------------------------------------------------------------------------ scores


def test_caption_scores():
    ref = ["a red star", "a small blue cross left of a red star"]
    assert caption_scores(ref, ref) == {"exact": 1.0, "word": 1.0, "regions": 2}
    s = caption_scores(["a red star above", "a small blue cross"], ref)
    # 1st: 3 of 4 slots (the end slot is missed); 2nd: 4 of 10
    assert s["exact"] == 0.0 and s["word"] == pytest.approx(7 / 14)
    with pytest.raises(ValueError, match="one each"):
        caption_scores(["a"], ref)
    with pytest.raises(ValueError, match="no captions"):
        caption_scores([], [])
    with pytest.raises(ValueError, match="list of strings"):
        caption_scores("a red star", "a red star")
