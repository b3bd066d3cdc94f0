// The browser side of vizlib's live figure (vizlib/widgets/_live.py), an anywidget.
// plotly.js (from the plotly Python package) is prepended to this file by the kernel and
// evaluated once per page. The kernel sends the first figure as the `figure` trait, then
// only edits: {traces: [[index, {path: value}]], layout: {path: value}} or {figure}.
// Edits that arrive while the page is busy drawing are merged and drawn once: a fast drag
// never queues redraws behind the pointer.

const CONFIG = { displaylogo: false, responsive: true };

function render({ model, el }) {
  const Plotly = vizlibPlotly();
  const gd = document.createElement("div");
  gd.className = "vizlib-live-figure";
  el.appendChild(gd);
  let pending = null;  // {traces: Map(index -> {path: value}), layout: {path: value}}
  let figure = null;   // a whole figure to draw instead (first draw, or traces changed)
  let scheduled = false;

  function draw() {
    scheduled = false;
    if (figure) {  // the edits in `pending` came after this figure: drawn after it
      const f = figure;
      figure = null;
      Plotly.react(gd, f.data, f.layout, CONFIG).then(drawEdits);
      return;
    }
    drawEdits();
  }

  function drawEdits() {
    if (!pending) { return; }
    const { traces, layout } = pending;
    pending = null;
    const indexes = Array.from(traces.keys());
    const style = {};
    indexes.forEach((t, k) => {  // restyle takes one value per trace; undefined: unchanged
      for (const [path, value] of Object.entries(traces.get(t))) {
        if (!(path in style)) { style[path] = new Array(indexes.length).fill(undefined); }
        style[path][k] = value;
      }
    });
    Plotly.update(gd, style, layout, indexes);
  }

  // setTimeout(0), not requestAnimationFrame: the messages already waiting (those that
  // came while the last draw ran) are handled first and merged, and nothing waits for a
  // frame boundary (about 8 ms on average at 60 Hz).
  function schedule() {
    if (!scheduled) { scheduled = true; setTimeout(draw, 0); }
  }

  function merge(into, edits) {  // later edits win; an edit of a prefix drops the longer paths
    for (const [path, value] of Object.entries(edits)) {
      for (const old of Object.keys(into)) {
        if (old.startsWith(path + ".") || old.startsWith(path + "[")) { delete into[old]; }
        if (path.startsWith(old + ".") || path.startsWith(old + "[")) { return false; }
      }
      into[path] = value;
    }
    return true;
  }

  model.on("msg:custom", (msg) => {
    if (msg.figure) {  // the whole figure replaces it and every edit before it
      figure = msg.figure;
      pending = null;
      schedule();
      return;
    }
    if (!pending) { pending = { traces: new Map(), layout: {} }; }
    let ok = merge(pending.layout, msg.layout || {});
    for (const [t, edits] of msg.traces || []) {
      if (!pending.traces.has(t)) { pending.traces.set(t, {}); }
      ok = merge(pending.traces.get(t), edits) && ok;
    }
    if (!ok) {  // an edit inside a value replaced earlier in this batch: ask for the whole
      pending = null;
      model.send({ event: "resend" });
    }
    schedule();
  });

  const first = model.get("figure");
  Plotly.newPlot(gd, first.data, first.layout, CONFIG).then(() => {
    model.send({ event: "rendered" });
  });
  return () => { Plotly.purge(gd); };
}

export default { render };
