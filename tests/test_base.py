"""vizlib's base settings: profile, device, seed, display mode, version."""

import re

import numpy as np
import pytest
import torch

import vizlib


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", vizlib.__version__)


@pytest.mark.parametrize(
    "value, expected", [(None, "full"), ("full", "full"), ("smoke", "smoke"), ("SMOKE", "smoke")]
)
def test_profile_reads_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("VIZLIB_PROFILE", raising=False)
    else:
        monkeypatch.setenv("VIZLIB_PROFILE", value)
    assert vizlib.profile() == expected


@pytest.mark.parametrize("bad", ["fast", "smok", "1"])
def test_profile_rejects_unknown(monkeypatch, bad):
    monkeypatch.setenv("VIZLIB_PROFILE", bad)
    with pytest.raises(ValueError, match="VIZLIB_PROFILE"):
        vizlib.profile()


def test_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if hasattr(torch.backends, "mps"):
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert vizlib.device() == torch.device("cpu")
    if hasattr(torch.backends, "mps"):
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        assert vizlib.device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert vizlib.device() == torch.device("cuda")


def test_seed_everything_repeats():
    vizlib.seed_everything(123)
    a = (torch.rand(3), np.random.rand(3))
    vizlib.seed_everything(123)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("bad", [1.5, "3", -1, 2**32, True])
def test_seed_everything_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        vizlib.seed_everything(bad)


def test_display_mode(monkeypatch):
    monkeypatch.delenv("VIZLIB_BOOK", raising=False)
    monkeypatch.setenv("VIZLIB_MODE", "live")
    assert vizlib.display_mode() == "live"
    monkeypatch.setenv("VIZLIB_MODE", "static")
    assert vizlib.display_mode() == "static"
    monkeypatch.setenv("VIZLIB_MODE", "")
    assert vizlib.display_mode() == "static"  # no kernel here
    monkeypatch.setenv("VIZLIB_BOOK", "1")
    assert vizlib.display_mode() == "static"
    monkeypatch.setenv("VIZLIB_MODE", "loud")
    with pytest.raises(ValueError, match="VIZLIB_MODE"):
        vizlib.display_mode()


def test_book_renderer_emits_html_without_cdn(monkeypatch):
    import plotly.graph_objects as go

    from vizlib.display import figure_html

    monkeypatch.setenv("VIZLIB_BOOK", "1")
    html = figure_html(go.Figure(go.Scatter(y=[1, 2, 3])))
    assert "Plotly.newPlot" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert len(html) < 50_000  # plotly.js is served once by the page, not inlined
    with pytest.raises(ValueError, match="fig"):
        figure_html({"data": []})
