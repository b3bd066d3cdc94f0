"""How figures reach the page: live in a notebook, as self-contained HTML in the book.

Since plotly 6 a Jupyter kernel emits only ``application/vnd.plotly.v1+json``, which
Jupyter Book (myst-nb) silently drops. When the book is being built, or a lesson executed
for publishing, the environment variable ``VIZLIB_BOOK=1`` is set and this module makes
plotly emit plain ``text/html`` that expects plotly.js to be loaded once by the page
itself (the book serves its own copy from ``book/assets``: no CDN, works offline).
Everywhere else plotly's own renderer is left alone (JupyterLab, VS Code, Colab).
"""

from __future__ import annotations

import os

__all__ = ["BOOK_RENDERER", "building_book", "figure_html", "show", "use_book_renderer"]

BOOK_RENDERER = "vizlib_book"


def building_book() -> bool:
    """True while the book is built or a notebook is executed for publishing."""
    return os.environ.get("VIZLIB_BOOK", "").strip().lower() in ("1", "true", "yes")


def figure_html(
    fig, post_script: str | None = None, include_plotlyjs: bool | str | None = None
) -> str:
    """The HTML ``<div>`` of a plotly figure, with no MathJax and no CDN.

    Args:
        fig (plotly.graph_objects.Figure): the figure.
        post_script (str, optional): JavaScript run after the plot is drawn;
            ``{plot_id}`` in it is replaced by the div's id (plotly's convention).
        include_plotlyjs: ``False`` when the page already loads plotly.js (the book);
            by default ``False`` while building the book and ``True`` (inline, offline)
            anywhere else.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    if not isinstance(fig, go.Figure):
        raise ValueError(f"fig must be a plotly.graph_objects.Figure, got {type(fig).__name__}")
    if include_plotlyjs is None:
        include_plotlyjs = not building_book()
    return pio.to_html(
        fig,
        include_plotlyjs=include_plotlyjs,
        include_mathjax=False,
        full_html=False,
        post_script=post_script,
        # a figure with frames would otherwise play them all once on load (plotly's default)
        auto_play=False,
        config={"displaylogo": False, "responsive": True},
    )


def show(fig, post_script: str | None = None) -> None:
    """Display a plotly figure the right way for where the notebook runs."""
    from IPython.display import HTML, display

    if building_book() or post_script is not None:
        display(HTML(figure_html(fig, post_script=post_script)))
    else:
        fig.show()


def use_book_renderer() -> None:
    """Register and select the book's renderer, so that plain ``fig.show()`` works too."""
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    class _BookRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            import plotly.graph_objects as go

            return {"text/html": figure_html(go.Figure(fig_dict))}

    if BOOK_RENDERER not in pio.renderers:
        pio.renderers[BOOK_RENDERER] = _BookRenderer()
    pio.renderers.default = BOOK_RENDERER
