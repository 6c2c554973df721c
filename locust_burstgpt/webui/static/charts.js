// Live charts for a locust-burstgpt run: dependency-free canvas line charts (works offline).
// Polls ./timeline.json and redraws every chart; each chart lists the series it plots.
"use strict";

const CHARTS = [
  { id: "users", title: "Users: the trace's curve, the shape's target, actual users, conversations in progress",
    series: [["curve_users", "curve", "#bbb"], ["target_users", "target", "#888"],
             ["actual_users", "actual", "#1f77b4"], ["conversations_in_progress", "in progress", "#ff7f0e"]] },
  { id: "arrivals", title: "Requests per second: scheduled vs sent",
    series: [["scheduled", "scheduled", "#888"], ["sent", "sent", "#2ca02c"], ["not_sent", "not sent", "#d62728"]] },
  { id: "ttft", title: "TTFT per second (ms)", scale: 1000,
    series: [["ttft_p50_s", "p50", "#1f77b4"], ["ttft_p99_s", "p99", "#d62728"]] },
  { id: "tpot", title: "TPOT per second (ms)", scale: 1000,
    series: [["tpot_p50_s", "p50", "#1f77b4"], ["tpot_p99_s", "p99", "#d62728"]] },
  { id: "tokens", title: "Output tokens per second", series: [["output_tokens", "tokens/s", "#9467bd"]] },
  { id: "lateness", title: "Schedule lateness p99 per second (ms)", scale: 1000,
    series: [["lateness_p99_s", "p99", "#ff7f0e"]] },
  { id: "server_queue", title: "Server: running and waiting requests (scraped)", optional: true,
    series: [["server_running", "running", "#2ca02c"], ["server_waiting", "waiting", "#d62728"]] },
  { id: "server_kv", title: "Server: KV-cache usage (%)", optional: true, scale: 100,
    series: [["server_kv_cache_usage", "KV cache", "#8c564b"]] },
];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function draw(canvas, chart, rows) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 56, R = 12, T = 10, B = 28;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "12px sans-serif";
  const scale = chart.scale || 1;
  const xs = rows.map(r => r.second);
  const xmin = xs.length ? Math.min(...xs) : 0, xmax = xs.length ? Math.max(...xs) : 1;
  let ymax = 0;
  for (const [key] of chart.series) for (const r of rows) {
    const v = r[key]; if (v !== null && v !== undefined && v !== "") ymax = Math.max(ymax, v * scale);
  }
  ymax = niceMax(ymax);
  const px = x => L + (W - L - R) * (xmax === xmin ? 0 : (x - xmin) / (xmax - xmin));
  const py = y => H - B - (H - T - B) * (y / ymax);
  ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#444";
  for (let i = 0; i <= 4; i++) {
    const y = ymax * i / 4, yy = py(y);
    ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(W - R, yy); ctx.stroke();
    ctx.fillText(y >= 100 ? y.toFixed(0) : y.toPrecision(3), 4, yy + 4);
  }
  for (let i = 0; i <= 5; i++) {
    const x = xmin + (xmax - xmin) * i / 5;
    ctx.fillText(x.toFixed(0) + " s", px(x) - 12, H - 8);
  }
  let lx = L + 6;
  for (const [key, label, color] of chart.series) {
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    let pen = false;
    for (const r of rows) {
      const v = r[key];
      if (v === null || v === undefined || v === "") { pen = false; continue; }
      const X = px(r.second), Y = py(v * scale);
      if (pen) ctx.lineTo(X, Y); else ctx.moveTo(X, Y);
      pen = true;
    }
    ctx.stroke(); ctx.lineWidth = 1;
    ctx.fillStyle = color; ctx.fillRect(lx, T + 2, 10, 10);
    ctx.fillStyle = "#222"; ctx.fillText(label, lx + 14, T + 11);
    lx += ctx.measureText(label).width + 32;
  }
}

function setup() {
  const root = document.getElementById("charts");
  for (const chart of CHARTS) {
    const box = document.createElement("section");
    box.id = "box-" + chart.id;
    box.innerHTML = `<h3>${chart.title}</h3><canvas id="chart-${chart.id}" width="900" height="220"></canvas>`;
    root.appendChild(box);
  }
}

async function refresh() {
  try {
    const resp = await fetch("timeline.json", { credentials: "same-origin" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const data = await resp.json();
    document.getElementById("status").textContent = data.status;
    const rows = data.rows || [];
    for (const chart of CHARTS) {
      const has = rows.some(r => chart.series.some(([k]) => r[k] !== null && r[k] !== undefined && r[k] !== ""));
      document.getElementById("box-" + chart.id).style.display = (chart.optional && !has) ? "none" : "";
      draw(document.getElementById("chart-" + chart.id), chart, rows);
    }
    document.body.dataset.rows = rows.length;
  } catch (e) {
    document.getElementById("status").textContent = "cannot read timeline: " + e;
  }
}

setup();
refresh();
setInterval(refresh, 2000);
