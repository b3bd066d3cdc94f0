"""Drawing: the second layer of vizlib (see DESIGN.md).

Functions here turn data (images, boxes, masks, matrices, curves) into figures and
compute nothing a reader is meant to learn: the maths comes from the core modules
(``vizlib.boxes``, ``vizlib.anchors``, ``vizlib.nms``, ``vizlib.metrics``, ...).
Plotly for anything interactive, matplotlib for static plots.

One module per kind of picture; import the one you need, e.g.
``from vizlib.viz import boxes`` or ``from vizlib.viz.curves import pr_curve_figure``.
Nothing is imported eagerly, so ``import vizlib.viz`` stays cheap.
"""
