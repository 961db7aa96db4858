// The HTML report of a recording (realtime export --format html): everything is inside the file.
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const R = window.rtReport = {ready: false, frame: 0, drawn: 0, people: 0, tracks: Object.keys(D.timelines).length};
const S = D.summary, bounds = new RT.Bounds();
bounds.fit(D.frames);
document.getElementById("title").textContent = `${D.title}: source ${D.source}` + (D.track !== null ? `, track ${D.track}` : "");
document.getElementById("summary").textContent =
  `${S.frames} frames over ${S.duration_s} s (${S.fps} fps), ${S.tracks} track ids, ${S.people_per_frame} people per frame, ` +
  `latency capture -> publish p50 ${S.latency_p50_ms} ms, p95 ${S.latency_p95_ms} ms, ${S.dropped} frames dropped` +
  (S.sampled_every > 1 ? `; the 3D view shows every ${S.sampled_every}th frame` : "") +
  (S.truncated ? "; the file was cut short (a killed recorder): shown up to the cut" : "") +
  (D.sources.length > 1 ? `; other sources in the file: ${D.sources.filter((s) => s !== D.source).join(", ")}` : "");

const slider = document.getElementById("slider");
slider.max = D.frames.length - 1;
const cursor = (t) => ({type: "line", xref: "x", yref: "paper", x0: t, x1: t, y0: 0, y1: 1, line: {color: "#888", dash: "dot"}});

function show(i) {
  const f = D.frames[i];
  R.frame = i; R.people = f.people.length;
  Plotly.react("plot3d", RT.traces3d(f.people, D.skeleton.parents),
               {margin: {l: 0, r: 0, t: 0, b: 0}, uirevision: "keep", scene: bounds.scene(), showlegend: false},
               {displaylogo: false, responsive: true});
  document.getElementById("time").textContent = `t = ${f.t.toFixed(2)} s, frame ${f.seq}, ${f.people.length} people`;
  for (const id of ["timelines", "latency", "people"]) Plotly.relayout(id, {shapes: [cursor(f.t)]});
  R.drawn += 1;
}

// Timelines: one horizontal bar per track id for each stretch it was seen.
const tl = Object.entries(D.timelines).map(([id, spans]) => ({
  type: "scatter", mode: "lines", name: RT.label(+id), line: {color: RT.colour(+id), width: 8},
  x: spans.flatMap(([a, b]) => [a, b === a ? a + 0.05 : b, null]), y: spans.flatMap(() => [+id, +id, null])}));
Plotly.newPlot("timelines", tl, {margin: {t: 10, r: 10}, showlegend: false, xaxis: {title: {text: "time (s)"}},
                                 yaxis: {title: {text: "track id"}}}, {displaylogo: false, responsive: true});
const lat = Object.entries(D.series.latency_ms).map(([stage, ys]) => ({
  type: "scatter", mode: "lines", name: stage, x: D.series.t, y: ys,
  line: stage === "total" ? {color: "#000", width: 2} : {width: 1.5}}));
Plotly.newPlot("latency", lat, {margin: {t: 10, r: 10}, xaxis: {title: {text: "time (s)"}}, yaxis: {title: {text: "ms"}}},
               {displaylogo: false, responsive: true});
Plotly.newPlot("people", [{type: "scatter", mode: "lines", x: D.series.t, y: D.series.people, line: {color: "#1f77b4"}}],
               {margin: {t: 10, r: 10}, xaxis: {title: {text: "time (s)"}}, yaxis: {title: {text: "people"}, rangemode: "tozero"}},
               {displaylogo: false, responsive: true});

let timer = null;
slider.oninput = () => show(+slider.value);
document.getElementById("play").onclick = (e) => {
  if (timer) { clearInterval(timer); timer = null; e.target.textContent = "play"; return; }
  e.target.textContent = "pause";
  const dt = D.frames.length > 1 ? 1000 * (D.frames[D.frames.length - 1].t - D.frames[0].t) / (D.frames.length - 1) : 100;
  timer = setInterval(() => { slider.value = (+slider.value + 1) % D.frames.length; show(+slider.value); }, Math.max(dt, 40));
};
// The first frame with people, so the report opens on something.
const first = Math.max(0, D.frames.findIndex((f) => f.people.some((p) => p.id >= 0)));
slider.value = first; show(first);
R.ready = true;
