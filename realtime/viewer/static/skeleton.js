// Drawing people, shared by the live viewer (index.html) and the HTML report (realtime export --format html).
// Wire axes: metres, x right, y up, z towards the camera. Plot axes: x right, y = depth away from the
// camera (-z), z up (y), so plotly's default "up" is the person's up.
"use strict";
const RT = (() => {
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22", "#7f7f7f"];
  const colour = (id) => (id < 0 ? "#aaaaaa" : PALETTE[id % PALETTE.length]);
  const label = (id) => (id < 0 ? "?" : "id " + id);

  // World position of each joint (plot axes), or null when the person has no 3D pose.
  function world(p) {
    if (!p.j3) return null;
    const r = p.root || [0, 0, 0];
    return p.j3.map(([x, y, z]) => [x + r[0], -(z + r[2]), y + r[1]]);
  }

  // Plotly traces: one line trace per person (each bone a segment, null-separated), one text trace of ids.
  function traces3d(people, parents) {
    const traces = [], lx = [], ly = [], lz = [], lt = [], lc = [];
    for (const p of people) {
      const w = world(p);
      if (!w) continue;
      const x = [], y = [], z = [];
      parents.forEach((parent, j) => {
        if (parent < 0) return;
        x.push(w[j][0], w[parent][0], null); y.push(w[j][1], w[parent][1], null); z.push(w[j][2], w[parent][2], null);
      });
      traces.push({type: "scatter3d", mode: "lines+markers", x, y, z, connectgaps: false, hoverinfo: "name",
                   name: label(p.id), showlegend: false,
                   line: {color: colour(p.id), width: 7}, marker: {color: colour(p.id), size: 3}});
      lx.push(w[0][0]); ly.push(w[0][1]); lz.push(w[0][2] + 0.25); lt.push(label(p.id)); lc.push(colour(p.id));
    }
    traces.push({type: "scatter3d", mode: "text", x: lx, y: ly, z: lz, text: lt, hoverinfo: "skip",
                 showlegend: false, textfont: {color: lc, size: 14}});
    return traces;
  }

  // Farther than this (metres) a lifted root is taken for an outlier and does not stretch the view.
  const FAR = 25;

  // A box holding the points seen (grown, never shrunk: the view does not jump), in plot axes.
  class Bounds {
    constructor() { this.lo = [-1, 2, -1.5]; this.hi = [1, 4, 1]; }
    addPoint(q) {
      for (let i = 0; i < 3; i++) {
        this.lo[i] = Math.min(this.lo[i], Math.floor(q[i] * 2) / 2 - 0.5);
        this.hi[i] = Math.max(this.hi[i], Math.ceil(q[i] * 2) / 2 + 0.5);
      }
    }
    add(people) {
      for (const p of people) {
        const w = world(p);
        if (w && Math.hypot(...w[w.length > 14 ? 14 : 0]) < FAR) w.forEach((q) => this.addPoint(q));
      }
    }
    // A recording's box: the 1st to 99th percentile of every point on each axis (outliers left out).
    fit(frames) {
      const axes = [[], [], []];
      for (const f of frames) for (const p of f.people) { const w = world(p); if (w) w.forEach((q) => q.forEach((v, i) => axes[i].push(v))); }
      if (!axes[0].length) return;
      axes.forEach((a) => a.sort((x, y) => x - y));
      const at = (a, q) => a[Math.min(a.length - 1, Math.floor(q * a.length))];
      this.addPoint(axes.map((a) => at(a, 0.01))); this.addPoint(axes.map((a) => at(a, 0.99)));
    }
    scene() {
      const span = this.hi.map((h, i) => h - this.lo[i]), m = Math.max(...span);
      const axis = (i, title) => ({range: [this.lo[i], this.hi[i]], title: {text: title}, backgroundcolor: "#f4f4f4",
                                   showbackground: true, zeroline: false});
      return {bgcolor: "#ffffff", xaxis: axis(0, "x (m)"), yaxis: axis(1, "depth (m)"), zaxis: axis(2, "up (m)"),
              aspectmode: "manual", aspectratio: {x: span[0] / m * 1.5, y: span[1] / m * 1.5, z: span[2] / m * 1.5},
              camera: {eye: {x: -1.25, y: -2.1, z: 0.95}, up: {x: 0, y: 0, z: 1}}};
    }
  }

  // 2D people over an image (or a blank frame) on a canvas; sx = canvas pixels per source pixel.
  function draw2d(ctx, people, limbs, sx) {
    ctx.lineCap = "round";
    for (const p of people) {
      const c = colour(p.id);
      ctx.strokeStyle = c; ctx.fillStyle = c;
      if (p.bbox && p.bbox.every(Number.isFinite)) {
        const [x0, y0, x1, y1] = p.bbox.map((v) => v * sx);
        ctx.lineWidth = 1.5; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        ctx.font = "bold 14px sans-serif"; ctx.fillText(label(p.id), x0 + 3, Math.max(14, y0 - 4));
      }
      ctx.lineWidth = 3;
      for (const [a, b] of limbs) {
        if (p.conf[a] <= 0 || p.conf[b] <= 0) continue;
        ctx.beginPath(); ctx.moveTo(p.kp[a][0] * sx, p.kp[a][1] * sx); ctx.lineTo(p.kp[b][0] * sx, p.kp[b][1] * sx);
        ctx.stroke();
      }
      ctx.fillStyle = "#ffffff";
      p.kp.forEach(([x, y], i) => { if (p.conf[i] > 0) { ctx.beginPath(); ctx.arc(x * sx, y * sx, 2.5, 0, 7); ctx.fill(); } });
    }
  }

  return {PALETTE, colour, label, world, traces3d, Bounds, draw2d};
})();
