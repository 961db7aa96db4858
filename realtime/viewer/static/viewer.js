// The live viewer: one WebSocket from the viewer server, nothing sent back. The newest state of each
// source is kept; the 3D plot and the camera canvas are redrawn on the next animation frame, never
// more often than messages arrive, so a slow browser skips states instead of queueing them.
"use strict";
const V = window.rtViewer = {connected: false, hello: null, frames: 0, view2d: 0, images: 0, drawn3d: 0,
                             people3d: 0, people2d: 0, lastSeq: -1, sources: [], errors: []};
const state = {skeleton: null, frame: {}, view2d: {}, bounds: {}, dirty3d: false, dirty2d: false, source: null};
const $ = (id) => document.getElementById(id);
const canvas = $("camera"), ctx = canvas.getContext("2d");

function setStatus(text, live) { $("status").textContent = text; $("status").className = live ? "live" : "waiting"; }

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { V.connected = true; setStatus("waiting for the stream...", false); };
  ws.onclose = () => { V.connected = false; setStatus("disconnected: retrying...", false); setTimeout(connect, 1000); };
  ws.onmessage = (event) => {
    try { onMessage(JSON.parse(event.data)); } catch (e) { V.errors.push(String(e)); console.error(e); }
  };
}

function onMessage(m) {
  if (m.type === "hello") { V.hello = m; $("feed").textContent = m.feed; return; }
  if (m.type === "skeleton") { state.skeleton = m; return; }
  if (!V.sources.includes(m.source)) {
    V.sources.push(m.source);
    const o = document.createElement("option"); o.value = o.textContent = m.source; $("source").appendChild(o);
    if (state.source === null) state.source = m.source;
  }
  if (m.type === "frame") {
    V.frames += 1; V.lastSeq = m.seq;
    state.frame[m.source] = m; state.dirty3d = true;
    setStatus(`live: ${m.source} frame ${m.seq}, ${m.people.length} people`, true);
  } else if (m.type === "view2d") {
    V.view2d += 1;
    if (m.image) {
      const img = new Image();
      img.onload = () => { m.bitmap = img; V.images += 1; state.view2d[m.source] = m; state.dirty2d = true; };
      img.src = m.image;
    } else {
      state.view2d[m.source] = m; state.dirty2d = true;
    }
  }
}

$("source").onchange = (e) => { state.source = e.target.value; state.dirty2d = state.dirty3d = true; };

function draw3d() {
  const f = state.frame[state.source];
  if (!f || !state.skeleton) return;
  const bounds = state.bounds[f.source] || (state.bounds[f.source] = new RT.Bounds());
  bounds.add(f.people);
  const traces = RT.traces3d(f.people, state.skeleton.parents);
  traces.push({type: "scatter3d", mode: "markers+text", x: [0], y: [0], z: [0], text: ["camera"],
               textposition: "bottom center", marker: {symbol: "diamond", size: 4, color: "#333"},
               hoverinfo: "skip", showlegend: false});
  const layout = {margin: {l: 0, r: 0, t: 0, b: 0}, uirevision: f.source, scene: bounds.scene(), showlegend: false,
                  paper_bgcolor: "#ffffff"};
  Plotly.react("plot3d", traces, layout, {displaylogo: false, responsive: true});
  V.drawn3d += 1; V.people3d = f.people.filter((p) => p.j3).length;
  drawStats(f);
}

function draw2d() {
  const m = state.view2d[state.source];
  if (!m || !state.skeleton) return;
  const width = canvas.clientWidth || 640;
  if (canvas.width !== width) canvas.width = width;
  const height = Math.round(width * m.height / m.width);
  if (canvas.height !== height) canvas.height = height;
  if (m.bitmap) ctx.drawImage(m.bitmap, 0, 0, width, height);
  else { ctx.fillStyle = "#303030"; ctx.fillRect(0, 0, width, height); }
  RT.draw2d(ctx, m.people, state.skeleton.limbs2d, width / m.width);
  V.people2d = m.people.length;
  $("view2d-note").textContent = m.bitmap ? `frame ${m.seq}` : `frame ${m.seq} (no camera preview: the pipeline sends none)`;
}

function drawStats(f) {
  const s = f.stats, rows = [["frames per second", s.fps.toFixed(1)], ["people per frame", s.people.toFixed(1)],
                              ["dropped so far", s.dropped]];
  for (const [stage, ms] of Object.entries(s.latency_ms)) {
    rows.push([stage === "total" ? "latency capture -> publish, p50 (p95)" : `latency: ${stage}`,
               stage === "total" ? `${ms.toFixed(0)} ms (${s.total_p95_ms.toFixed(0)} ms)` : `${ms.toFixed(1)} ms`]);
  }
  $("stats").tBodies[0].innerHTML = rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("");
}

function render() {
  if (state.dirty3d) { state.dirty3d = false; try { draw3d(); } catch (e) { V.errors.push(String(e)); } }
  if (state.dirty2d) { state.dirty2d = false; try { draw2d(); } catch (e) { V.errors.push(String(e)); } }
  requestAnimationFrame(render);
}

Plotly.newPlot("plot3d", [], {margin: {l: 0, r: 0, t: 0, b: 0}, paper_bgcolor: "#ffffff", scene: new RT.Bounds().scene()}, {displaylogo: false});
connect();
requestAnimationFrame(render);
