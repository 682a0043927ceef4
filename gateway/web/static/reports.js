"use strict";
// The reports page: asks /api/reports and /api/reports/ranking, draws the tables and one SVG chart
// with no library, and keeps the chosen range in the address so a link shows the same report.

const SVG_NS = "http://www.w3.org/2000/svg";
const TITLES = { intervals: "按半小时", queues: "按队列", lines: "按原热线号码", departments: "按部门",
  staffing: "人手不足时段（Erlang C）", ranking: "部门三率排名" };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function format(value, kind) {
  if (value === null || value === undefined) return "—";
  if (kind === "rate") return (value * 100).toFixed(1) + "%";
  if (kind === "seconds") return Number(value).toFixed(1);
  if (kind === "number") return Number(value).toFixed(2);
  return String(value);
}

function showError(message) {
  const banner = document.querySelector('[data-testid="report-error"]');
  banner.textContent = message || "";
  banner.hidden = !message;
}

async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (answer.status === 401) { location.assign("/login"); throw new Error("需要登录"); }
  const body = await answer.json();
  if (!answer.ok) throw new Error((body.error && body.error.message) || "查询失败（" + answer.status + "）");
  return body;
}

function exportUrl(params, format, table) {
  const query = new URLSearchParams(params);
  query.set("format", format);
  query.set("table", table);
  return "/api/reports/export?" + query.toString();
}

function renderTable(table, params) {
  const section = document.querySelector(`[data-table="${table.name}"]`);
  section.querySelectorAll("h2, table, p.empty").forEach((node) => node.remove());
  const heading = el("h2", "", table.title || TITLES[table.name]);
  const link = el("a", "", "导出CSV");
  link.href = exportUrl(params, "csv", table.name);
  link.dataset.testid = `export-csv-${table.name}`;
  heading.append(link);
  section.prepend(heading);
  if (!table.rows.length) {
    const empty = el("p", "empty", table.name === "staffing" ? "所选日期内没有排班不足的时段。" : "所选日期内没有数据。");
    empty.dataset.testid = `empty-${table.name}`;
    section.append(empty);
    return;
  }
  const node = el("table");
  node.dataset.testid = `table-${table.name}`;
  const head = node.createTHead().insertRow();
  for (const column of table.columns) head.append(el("th", column.kind === "text" ? "text" : "", column.label));
  const body = node.createTBody();
  for (const row of table.rows) {
    const line = body.insertRow();
    for (const column of table.columns) {
      const cell = el("td", column.kind === "text" ? "text" : "", format(row[column.key], column.kind));
      cell.dataset.key = column.key;
      line.append(cell);
    }
  }
  section.append(node);
}

function renderChart(table, target) {
  const box = document.querySelector('[data-testid="chart"]');
  box.replaceChildren();
  const rows = table.rows;
  if (!rows.length) { box.append(el("p", "empty", "所选日期内没有数据。")); return; }
  const width = 1000, height = 260, left = 40, right = 40, top = 10, bottom = 30;
  const plotW = width - left - right, plotH = height - top - bottom;
  const most = Math.max(1, ...rows.map((r) => r.offered));
  const step = plotW / rows.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "每半小时呼入、接通与服务水平" });
  chart.dataset.testid = "chart-svg";
  chart.append(svg("line", { class: "axis", x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH }));
  chart.append(svg("text", { x: left - 6, y: top + 10, "text-anchor": "end" }, String(most)));
  chart.append(svg("text", { x: left + plotW + 6, y: top + 10 }, "100%"));
  const points = [];
  rows.forEach((row, i) => {
    const x = left + i * step;
    const barW = Math.max(1, step * 0.4);
    const offeredH = (row.offered / most) * plotH;
    const answeredH = (row.answered / most) * plotH;
    const bar = svg("rect", { x: x + step * 0.1, y: top + plotH - offeredH, width: barW, height: offeredH, fill: "#5b6b8c" });
    bar.append(svg("title", {}, `${row.date} ${row.interval} 呼入 ${row.offered}`));
    chart.append(bar);
    chart.append(svg("rect", { x: x + step * 0.5, y: top + plotH - answeredH, width: barW, height: answeredH, fill: "#4ea8ff" }));
    if (row.sl_of_offered !== null) points.push(`${x + step / 2},${top + plotH - row.sl_of_offered * plotH}`);
    if (i % Math.max(1, Math.ceil(rows.length / 12)) === 0) {
      chart.append(svg("text", { x: x + step / 2, y: height - 10, "text-anchor": "middle" }, `${row.date.slice(5)} ${row.interval.slice(0, 5)}`));
    }
  });
  const goal = top + plotH - target * plotH;
  chart.append(svg("line", { x1: left, y1: goal, x2: left + plotW, y2: goal, stroke: "#ffb020", "stroke-dasharray": "6 4" }));
  if (points.length) {
    const line = svg("polyline", { points: points.join(" "), fill: "none", stroke: "#3ddc84", "stroke-width": 2 });
    line.dataset.testid = "chart-sl";
    chart.append(line);
  }
  box.append(chart);
}

function params(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function remember() {
  const query = new URLSearchParams({ ...params(document.getElementById("range-form")), ...params(document.getElementById("ranking-form")) });
  history.replaceState(null, "", "/reports?" + query.toString());
}

async function loadRange(query) {
  const form = document.getElementById("range-form");
  const report = await getJson("/api/reports?" + new URLSearchParams(query).toString());
  form.elements.from.value = report.from;
  form.elements.to.value = report.to;
  const select = form.elements.scope;
  select.replaceChildren(...report.scopes.map((s) => { const o = el("option", "", s.name); o.value = s.key; return o; }));
  select.value = report.scope;
  const shown = { from: report.from, to: report.to, scope: report.scope };
  for (const table of Object.values(report.tables)) renderTable(table, shown);
  document.querySelector('[data-testid="chart-caption"]').textContent =
    `${report.from} 至 ${report.to} · ${select.selectedOptions[0] ? select.selectedOptions[0].textContent : report.scope}`;
  renderChart(report.tables.intervals, report.service_level_target);
  const month = document.getElementById("ranking-form").elements.month;
  if (!month.value) month.value = report.to.slice(0, 7);
  document.querySelector('[data-testid="export-xlsx"]').href = exportUrl({ ...shown, month: month.value,
    sort: document.getElementById("ranking-form").elements.sort.value }, "xlsx", "all");
}

async function loadRanking(query) {
  const answer = await getJson("/api/reports/ranking?" + new URLSearchParams(query).toString());
  const form = document.getElementById("ranking-form");
  form.elements.month.value = answer.month;
  form.elements.sort.value = answer.sort;
  renderTable(answer.table, { month: answer.month, sort: answer.sort });
}

async function run(task) {
  try {
    showError("");
    await task();
    remember();
    document.body.dataset.loaded = "true";
  } catch (error) {
    showError(error.message);
  }
}

function start() {
  const given = new URLSearchParams(location.search);
  const pick = (names) => Object.fromEntries(names.filter((n) => given.get(n)).map((n) => [n, given.get(n)]));
  document.getElementById("range-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(() => loadRange(params(event.target)));
  });
  document.getElementById("ranking-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(() => loadRanking(params(event.target)));
  });
  run(async () => {
    await loadRange(pick(["from", "to", "scope"]));
    await loadRanking({ month: given.get("month") || document.getElementById("ranking-form").elements.month.value, ...pick(["sort"]) });
  });
}

start();
