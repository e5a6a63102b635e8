// The ess dashboard: live state over Server-Sent Events, history charts from the graph API, and
// the controls when the server has a token. With several devices, a site view of their sums and
// one view of each (site.js). Device text only ever reaches the page through textContent: the
// device is not trusted to send harmless strings.
import {
  ago,
  clock,
  drawChart,
  energyText,
  percent,
  periodLabel,
  periodStart,
  power,
  seriesOf,
  startOfDay,
  ymd,
} from "./chart.js";
import { renderSurplus } from "./surplus.js";
import { isSite, renderDevices, renderViews, siteState, viewOf } from "./site.js";

const $ = (id) => document.getElementById(id);

/** What the page draws: one device's state, or the site's sums in the site view. */
let state = null;
/** The last document of a site, for switching views between events. */
let siteDoc = null;
/** With several devices, the device shown, or null for the site; undefined with one device. */
let view;
let streamOpen = false;
let info = { controls: false, controlList: [] };

// ---------- formatting

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A code's word as the reading has it (`normal`, `unknown (7)`), or `–`. */
function word(codeWord) {
  if (!codeWord) return "–";
  return codeWord.word.length <= 2 ? codeWord.word.toUpperCase() : sentence(codeWord.word);
}

function badge(id, text, kind) {
  const el = $(id);
  el.textContent = "";
  const span = document.createElement("span");
  span.className = `badge ${kind}`;
  span.textContent = text;
  el.append(span);
}

/** The reading of a state document, with every part there even before the first poll. */
function readingOf(st) {
  const r = st?.reading ?? {};
  return {
    ...r,
    power: r.power ?? {},
    energy: r.energy ?? {},
    status: r.status ?? {},
    settings: r.settings ?? {},
    versions: r.versions ?? {},
  };
}

// ---------- live state

function setLine(id, watts, forward) {
  const line = $(id);
  const w = Math.abs(watts ?? 0);
  const active = w >= 5;
  line.classList.toggle("active", active);
  line.classList.toggle("reverse", active && !forward);
  line.style.strokeWidth = String(active ? 2.5 + 7 * Math.min(1, w / 6000) : 2);
  line.style.setProperty("--speed", `${Math.max(0.5, 3 - w / 2500).toFixed(2)}s`);
  line.dataset.watts = String(Math.round(watts ?? 0));
}

function renderFlow(r) {
  const { pvW: pv, gridW: grid, batteryW: batt, loadW: load } = r.power;
  setLine("line-pv", pv, true);
  setLine("line-grid", grid, (grid ?? 0) > 0);
  setLine("line-batt", batt, (batt ?? 0) > 0);
  setLine("line-house", load, true);
  setText("v-pv", pv === undefined ? "–" : power(pv));
  setText("v-house", load === undefined ? "–" : power(load));
  setText("v-grid", grid === undefined ? "–" : power(grid));
  setText(
    "d-grid",
    grid === undefined || Math.abs(grid) < 5 ? "Grid" : grid > 0 ? "Buying" : "Feeding in",
  );
  const soc = r.socPct;
  setText("v-batt", percent(soc));
  setText("d-batt", batteryWord(batt) + (batt && Math.abs(batt) >= 5 ? ` ${power(batt)}` : ""));
  // Of the power the house uses, the share that does not come from the grid.
  const fromGrid = Math.max(0, grid ?? 0);
  setText(
    "self-now",
    load ? percent(100 * Math.min(1, Math.max(0, 1 - fromGrid / load))) : "–",
  );
  const fill = $("batt-fill");
  const h = 20 * Math.min(1, Math.max(0, (soc ?? 0) / 100));
  fill.setAttribute("height", h.toFixed(1));
  fill.setAttribute("y", (10 - h).toFixed(1));
}

function batteryWord(watts) {
  if (watts === undefined) return "Battery";
  if (watts <= -5) return "Charging";
  if (watts >= 5) return "Discharging";
  return "Idle";
}

function renderBattery(r) {
  const soc = r.socPct;
  const batt = r.power.batteryW;
  setText("soc", percent(soc));
  const arc = $("soc-arc");
  arc.style.strokeDasharray = `${(soc ?? 0).toFixed(1)} 100`;
  arc.classList.toggle("low", soc !== undefined && soc < 15);
  setText("batt-state", batteryWord(batt));
  setText("batt-power", batt === undefined ? "–" : power(batt));
  setText("batt-status", word(r.status.batteryStatus));
  // The backup reserve holds only while backup mode is on; otherwise the reserve the model
  // reports (safety, or reserved, SoC) does.
  const { settings } = r;
  const reserve = settings.backupMode ? settings.backupReservePct : undefined;
  setText("batt-reserve", percent(reserve ?? settings.reservePct));
}

/** Today's tiles and the energy counter each shows. */
const TODAY = [
  ["t-pv", "pvGeneration"],
  ["t-load", "loadConsumption"],
  ["t-feed", "gridFeedIn"],
  ["t-buy", "gridPurchase"],
  ["t-charge", "batteryCharge"],
  ["t-discharge", "batteryDischarge"],
];

/** Where the day's figures come from, as the reading says. */
const SOURCES = {
  device: "",
  graph: "From the device's history graphs.",
  integrated: "Worked out by ess from the polled power since it started today.",
};

function renderToday(r) {
  const sources = new Set();
  for (const [id, name] of TODAY) {
    const counter = r.energy[name];
    setText(id, counter?.todayWh === undefined ? "–" : energyText(counter.todayWh));
    if (counter?.todayWh !== undefined) sources.add(counter.source);
  }
  const self = r.selfConsumptionTodayPct;
  setText("t-self", percent(self));
  $("t-self-bar").style.width = `${Math.min(100, Math.max(0, self ?? 0))}%`;
  let note = [...sources].map((s) => SOURCES[s] ?? "").filter(Boolean).join(" ");
  if (r.family !== undefined && sources.size === 0) {
    note = "This model's live answer has no energy counters; the history below has the day's.";
  }
  const el = $("t-note");
  el.hidden = note === "";
  setText("t-note", note);
}

function renderModes(r) {
  const { status, settings } = r;
  if (status.running === undefined) badge("m-system", "–", "off");
  else badge("m-system", status.running ? "Running" : "Stopped", status.running ? "on" : "off");
  setText("m-mode", word(status.operatingMode));
  if (settings.winterMode === undefined) badge("m-winter", "–", "off");
  else if (settings.winterMode) {
    badge("m-winter", status.winterActive ? "On · in season" : "On · off season", "on");
  } else badge("m-winter", "Off", "off");
  const strategy = settings.chargeStrategy;
  badge(
    "m-strategy",
    strategy === undefined ? "–" : sentence(strategy.replaceAll("-", " ")),
    strategy === "fast-charge" ? "hot" : "off",
  );
  if (settings.backupMode === undefined) badge("m-backup", "–", "off");
  else {
    const reserve = settings.backupReservePct === undefined
      ? ""
      : ` · ${percent(settings.backupReservePct)}`;
    badge(
      "m-backup",
      (settings.backupMode ? "On" : "Off") + reserve,
      settings.backupMode ? "on" : "off",
    );
  }
  setText("m-inverter", word(status.inverterStatus));
}

function renderHeader(r) {
  const parts = [r.serial && `serial ${r.serial}`, r.versions.pms && `PMS ${r.versions.pms}`]
    .filter(Boolean);
  if (view) {
    // One of several devices: its name first, so that no one mistakes which one they control.
    setText("title", view);
    setText("model", [r.model ?? "LG ESS", ...parts].join(" · "));
    return;
  }
  if (r.model) setText("title", r.model);
  if (parts.length) setText("model", parts.join(" · "));
}

/** "no answer since 14:02 (5 min ago): why", of a state or of a device missing from the site. */
function sinceText(s) {
  const last = s.lastSuccess ? new Date(s.lastSuccess) : undefined;
  const since = last
    ? `no answer since ${clock(last)} (${ago(Date.now() - last.getTime())} ago)`
    : "no answer yet";
  return s.error ? `${since}: ${s.error}` : since;
}

function renderStatus() {
  const pill = $("pill");
  const up = state?.up;
  const last = state?.lastSuccess ? new Date(state.lastSuccess) : undefined;
  const age = last ? Date.now() - last.getTime() : undefined;
  if (!streamOpen) {
    pill.className = "pill wait";
    pill.textContent = state ? "reconnecting" : "connecting";
  } else if (up === false) {
    pill.className = "pill down";
    pill.textContent = state.missing ? `${state.missing.length} down` : "unreachable";
  } else {
    pill.className = "pill ok";
    pill.textContent = up ? "live" : "waiting";
  }
  setText("updated", last ? `updated ${clock(last)} · ${ago(age)} ago` : "");
  const down = up === false;
  $("banner").hidden = !down;
  // The site's figures stay whole: the devices that answer are summed, those missing are named.
  $("main").classList.toggle("stale", down && !state.missing);
  if (down && state.missing) {
    const gone = state.missing.map((m) => `${m.name}: ${sinceText(m)}`).join(" · ");
    setText("banner-text", `${gone}. Left out of the sums.`);
  } else if (down) setText("banner-text", sinceText(state));
}

/** Draws one device's state: the only one, or the one of a site's the view shows. */
function render(next) {
  state = next;
  $("main").classList.remove("site");
  setText("battery-title", "Battery");
  const r = readingOf(next);
  renderHeader(r);
  renderFlow(r);
  renderBattery(r);
  renderToday(r);
  renderModes(r);
  renderSurplus(next);
  renderStatus();
  renderControls();
  charts.refreshIfLive();
}

/** Draws the site view: the devices' sums in the device cards, and the devices card. */
function renderSite(doc) {
  state = siteState(doc);
  const r = readingOf(state);
  $("main").classList.add("site");
  const names = Object.keys(doc.devices);
  setText("title", "Site");
  setText("model", `${names.length} devices: ${names.join(", ")}`);
  setText("battery-title", "Batteries · mean charge");
  renderFlow(r);
  renderBattery(r);
  renderToday(r);
  renderSurplus(state);
  renderDevices(doc);
  renderStatus();
}

/** Draws a document from the server: one device's state, or a site's in the view the URL asks. */
function receive(doc) {
  if (!isSite(doc)) {
    render(doc);
    return;
  }
  siteDoc = doc;
  const was = view;
  view = viewOf(doc);
  renderViews(doc, view);
  if (view === null) renderSite(doc);
  else {
    render(doc.devices[view]);
    // Another device's history: load its graphs (the first view loads them as it renders).
    if (was !== undefined && was !== view) charts.load();
  }
}

/** The path part that names the device shown, for graphs and controls (none with one device). */
function devicePath() {
  return view ? `${encodeURIComponent(view)}/` : "";
}

function connect() {
  const events = new EventSource("api/events");
  events.addEventListener("state", (e) => {
    streamOpen = true;
    receive(JSON.parse(e.data));
  });
  events.addEventListener("error", () => {
    streamOpen = false;
    renderStatus();
    // A refused stream (503) is not retried by the browser itself.
    if (events.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
  });
}

// ---------- history

const charts = {
  device: "pv",
  span: "day",
  date: startOfDay(new Date()),
  loadedAt: 0,
  seq: 0,
  answer: null,

  init() {
    for (const b of $("device-tabs").querySelectorAll("button")) {
      b.addEventListener("click", () => this.pick("device", b.dataset.device, "device-tabs", b));
    }
    for (const b of $("span-tabs").querySelectorAll("button")) {
      b.addEventListener("click", () => this.pick("span", b.dataset.span, "span-tabs", b));
    }
    $("prev").addEventListener("click", () => this.move(-1));
    $("next").addEventListener("click", () => this.move(1));
    $("today").addEventListener("click", () => {
      this.date = startOfDay(new Date());
      this.load();
    });
    addEventListener("resize", () => this.draw());
  },

  pick(key, value, tabs, button) {
    this[key] = value;
    for (const b of $(tabs).querySelectorAll("button")) b.classList.toggle("on", b === button);
    this.load();
  },

  move(step) {
    const d = new Date(this.date);
    if (this.span === "day") d.setDate(d.getDate() + step);
    else if (this.span === "week") d.setDate(d.getDate() + 7 * step);
    else if (this.span === "month") d.setMonth(d.getMonth() + step, 1);
    else d.setFullYear(d.getFullYear() + step, 0, 1);
    this.date = d;
    this.load();
  },

  isCurrent() {
    return periodStart(this.span, new Date()).getTime() ===
      periodStart(this.span, this.date).getTime();
  },

  refreshIfLive() {
    if (this.isCurrent() && Date.now() - this.loadedAt > 5 * 60_000) this.load();
  },

  async load() {
    const seq = ++this.seq;
    this.loadedAt = Date.now();
    $("next").disabled = this.isCurrent() || periodStart(this.span, this.date) > new Date();
    setText("period", periodLabel(this.span, this.date));
    setText("readout", "loading…");
    const card = $("chart").closest(".card");
    card.classList.toggle("load", this.device === "load");
    card.classList.toggle("batt", this.device === "batt");
    try {
      const res = await fetch(
        `api/graph/${devicePath()}${this.device}/${this.span}?date=${ymd(this.date)}`,
      );
      const body = await res.json();
      if (seq !== this.seq) return;
      if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
      this.answer = body;
      setText("readout", "");
    } catch (err) {
      if (seq !== this.seq) return;
      this.answer = null;
      setText("readout", `could not load: ${err.message}`);
    }
    this.draw();
  },

  draw() {
    const series = seriesOf(this.device);
    const legend = $("legend");
    legend.textContent = "";
    for (const [cls, label] of [["a", series.a.label], ["b", series.b.label]]) {
      const item = document.createElement("span");
      const dot = document.createElement("i");
      dot.className = cls;
      item.append(dot, label);
      legend.append(item);
    }
    const totals = drawChart($("chart"), this.answer, this.device, this.span, this.date, (text) => {
      setText("readout", text);
    });
    setText("totals", totals);
  },
};

// ---------- controls

const TOKEN_KEY = "ess-control-token";

/** What the state says of a control: `{ now, options }`, or undefined if the firmware lacks it. */
function controlState(control) {
  const all = state?.controls;
  return all && Object.hasOwn(all, control.name) ? all[control.name] : undefined;
}

function renderControlValues() {
  for (const control of info.controlList) {
    const el = document.querySelector(`[data-now="${control.name}"]`);
    if (!el) continue;
    const now = controlState(control)?.now;
    el.textContent = now === undefined ? "now: unknown" : `now: ${choiceLabel(control, now)}`;
    for (const b of el.parentElement.querySelectorAll("button[data-value]")) {
      b.classList.toggle("current", b.dataset.value === now);
    }
    const select = el.parentElement.querySelector("select");
    if (select && document.activeElement !== select && now !== undefined) select.value = now;
  }
}

function choiceLabel(control, value) {
  if (control.name === "active") return value === control.on ? "Start" : "Stop";
  if (control.kind === "switch") return value === control.on ? "On" : "Off";
  if (control.kind === "number") return `${value} ${control.range?.unit ?? ""}`.trim();
  return sentence(String(value).replaceAll("_", " "));
}

let tokenReady = false;
let builtFor = "";

/**
 * Shows the controls this firmware has, each select with the options it accepts; built again
 * only when those change.
 */
function renderControls() {
  if (!info.controls) return;
  const offered = info.controlList.filter((c) => controlState(c) !== undefined);
  const key = JSON.stringify(offered.map((c) => [c.name, controlState(c).options ?? []]));
  if (key !== builtFor) {
    builtFor = key;
    buildControls(offered);
  }
  renderControlValues();
}

function buildControls(offered) {
  $("controls").hidden = false;
  if (!tokenReady) {
    tokenReady = true;
    const token = $("token");
    token.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
    token.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, token.value));
  }
  const list = $("control-list");
  list.textContent = "";
  if (offered.length === 0) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = state?.reading
      ? "This device reports none of the settings ess can change."
      : "Waiting for the device's settings…";
    list.append(none);
  }
  for (const control of offered) {
    const row = document.createElement("div");
    row.className = "control";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = control.label;
    const acts = document.createElement("div");
    acts.className = "acts";
    const button = (label, value, primary, fixed) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      if (primary) b.className = "primary";
      if (fixed !== undefined) b.dataset.value = fixed;
      b.addEventListener("click", () => send(control, value()));
      return b;
    };
    if (control.kind === "switch") {
      acts.append(
        button(choiceLabel(control, control.on), () => control.on, false, control.on),
        button(choiceLabel(control, control.off), () => control.off, false, control.off),
      );
    } else if (control.kind === "select") {
      const select = document.createElement("select");
      for (const option of controlState(control).options ?? []) {
        const o = document.createElement("option");
        o.value = option;
        o.textContent = choiceLabel(control, option);
        select.append(o);
      }
      acts.append(select, button("Set", () => select.value, true));
    } else {
      const input = document.createElement("input");
      input.type = "number";
      input.min = String(control.range?.min ?? 0);
      input.max = String(control.range?.max ?? 100);
      input.step = String(control.range?.step ?? 1);
      input.value = controlState(control)?.now ?? "20";
      input.size = 4;
      acts.append(input, button("Set", () => input.value, true));
    }
    const now = document.createElement("span");
    now.className = "now";
    now.dataset.now = control.name;
    row.append(name, acts, now);
    list.append(row);
  }
}

function confirmDialog(title, text) {
  const dialog = $("confirm");
  setText("confirm-title", title);
  setText("confirm-text", text);
  return new Promise((resolve) => {
    const done = (ok) => {
      $("confirm-ok").onclick = null;
      $("confirm-cancel").onclick = null;
      dialog.close();
      resolve(ok);
    };
    $("confirm-ok").onclick = () => done(true);
    $("confirm-cancel").onclick = () => done(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
  });
}

async function send(control, value) {
  const result = $("control-result");
  const token = $("token").value.trim();
  if (token === "") {
    result.textContent = "Enter the control token first.";
    return;
  }
  const label = choiceLabel(control, value);
  const of = view ? ` of ${view}` : "";
  if (!(await confirmDialog(control.label, `Set ${control.label}${of} to ${label}?`))) return;
  result.textContent = `Sending ${control.label}: ${label}…`;
  try {
    const res = await fetch(`api/control/${devicePath()}${encodeURIComponent(control.name)}`, {
      method: "POST",
      headers: { "content-type": "text/plain", authorization: `Bearer ${token}` },
      body: String(value),
    });
    const body = await res.json();
    if (res.status === 200) result.textContent = `Done: ${body.command}.`;
    else if (res.status === 202) {
      result.textContent = body.result === "merged"
        ? `A newer command for ${control.label} replaced this one.`
        : `Queued: ${body.command}; it goes out as soon as the inverter allows.`;
    } else if (res.status === 401) result.textContent = "The token was not accepted.";
    else result.textContent = body.error ?? `HTTP ${res.status}`;
  } catch (err) {
    result.textContent = `Could not send: ${err.message}`;
  }
}

// ---------- start

async function loadInfo() {
  try {
    const res = await fetch("api/info");
    // An error answer (from a proxy, say) has no control list: keep the read-only default.
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    info = await res.json();
    setText("version", `ess ${info.version}`);
    if (state) renderControls();
  } catch {
    // The dashboard works without it; only the controls stay hidden.
  }
}

addEventListener("hashchange", () => {
  if (siteDoc) receive(siteDoc);
});
setInterval(renderStatus, 1000);
charts.init();
loadInfo();
connect();
