// The board page of a juki node (docs/operations.md): draws the map of Japan's 47
// prefectures and the tables from /board.json, and asks again every refresh_ms.
// Everything is built with DOM calls and textContent: nothing from the board is
// parsed as HTML.
"use strict";

// The prefectures (JIS X 0401 code, name, row, column) on a tile grid of Japan.
const PREFS = [
  ["01", "北海道", 0, 13], ["02", "青森", 2, 13], ["03", "岩手", 3, 13],
  ["04", "宮城", 4, 13], ["05", "秋田", 3, 12], ["06", "山形", 4, 12],
  ["07", "福島", 5, 12], ["08", "茨城", 6, 13], ["09", "栃木", 6, 12],
  ["10", "群馬", 6, 11], ["11", "埼玉", 7, 11], ["12", "千葉", 7, 13],
  ["13", "東京", 7, 12], ["14", "神奈川", 8, 11], ["15", "新潟", 5, 11],
  ["16", "富山", 5, 10], ["17", "石川", 5, 9], ["18", "福井", 6, 8],
  ["19", "山梨", 7, 10], ["20", "長野", 6, 10], ["21", "岐阜", 6, 9],
  ["22", "静岡", 8, 10], ["23", "愛知", 7, 9], ["24", "三重", 8, 7],
  ["25", "滋賀", 7, 7], ["26", "京都", 7, 6], ["27", "大阪", 8, 5],
  ["28", "兵庫", 7, 5], ["29", "奈良", 8, 6], ["30", "和歌山", 9, 6],
  ["31", "鳥取", 7, 4], ["32", "島根", 7, 3], ["33", "岡山", 8, 4],
  ["34", "広島", 8, 3], ["35", "山口", 8, 2], ["36", "徳島", 10, 5],
  ["37", "香川", 9, 5], ["38", "愛媛", 9, 4], ["39", "高知", 10, 4],
  ["40", "福岡", 8, 1], ["41", "佐賀", 9, 1], ["42", "長崎", 9, 0],
  ["43", "熊本", 10, 1], ["44", "大分", 9, 2], ["45", "宮崎", 10, 2],
  ["46", "鹿児島", 11, 1], ["47", "沖縄", 12, 0],
];
const SVGNS = "http://www.w3.org/2000/svg";
const TILE = 40;

let refreshMs = 2000;
let updates = 0;
let timer = null;

function drawMap() {
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", "0 0 " + 14 * TILE + " " + 13 * TILE);
  svg.setAttribute("role", "img");
  for (const [code, name, row, col] of PREFS) {
    const g = document.createElementNS(SVGNS, "g");
    g.setAttribute("class", "tile");
    g.setAttribute("id", "pref-" + code);
    g.setAttribute("data-pref", code);
    g.setAttribute("data-state", "none");
    const rect = document.createElementNS(SVGNS, "rect");
    rect.setAttribute("x", col * TILE);
    rect.setAttribute("y", row * TILE);
    rect.setAttribute("width", TILE);
    rect.setAttribute("height", TILE);
    rect.setAttribute("rx", 4);
    const title = document.createElementNS(SVGNS, "title");
    title.textContent = code + " " + name;
    const text = document.createElementNS(SVGNS, "text");
    text.setAttribute("x", col * TILE + TILE / 2);
    text.setAttribute("y", row * TILE + TILE / 2 + 4);
    text.textContent = name;
    g.append(rect, title, text);
    svg.append(g);
  }
  document.getElementById("map").append(svg);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "—" : String(text);
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

function ago(iso, now) {
  if (!iso) return "never";
  const t = Date.parse(iso), n = Date.parse(now);
  if (isNaN(t)) return String(iso);
  if (isNaN(n)) return iso;
  const s = Math.max(0, Math.round((n - t) / 1000));
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z") + " (" + s + " s ago)";
}

function queueText(q) {
  if (!q || typeof q !== "object") return "—";
  const parts = [];
  if (q.outbox !== undefined) parts.push("outbox " + q.outbox);
  if (q.oldest_ms) parts.push("oldest " + Math.round(q.oldest_ms / 1000) + " s");
  if (q.rejected) parts.push("rejected " + q.rejected);
  if (q.inbox !== undefined) parts.push("inbox " + q.inbox);
  return parts.length ? parts.join(", ") : "—";
}

function render(board) {
  document.getElementById("self").textContent = board.self || "?";
  document.getElementById("time").textContent = board.time || "";
  const prefs = board.prefs || {};
  for (const [code] of PREFS) {
    const g = document.getElementById("pref-" + code);
    g.setAttribute("data-state", prefs[code] || "none");
  }
  const nodes = Array.isArray(board.nodes) ? board.nodes : [];
  const tbody = document.querySelector("#nodes tbody");
  const rows = [];
  const counts = {};
  for (const n of nodes) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-node", n.node || "");
    tr.setAttribute("data-state", n.state || "");
    counts[n.state] = (counts[n.state] || 0) + 1;
    cell(tr, n.node, "node");
    cell(tr, n.kind, "kind");
    cell(tr, n.version, "version");
    cell(tr, n.state, "state");
    cell(tr, ago(n.last_seen, board.time), "seen");
    cell(tr, n.skew_ms === null || n.skew_ms === undefined ? "—" : n.skew_ms + " ms", "skew");
    cell(tr, queueText(n.queues), "queue");
    cell(tr, n.alerts_open || 0, "alerts");
    rows.push(tr);
  }
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, "no node has reported yet", "empty");
    td.colSpan = 8;
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
  document.getElementById("counts").textContent = "(" + nodes.length + ": " +
    Object.keys(counts).sort().map((k) => k + " " + counts[k]).join(", ") + ")";
  const alerts = Array.isArray(board.alerts) ? board.alerts : [];
  const abody = document.querySelector("#alerts tbody");
  const arows = alerts.map((a) => {
    const tr = document.createElement("tr");
    tr.setAttribute("data-code", a.code || "");
    tr.setAttribute("data-class", a.class || "");
    cell(tr, a.time);
    cell(tr, a.node);
    cell(tr, a.code, "code");
    cell(tr, a.class);
    cell(tr, a.detail);
    return tr;
  });
  if (!arows.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, "none", "empty");
    td.colSpan = 5;
    arows.push(tr);
  }
  abody.replaceChildren(...arows);
  if (typeof board.refresh_ms === "number" && board.refresh_ms >= 200 && board.refresh_ms <= 5000) {
    refreshMs = board.refresh_ms;
  }
  updates++;
  const fresh = document.getElementById("fresh");
  fresh.setAttribute("data-fresh", "yes");
  fresh.textContent = "updated " + new Date().toLocaleTimeString() + " (every " + refreshMs / 1000 + " s)";
  document.body.setAttribute("data-updates", String(updates));
}

async function refresh() {
  try {
    const r = await fetch("/board.json", { cache: "no-store", credentials: "same-origin" });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    render(await r.json());
  } catch (e) {
    const fresh = document.getElementById("fresh");
    fresh.setAttribute("data-fresh", "no");
    fresh.textContent = "the board could not be read: " + e.message;
  }
  timer = setTimeout(refresh, refreshMs);
}

document.addEventListener("DOMContentLoaded", () => {
  drawMap();
  refresh();
});
