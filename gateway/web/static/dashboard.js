// The supervisors' dashboard: renders the snapshot pushed over /api/live (see gateway/web/snapshot.py
// for its fields): whole when the stream opens ("snapshot"), then what changed ("delta"). Everything
// is built with DOM calls and textContent, never innerHTML, because titles and pause reasons come
// from the config and the PBX.
"use strict";

const WINDOWS = { "15m": "15分钟", "1h": "1小时", "24h": "24小时", today: "今日" };
const KIND_LABELS = { general: "综合", expert: "专席", policy: "政策专家", subcenter: "分中心" };
const MODE_LABELS = { hotline: "主号", merged: "已并入", parallel: "双号并行", subcenter: "分中心", legacy: "原号" };
const STATE_LABELS = {
  logged_out: "未签入", ready: "空闲", ringing: "振铃", on_call: "通话", wrap_up: "话后", paused: "小休",
};
// Listen / whisper / barge on a seat's live call: the gateway rings the supervisor's own phone.
const SUPERVISE_MODES = { listen: "监听", whisper: "耳语", barge: "强插" };
const SILENT_STREAM_MS = 20000; // the server pings every 15 s; silence beyond this means a dead stream
const PAUSED_SHOWN = 4; // per queue card
const SVG_NS = "http://www.w3.org/2000/svg";

const clockFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const hourFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false,
});

const view = {
  snapshot: null,
  number: "", // the event id of the snapshot shown: a delta applies to that one only
  seatIndex: new Map(), // seat key -> its position in snapshot.seats
  skewMs: 0, // this browser's clock minus the server's (plus the push's latency): counters use it
  lastMessageAt: Date.now(),
  window: WINDOWS[location.hash.slice(1)] ? location.hash.slice(1) : "15m",
};

// ---- formatting -------------------------------------------------------------------------------

const dash = "—";
const pct = (x) => (x == null ? dash : `${(x * 100).toFixed(1)}%`);
const count = (n) => (n == null ? dash : n.toLocaleString("zh-CN"));
const secs = (x) => (x == null ? dash : `${x.toFixed(1)}秒`);

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

// ---- DOM helpers ------------------------------------------------------------------------------

const byTestId = (root, id) => root.querySelector(`[data-testid="${id}"]`);

function setText(root, id, text) {
  const el = byTestId(root, id);
  if (el.textContent !== text) el.textContent = text;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text != null) node.textContent = text;
  return node;
}

// Keep one child per item, keyed, in the items' order: figures update in place, so the wall screen
// does not flicker and tests can hold on to an element across pushes.
function reconcile(container, items, keyOf, create, update) {
  const existing = new Map([...container.children].map((child) => [child.dataset.key, child]));
  items.forEach((item, index) => {
    const key = keyOf(item);
    let node = existing.get(key);
    if (!node) {
      node = create(item);
      node.dataset.key = key;
    }
    existing.delete(key);
    update(node, item);
    if (container.children[index] !== node) container.insertBefore(node, container.children[index] || null);
  });
  for (const stale of existing.values()) stale.remove();
}

// ---- targets ----------------------------------------------------------------------------------
// Each figure is judged by its target from hotline_merge.yaml (snapshot.py ``Targets``): at or better
// than target green, a little worse amber, worse still red; the target is on hover. No target, or
// nothing to divide by: no colour at all, so an empty queue is not painted healthy.
const WARN_POINTS = 0.1; // a rate up to 10 points under its target
const WARN_FACTOR = 1.5; // an abandon rate or a time up to 1.5 times its target
const AT_LEAST = new Set(["response_rate", "resolution_rate", "satisfaction_rate", "service_level"]);
const TARGET_TEXT = {
  response_rate: (t) => `目标：接通率不低于 ${pct(t)}`,
  resolution_rate: (t) => `目标：办结率不低于 ${pct(t)}`,
  satisfaction_rate: (t) => `目标：满意率不低于 ${pct(t)}`,
  service_level: (t, q) => `目标：不低于 ${pct(t)} 的来电在 ${q ? q.service_level_s : "各队列时限"} 秒内接通`,
  abandon_rate: (t) => `目标：放弃率不高于 ${pct(t)}`,
  asa_s: (t) => `目标：平均应答速度不超过 ${t} 秒`,
  longest_wait_s: (t) => `目标：没有来电等候超过 ${t} 秒`,
};

function grade(kind, value, target) {
  if (value == null || target == null) return "";
  if (AT_LEAST.has(kind)) return value >= target ? "good" : value >= target - WARN_POINTS ? "warn" : "bad";
  return value <= target ? "good" : value <= target * WARN_FACTOR ? "warn" : "bad";
}

// Colour ``node`` by its target and say the target on hover; ``queue`` names a queue's threshold.
function judge(node, kind, value, targets, queue) {
  const target = targets ? targets[kind] : null;
  const verdict = grade(kind, value, target);
  if (verdict) node.dataset.grade = verdict;
  else delete node.dataset.grade;
  const title = target == null ? "" : TARGET_TEXT[kind](target, queue);
  if (node.title !== title) node.title = title;
}

// A counter that keeps ticking between pushes: the seconds since ``since`` (epoch seconds on the
// server's clock), or 0 when not ``running``. ``targets`` (a queue's) judges it as its longest wait.
function setTicker(node, since, running, targets) {
  node.classList.add("tick");
  node.dataset.since = String(since);
  node.dataset.running = running ? "1" : "";
  if (targets) {
    node.dataset.target = String(targets.longest_wait_s ?? "");
    node.title = targets.longest_wait_s == null ? "" : TARGET_TEXT.longest_wait_s(targets.longest_wait_s);
  }
  paintTicker(node, Date.now());
}

function paintTicker(node, now) {
  const value = node.dataset.running ? (now - view.skewMs) / 1000 - Number(node.dataset.since) : 0;
  const text = duration(value);
  if (node.textContent !== text) node.textContent = text;
  if (node.dataset.target) {
    // Nobody waiting: no colour (a wait of 0 is no achievement worth painting green).
    const verdict = node.dataset.running ? grade("longest_wait_s", value, Number(node.dataset.target)) : "";
    if (verdict) node.dataset.grade = verdict;
    else delete node.dataset.grade;
  }
}

// ---- rendering --------------------------------------------------------------------------------

function render() {
  const snap = view.snapshot;
  if (!snap) return;
  setText(document, "updated-at", clockFormat.format(new Date(snap.at)));
  renderLink(snap.link);
  renderOverall(snap);
  const seatsByQueue = pausedSeatsByQueue(snap.seats);
  reconcile(byTestId(document, "queues"), snap.queues, (q) => q.name, createQueue, (node, q) =>
    updateQueue(node, q, seatsByQueue.get(q.name) || []),
  );
  renderChart(snap.chart);
  renderLines(snap.lines);
  renderSeats(snap.seats);
}

function renderLink(link) {
  const banner = byTestId(document, "link-banner");
  banner.hidden = !link.stale;
  if (link.stale) {
    banner.textContent = `AMI链路异常（${link.ami}）：${link.reason || "数据可能已过期"}。以下数据可能不是最新。`;
  }
}

function renderOverall(snap) {
  const rates = snap.overall[view.window] || {};
  setText(document, "overall-waiting", count(snap.queues.reduce((sum, q) => sum + q.waiting, 0)));
  setText(document, "overall-offered", count(rates.offered));
  setText(document, "overall-answered", count(rates.answered));
  setText(document, "overall-abandoned", count(rates.abandoned));
  setText(document, "overall-response-denominator", count(rates.offered));
  // The order system reports resolution per work order, usually for the calendar day only: show
  // today's figure, labelled so, when the chosen window has none.
  const resolution = rates.with_feedback || !snap.overall.today ? rates : snap.overall.today;
  setText(document, "overall-resolution-window", resolution === rates ? "" : `（${WINDOWS.today}）`);
  setText(document, "overall-resolution-denominator", count(resolution.with_feedback));
  setText(document, "overall-satisfaction-denominator", count(rates.rated));
  const figures = [
    ["overall-response-rate", "response_rate", rates.response_rate, pct],
    ["overall-resolution-rate", "resolution_rate", resolution.resolution_rate, pct],
    ["overall-satisfaction-rate", "satisfaction_rate", rates.satisfaction_rate, pct],
    ["overall-sl-answered", "service_level", rates.service_level_of_answered, pct],
    ["overall-sl-offered", "service_level", rates.service_level_of_offered, pct],
    ["overall-asa", "asa_s", rates.asa_s, secs],
    ["overall-abandon-rate", "abandon_rate", rates.abandon_rate, pct],
  ];
  for (const [id, kind, value, format] of figures) {
    setText(document, id, format(value));
    judge(byTestId(document, id), kind, value, snap.targets);
  }
}

function pausedSeatsByQueue(seats) {
  const byQueue = new Map();
  for (const seat of seats.filter((s) => s.state === "paused")) {
    for (const queue of seat.queues) {
      if (!byQueue.has(queue)) byQueue.set(queue, []);
      byQueue.get(queue).push(seat);
    }
  }
  return byQueue;
}

function createQueue(q) {
  const node = document.getElementById("queue-template").content.firstElementChild.cloneNode(true);
  node.dataset.testid = `queue-${q.name}`;
  return node;
}

function updateQueue(node, q, pausedSeats) {
  const rates = q.rates[view.window] || {};
  node.querySelector(".q-title").textContent = q.title;
  node.querySelector(".q-kind").textContent = KIND_LABELS[q.kind] || q.kind;
  for (const t of node.querySelectorAll(".q-threshold")) t.textContent = String(q.service_level_s);
  node.querySelector(".q-longest-target").textContent = String(q.targets.longest_wait_s ?? dash);
  setText(node, "waiting", count(q.waiting));
  node.classList.toggle("has-waiting", q.waiting > 0);
  const at = Date.parse(view.snapshot.at) / 1000;
  setTicker(byTestId(node, "longest-wait"), at - q.longest_wait_s, q.waiting > 0, q.targets);
  setText(node, "offered", count(rates.offered));
  setText(node, "answered", count(rates.answered));
  setText(node, "abandoned", count(rates.abandoned));
  const figures = [
    ["sl-answered", "service_level", rates.service_level_of_answered, pct],
    ["sl-offered", "service_level", rates.service_level_of_offered, pct],
    ["asa", "asa_s", rates.asa_s, secs],
    ["abandon-rate", "abandon_rate", rates.abandon_rate, pct],
  ];
  for (const [id, kind, value, format] of figures) {
    setText(node, id, format(value));
    judge(byTestId(node, id), kind, value, q.targets, q);
  }
  setText(node, "seats-logged-in", count(q.seats.logged_in));
  setText(node, "seats-ready", count(q.seats.ready));
  setText(node, "seats-ringing", count(q.seats.ringing));
  setText(node, "seats-on-call", count(q.seats.on_call));
  setText(node, "seats-wrap-up", count(q.seats.wrap_up));
  setText(node, "seats-paused", count(q.seats.paused));
  // The longest breaks first, a few of them: the card must stay readable when many seats pause.
  const longest = [...pausedSeats].sort((a, b) => a.since - b.since);
  const more = longest.length - PAUSED_SHOWN;
  node.querySelector(".q-paused-more").textContent = more > 0 ? `另有 ${more} 人小休` : "";
  reconcile(
    byTestId(node, "paused-seats"),
    longest.slice(0, PAUSED_SHOWN),
    seatKey,
    () => {
      const li = el("li");
      li.append(el("span", "who"), el("span", "why"), el("span", "since"));
      return li;
    },
    (li, s) => {
      li.querySelector(".who").textContent = `${s.name}（${s.extension}）`;
      li.querySelector(".why").textContent = s.reason || "未注明原因";
      setTicker(li.querySelector(".since"), s.since, true);
    },
  );
}

function renderSeats(seats) {
  const present = seats.filter((s) => s.state !== "logged_out");
  const absent = seats.length - present.length;
  setText(document, "seats-logged-out", absent ? `未签入 ${absent} 人` : "");
  reconcile(
    byTestId(document, "seats"),
    present,
    seatKey,
    (s) => {
      const tile = el("div", "seat");
      tile.dataset.testid = `seat-${s.extension}`;
      tile.title = `节点 ${s.node}`;
      const head = el("div", "seat-head");
      head.append(el("span", "ext", s.extension), el("span", "name"));
      const state = el("span", "state");
      state.dataset.testid = "state";
      const since = el("span", "since");
      since.dataset.testid = "since";
      const calls = el("span", "calls");
      calls.dataset.testid = "calls";
      const actions = el("div", "supervise");
      for (const [mode, label] of Object.entries(SUPERVISE_MODES)) {
        const button = el("button", null, label);
        button.type = "button";
        button.dataset.testid = `supervise-${mode}`;
        button.addEventListener("click", () => supervise(tile.dataset.callId, mode, actions));
        actions.append(button);
      }
      tile.append(head, state, since, el("span", "reason"), calls, actions);
      return tile;
    },
    (tile, s) => {
      if (tile.seat === s) return; // unchanged since the last push (a delta keeps its object)
      tile.seat = s;
      tile.className = `seat ${s.state}`;
      tile.querySelector(".name").textContent = s.name;
      setText(tile, "state", STATE_LABELS[s.state] || s.state);
      setTicker(byTestId(tile, "since"), s.since, true);
      tile.querySelector(".reason").textContent = s.state === "paused" ? s.reason : "";
      setText(tile, "calls", `接听 ${count(s.calls_taken)}`);
      tile.dataset.callId = s.call_id || "";
      tile.querySelector(".supervise").hidden = !(s.state === "on_call" && s.call_id);
    },
  );
}

async function supervise(callId, mode, actions) {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(`/api/calls/${encodeURIComponent(callId)}/supervise`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    credentials: "same-origin",
    body: JSON.stringify({ mode }),
  });
  const body = await response.json().catch(() => ({}));
  actions.title = response.ok
    ? `${SUPERVISE_MODES[mode]}: 正在呼叫您的电话`
    : (body.error && body.error.message) || `HTTP ${response.status}`;
  actions.dataset.result = response.ok ? "ringing" : "refused";
}

function renderLines(lines) {
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  // Busiest first: the merged numbers citizens still dial are the evidence for retiring them.
  const sorted = [...lines].sort(
    (a, b) => b.today - a.today || sum(b.trend) - sum(a.trend) || a.number.localeCompare(b.number),
  );
  reconcile(
    byTestId(document, "lines"),
    sorted,
    (l) => l.number,
    (l) => {
      const row = el("tr");
      row.dataset.testid = `line-${l.number}`;
      const today = el("td", "n");
      today.dataset.testid = "today";
      row.append(el("td", "number", l.number), el("td", "title"), el("td", "mode"), today, el("td", "trend"));
      return row;
    },
    (row, l) => {
      row.querySelector(".title").textContent = l.title;
      const mode = row.querySelector(".mode");
      mode.textContent = MODE_LABELS[l.mode] || l.mode;
      mode.classList.toggle("still-dialled", l.mode === "merged" && l.today > 0);
      setText(row, "today", count(l.today));
      row.querySelector(".trend").replaceChildren(sparkline(l.trend));
    },
  );
}

function sparkline(values) {
  const w = 120;
  const h = 28;
  const top = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / top) * (h - 4)).toFixed(1)}`);
  const line = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "spark", role: "img" });
  line.append(svg("title", {}, `近24小时每小时来电：${values.join("、")}`));
  if (points.length) line.append(svg("polyline", { points: points.join(" ") }));
  return line;
}

function renderChart(points) {
  const chart = byTestId(document, "chart");
  const [W, H] = [960, 300];
  const pad = { left: 52, right: 60, top: 16, bottom: 34 };
  const plotW = W - pad.left - pad.right;
  const plotH = H - pad.top - pad.bottom;
  const nodes = [];
  if (!points.length) {
    nodes.push(svg("text", { x: W / 2, y: H / 2, class: "empty" }, "暂无数据"));
    chart.replaceChildren(...nodes);
    return;
  }
  const first = points[0].at;
  const span = Math.max(1, points[points.length - 1].at - first);
  const slot = points.length > 1 ? span / (points.length - 1) : 1;
  const x = (at) => pad.left + ((at - first) / (span + slot)) * plotW;
  const topWaiting = niceCeiling(Math.max(1, ...points.map((p) => p.waiting || 0)));
  const yWaiting = (v) => pad.top + plotH - (v / topWaiting) * plotH;
  const ySl = (v) => pad.top + plotH - v * plotH;

  for (const f of [0, 0.5, 1]) {
    const y = pad.top + plotH - f * plotH;
    nodes.push(svg("line", { x1: pad.left, x2: W - pad.right, y1: y, y2: y, class: "grid" }));
    nodes.push(svg("text", { x: pad.left - 8, y: y + 5, class: "axis left" }, String(Math.round(topWaiting * f))));
    nodes.push(svg("text", { x: W - pad.right + 8, y: y + 5, class: "axis right" }, `${f * 100}%`));
  }
  const barW = Math.max(1, (plotW / (points.length + 1)) * 0.7);
  for (const p of points) {
    if (p.waiting == null || p.waiting === 0) continue;
    const y = yWaiting(p.waiting);
    nodes.push(svg("rect", { x: x(p.at), y, width: barW, height: pad.top + plotH - y, class: "bar" }));
  }
  // The service-level line breaks where a slot had no answered call, rather than inventing a value.
  let run = [];
  const flush = () => {
    if (run.length > 1) nodes.push(svg("polyline", { points: run.join(" "), class: "sl-line" }));
    if (run.length === 1) {
      const [cx, cy] = run[0].split(",");
      nodes.push(svg("circle", { cx, cy, r: 3, class: "sl-dot" }));
    }
    run = [];
  };
  for (const p of points) {
    if (p.service_level == null) flush();
    else run.push(`${(x(p.at) + barW / 2).toFixed(1)},${ySl(p.service_level).toFixed(1)}`);
  }
  flush();

  const hours = points.filter((p) => p.at % 3600 === 0);
  const every = Math.ceil(hours.length / 8);
  hours.forEach((p, i) => {
    if (i % every) return;
    nodes.push(svg("text", { x: x(p.at), y: H - 10, class: "axis bottom" }, hourFormat.format(new Date(p.at * 1000))));
  });
  chart.replaceChildren(...nodes);
  setText(document, "chart-span", `近 ${Math.round((span + slot) / 3600)} 小时`);
}

function niceCeiling(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((n) => n >= value);
}

// ---- window selector --------------------------------------------------------------------------

function selectWindow(name, remember) {
  view.window = name;
  for (const button of document.querySelectorAll("[data-window]")) {
    button.setAttribute("aria-pressed", String(button.dataset.window === name));
  }
  document.querySelector(".window-name").textContent = `统计窗口：${WINDOWS[name]}`;
  if (remember) history.replaceState(null, "", `#${name}`); // a wall screen's bookmark keeps its window
  render();
}

// ---- the live stream --------------------------------------------------------------------------

function streamAlive() {
  view.lastMessageAt = Date.now();
  setStreamDown(false);
}

function setStreamDown(down) {
  byTestId(document, "stream-banner").hidden = !down;
  document.body.classList.toggle("stream-down", down);
}

// Seats are keyed by node and extension: a province's cities reuse each other's extensions.
const seatKey = (s) => `${s.node}/${s.extension}`;
const bySeat = (a, b) => (a.node === b.node ? compare(a.extension, b.extension) : compare(a.node, b.node));
const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function indexSeats() {
  view.seatIndex = new Map(view.snapshot.seats.map((s, i) => [seatKey(s), i]));
}

// A delta: the top-level parts that changed, the seats new or changed, the seats gone.
function applyDelta(delta) {
  const snap = view.snapshot;
  for (const [name, value] of Object.entries(delta)) {
    if (!["base", "seats", "gone"].includes(name)) snap[name] = value;
  }
  let reorder = false;
  for (const seat of delta.seats) {
    const at = view.seatIndex.get(seatKey(seat));
    if (at === undefined) {
      snap.seats.push(seat);
      reorder = true;
    } else {
      snap.seats[at] = seat;
    }
  }
  if (delta.gone.length) {
    const gone = new Set(delta.gone.map(([node, extension]) => `${node}/${extension}`));
    snap.seats = snap.seats.filter((s) => !gone.has(seatKey(s)));
    reorder = true;
  }
  if (reorder) {
    snap.seats.sort(bySeat);
    indexSeats();
  }
}

function received(number) {
  view.number = number;
  view.skewMs = Date.now() - Date.parse(view.snapshot.at);
  streamAlive();
  render();
}

function connect() {
  const source = new EventSource("/api/live");
  source.addEventListener("snapshot", (event) => {
    view.snapshot = JSON.parse(event.data);
    indexSeats();
    received(event.lastEventId);
  });
  source.addEventListener("delta", (event) => {
    const delta = JSON.parse(event.data);
    if (!view.snapshot || String(delta.base) !== view.number) {
      // Out of step (the server never sends one so): open the stream again, which starts whole.
      source.close();
      connect();
      return;
    }
    applyDelta(delta);
    received(event.lastEventId);
  });
  source.addEventListener("ping", streamAlive);
  source.addEventListener("error", () => {
    setStreamDown(true);
    // The browser retries by itself unless the server refused the stream (expired session, 5xx).
    if (source.readyState === EventSource.CLOSED) recover();
  });
}

async function recover() {
  try {
    const answer = await fetch("/api/snapshot", { credentials: "same-origin" });
    if (answer.status === 401) {
      location.assign("/login");
      return;
    }
  } catch {
    // The server is unreachable: retry the stream below.
  }
  setTimeout(connect, 5000);
}

async function logout() {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
  location.assign("/login");
}

function everySecond() {
  const now = Date.now();
  for (const node of document.querySelectorAll(".tick")) paintTicker(node, now);
  if (now - view.lastMessageAt > SILENT_STREAM_MS) setStreamDown(true);
}

for (const button of document.querySelectorAll("[data-window]")) {
  button.addEventListener("click", () => selectWindow(button.dataset.window, true));
}
document.getElementById("logout").addEventListener("click", logout);
selectWindow(view.window, false);
setInterval(everySecond, 1000);
connect();
