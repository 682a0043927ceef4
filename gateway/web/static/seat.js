// The seats' workbench: one seat's live view over SSE, its work-order draft saved as typed, and
// its actions through the gateway's API (login, pause, ready, hand-over). No framework, no CDN.
"use strict";

const SEAT = document.querySelector('meta[name="seat"]').content;
const ROLE = document.querySelector('meta[name="role"]').content;
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const SAVE_AFTER_MS = 600; // debounce: save once the seat pauses typing
const SILENT_STREAM_MS = 20000; // the hub sends a ping every 15 s
const PHASES = { ringing: "振铃中", talking: "通话中", left: "已离开通话", idle: "暂无来电" };
const STATES = {
  logged_out: "未签入", ready: "空闲", ringing: "振铃", on_call: "通话中", wrap_up: "话后处理", paused: "示忙",
};
const MODES = { hotline: "12345主号", merged: "整体并入", parallel: "双号并行", subcenter: "设分中心", legacy: "并入前原线路" };
const TRANSFER_STATES = {
  requested: "已发起", ringing: "振铃中", answered: "已接听", completed: "已完成", cancelled: "已取消",
  failed: "失败", timed_out: "超时未接",
};

const ui = {
  setup: null, view: null, lastMessageAt: Date.now(),
  draftCall: null, // the call the form is for
  dirty: false, saving: false, timer: null, version: 0,
};

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

function show(id, visible) {
  $(id).hidden = !visible;
}

function text(id, value) {
  $(id).textContent = value ?? "—";
}

function notice(message) {
  const node = $("notice");
  node.textContent = message;
  node.hidden = !message;
  if (message) setTimeout(() => { if (node.textContent === message) node.hidden = true; }, 8000);
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": CSRF } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(path, init);
  if (answer.status === 401) {
    location.assign("/login");
    throw new Error("登录已失效");
  }
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(data.error?.message || `HTTP ${answer.status}`);
  return data;
}

// ---- seat state -----------------------------------------------------------------------------

function renderSeat(seat) {
  const state = $("seat-state");
  state.dataset.state = seat.state;
  state.textContent = STATES[seat.state] + (seat.reason ? `（${seat.reason}）` : "");
  text("state-since", seat.in_state_s == null ? "" : `${seat.in_state_s} 秒`);
  show("wrap-up", seat.wrap_up_left_s != null);
  text("wrap-up-left", seat.wrap_up_left_s);
  const loggedIn = seat.queues.some((q) => q.logged_in);
  $("login").disabled = seat.queues.every((q) => q.logged_in);
  $("logout-queues").disabled = !loggedIn;
  $("pause").disabled = !loggedIn || seat.state === "paused";
  $("unpause").disabled = !seat.queues.some((q) => q.paused);
}

async function seatAction(verb, body) {
  try {
    await api("POST", `/api/agents/${SEAT}/${verb}`, body);
  } catch (error) {
    notice(`操作失败：${error.message}`);
  }
}

function ready() {
  if (ui.view?.seat.state === "wrap_up") return seatAction("ready");
  return seatAction("unpause");
}

// ---- the screen pop -------------------------------------------------------------------------

function renderPop(call) {
  const pop = $("pop");
  pop.dataset.phase = call ? call.phase : "idle";
  text("pop-phase", PHASES[call ? call.phase : "idle"]);
  text("pop-caller", call ? call.caller || "未显示号码" : null);
  const title = call?.line_title || "";
  text("pop-line", call && call.legacy_line ? (title.startsWith(call.legacy_line) ? title : `${call.legacy_line} ${title}`) : null);
  text("pop-department", call?.department);
  text("pop-mode", call ? MODES[call.merge_mode] || call.merge_mode : null);
  text("pop-category", call && call.category_code ? `${call.category_code} ${call.category_name || ""}` : null);
  text("pop-wait", call ? `${call.wait_s} 秒` : null);
  text("pop-talk", call ? `${call.talk_s} 秒` : null);
  show("pop-elderly", Boolean(call?.elderly));
  show("pop-callback", Boolean(call?.callback_requested));
  show("pop-is-callback", Boolean(call?.is_callback));
  renderHistory(call);
}

function renderHistory(call) {
  const list = $("history");
  const state = call ? call.history.state : "";
  text("history-days", call ? call.history_days : ui.setup?.history_days);
  text("history-state", { loading: "查询中…", unavailable: "工单系统暂不可用", ok: `${call?.history.orders.length} 件` }[state] || "");
  list.replaceChildren(...(call ? call.history.orders : []).map((order) => {
    const item = document.createElement("li");
    const when = new Date(order.created_at).toLocaleString("zh-CN", { hour12: false });
    item.textContent = `${order.work_order_id} · ${when} · ${order.legacy_line || ""} · ${order.category_code || ""} ${order.summary || ""}`;
    if (order.urgent) item.classList.add("urgent");
    return item;
  }));
}

// ---- hand-over --------------------------------------------------------------------------------

function renderHandover(call) {
  const handover = call?.handover;
  const box = $("handover-buttons");
  text("handover-used", handover ? `已转接 ${handover.used}/${handover.max} 次` : "");
  show("handover-why", Boolean(handover?.blocked));
  text("handover-why", handover?.blocked);
  const buttons = (handover?.targets || []).map((target) => {
    const button = document.createElement("button");
    button.type = "button";
    const own = !target.enabled && target.why !== handover.blocked ? `（${target.why}）` : "";
    button.textContent = (target.key ? `${target.label} (Alt+${target.key})` : target.label) + own;
    button.dataset.testid = `handover-${target.target || target.kind}-${target.mode}`;
    button.dataset.key = target.key || "";
    button.className = target.kind;
    const overriding = $("override-box").checked && handover.used >= handover.max;
    button.disabled = !target.enabled && !overriding;
    button.title = button.disabled ? target.why : "";
    button.addEventListener("click", () => handOver(call.call_id, target));
    return button;
  });
  if (!call) box.replaceChildren();
  else box.replaceChildren(...buttons);
  const supervisor = ROLE !== "seat";
  show("override", supervisor && Boolean(handover?.override_allowed) && handover.used >= handover.max);
  renderTransfer(handover?.transfer);
}

function renderTransfer(transfer) {
  show("transfer", Boolean(transfer));
  if (!transfer) return;
  text("transfer-target", transfer.target.title || transfer.target.name);
  text("transfer-state", TRANSFER_STATES[transfer.state] || transfer.state);
  $("transfer").dataset.state = transfer.state;
  text("transfer-reason", transfer.reason ? `（${transfer.reason}）` : "");
  const open = !["completed", "cancelled", "failed", "timed_out"].includes(transfer.state);
  show("transfer-cancel", open);
  show("transfer-complete", transfer.mode === "consult" && transfer.state === "answered");
  $("transfer-cancel").onclick = () => transferAction("DELETE", `/api/transfers/${transfer.id}`);
  $("transfer-complete").onclick = () => transferAction("POST", `/api/transfers/${transfer.id}/complete`);
}

async function handOver(callId, target) {
  await saveDraft(); // the work order keeps what was typed before the caller moves on
  const body = { target: target.target, mode: target.mode, override: $("override-box").checked };
  try {
    await api("POST", `/api/calls/${callId}/transfer`, body);
    notice(`已发起转接：${target.label}`);
  } catch (error) {
    notice(`转接失败：${error.message}`);
  }
}

async function transferAction(method, path) {
  try {
    await api(method, path);
  } catch (error) {
    notice(`操作失败：${error.message}`);
  }
}

function shortcut(key) {
  const button = [...$("handover-buttons").querySelectorAll("button")].find((b) => b.dataset.key === key);
  if (button && !button.disabled) button.click();
  else if (button) notice(button.title);
}

// ---- call-backs -------------------------------------------------------------------------------

function renderCallbacks(callbacks) {
  text("callbacks-count", String(callbacks.length));
  $("callbacks").replaceChildren(...callbacks.map((entry) => {
    const item = document.createElement("li");
    const when = new Date(entry.requested_at).toLocaleTimeString("zh-CN", { hour12: false });
    item.textContent = `${entry.number || "未显示号码"} · ${entry.queue} · 登记于 ${when} · 已拨 ${entry.attempts} 次${entry.dialling ? " · 正在回拨" : ""}`;
    return item;
  }));
}

// ---- the work-order draft -------------------------------------------------------------------

function fillSelect(select, options, chosen, empty) {
  select.replaceChildren(new Option(empty, ""), ...options.map((o) => new Option(`${o.code} ${o.name}`, o.code)));
  select.value = options.some((o) => o.code === chosen) ? chosen : "";
}

function setCategory(code) {
  const tree = ui.setup.categories;
  const top = tree.find((t) => code && t.code.slice(0, 2) === code.slice(0, 2));
  fillSelect($("category-top"), tree, top?.code, "大类");
  const subs = top ? top.subclasses : [];
  const sub = subs.find((s) => code && code.endsWith("00") ? s.code === code : s.code.slice(0, 4) === code?.slice(0, 4));
  fillSelect($("category-sub"), subs, sub?.code, "中类");
  fillSelect($("category-item"), sub ? sub.items : [], code, "小类");
}

function chosenCategory() {
  return $("category-item").value || $("category-sub").value || $("category-top").value || null;
}

function formDraft() {
  const handling = document.querySelector('input[name="handling"]:checked');
  return {
    summary: $("draft-summary").value,
    category_code: chosenCategory(),
    handling: handling ? handling.value : null,
    department: $("draft-department").value || null,
    urgent: $("draft-urgent").checked,
  };
}

function fillForm(draft, call) {
  $("draft-summary").value = draft?.summary || "";
  setCategory(draft ? draft.category_code : call?.category_code);
  for (const radio of document.querySelectorAll('input[name="handling"]')) radio.checked = radio.value === draft?.handling;
  $("draft-department").value = draft?.department || call?.department || "";
  $("draft-urgent").checked = Boolean(draft?.urgent);
  ui.version = draft?.version || 0;
  draftStatus(draft ? `已保存 第${draft.version}版` : "新草稿");
}

function draftStatus(message) {
  text("draft-status", message);
}

async function openDraft(callId, call) {
  if (ui.draftCall === callId) return;
  await saveDraft(); // whatever was typed for the previous call is kept first
  ui.draftCall = callId;
  $("draft-form").dataset.call = callId;
  try {
    const found = await api("GET", `/api/calls/${callId}/draft`);
    if (ui.draftCall === callId && !ui.dirty) fillForm(found.draft, call);
  } catch (error) {
    draftStatus(`草稿读取失败：${error.message}`);
  }
}

function changed() {
  ui.dirty = true;
  draftStatus("未保存…");
  clearTimeout(ui.timer);
  ui.timer = setTimeout(saveDraft, SAVE_AFTER_MS);
}

async function saveDraft() {
  clearTimeout(ui.timer);
  if (!ui.dirty || !ui.draftCall) return;
  if (ui.saving) {
    ui.timer = setTimeout(saveDraft, SAVE_AFTER_MS);
    return;
  }
  ui.saving = true;
  ui.dirty = false;
  draftStatus("保存中…");
  try {
    const saved = await api("PUT", `/api/calls/${ui.draftCall}/draft`, formDraft());
    ui.version = saved.draft.version;
    const at = new Date(saved.draft.saved_at).toLocaleTimeString("zh-CN", { hour12: false });
    draftStatus(ui.dirty ? "未保存…" : `已保存 第${saved.draft.version}版 ${at}`);
  } catch (error) {
    ui.dirty = true; // kept in the form; tried again
    draftStatus(`保存失败，重试中：${error.message}`);
    ui.timer = setTimeout(saveDraft, 3000);
  } finally {
    ui.saving = false;
  }
}

// ---- rendering and the live stream ----------------------------------------------------------

function render() {
  const view = ui.view;
  renderSeat(view.seat);
  renderPop(view.call);
  renderHandover(view.call);
  renderCallbacks(view.callbacks);
  const banner = $("stale-banner");
  banner.hidden = !view.stale;
  banner.textContent = view.stale ? `数据可能不是最新：${view.stale_reason}` : "";
  // The form follows the call the seat answered last; a call that only rings here pops, no more.
  const callId = view.draft_call_id;
  if (callId) openDraft(callId, view.call && view.call.call_id === callId ? view.call : null);
}

function alive() {
  ui.lastMessageAt = Date.now();
  show("stream-banner", false);
}

function connect() {
  const source = new EventSource(`/api/seats/${SEAT}/live`);
  source.addEventListener("seat", (event) => {
    ui.view = JSON.parse(event.data);
    alive();
    render();
  });
  source.addEventListener("ping", alive);
  source.addEventListener("error", () => {
    show("stream-banner", true);
    // The browser reconnects by itself unless the server refused (session ended, restart).
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
  });
}

function keys(event) {
  if (event.ctrlKey && event.key.toLowerCase() === "s") {
    event.preventDefault();
    ui.dirty = true;
    saveDraft();
  } else if (event.altKey && /^[1-6]$/.test(event.key)) {
    event.preventDefault();
    shortcut(event.key);
  } else if (event.altKey && event.key.toLowerCase() === "r") {
    event.preventDefault();
    ready();
  } else if (event.altKey && event.key.toLowerCase() === "p") {
    event.preventDefault();
    seatAction("pause", { reason: $("pause-reason").value });
  }
}

async function start() {
  ui.setup = await api("GET", `/api/seats/${SEAT}/setup`);
  text("seat-name", `${ui.setup.name}（${SEAT}）`);
  const reasons = $("pause-reason");
  reasons.replaceChildren(...ui.setup.pause_reasons.map((r) => new Option(r, r)));
  $("draft-department").replaceChildren(new Option("承办部门", ""), ...ui.setup.departments.map((d) => new Option(d, d)));
  setCategory(null);
  $("category-top").addEventListener("change", () => { setCategory($("category-top").value); changed(); });
  $("category-sub").addEventListener("change", () => { setCategory($("category-sub").value || $("category-top").value); changed(); });
  $("category-item").addEventListener("change", changed);
  for (const id of ["draft-summary", "draft-department", "draft-urgent"]) $(id).addEventListener("input", changed);
  for (const radio of document.querySelectorAll('input[name="handling"]')) radio.addEventListener("change", changed);
  $("draft-form").addEventListener("submit", (event) => { event.preventDefault(); ui.dirty = true; saveDraft(); });
  $("login").addEventListener("click", () => seatAction("login"));
  $("logout-queues").addEventListener("click", () => seatAction("logout"));
  $("pause").addEventListener("click", () => seatAction("pause", { reason: reasons.value }));
  $("unpause").addEventListener("click", () => seatAction("unpause"));
  $("ready-now").addEventListener("click", () => seatAction("ready"));
  $("override-box").addEventListener("change", () => ui.view && renderHandover(ui.view.call));
  $("sign-out").addEventListener("click", async () => {
    await saveDraft();
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": CSRF }, credentials: "same-origin" });
    location.assign("/login");
  });
  document.addEventListener("keydown", keys);
  // A closing tab still sends what was typed (the request outlives the page).
  window.addEventListener("pagehide", () => {
    if (ui.dirty && ui.draftCall) {
      fetch(`/api/calls/${ui.draftCall}/draft`, {
        method: "PUT", keepalive: true, credentials: "same-origin",
        headers: { "X-CSRF-Token": CSRF, "Content-Type": "application/json" }, body: JSON.stringify(formDraft()),
      });
    }
  });
  setInterval(() => {
    if (Date.now() - ui.lastMessageAt > SILENT_STREAM_MS) show("stream-banner", true);
  }, 1000);
  connect();
}

start().catch((error) => notice(`工作台加载失败：${error.message}`));
