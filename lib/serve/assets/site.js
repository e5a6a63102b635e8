// The dashboard with several devices ([device NAME] sections): which view the page shows (the
// site, or one device, from the URL's #fragment), the switcher between them, the site's sums as a
// state the other cards can draw, and the devices card. Names come from ess's config; even so,
// they reach the page through textContent and attributes only.

import { percent, power } from "./chart.js";

const $ = (id) => document.getElementById(id);

/** Whether a state document is a site's: `{site, devices}` rather than one device's state. */
export function isSite(doc) {
  return doc !== null && typeof doc === "object" && "site" in doc && "devices" in doc;
}

/** The view the URL's fragment asks for: a device's name, or null for the site. */
export function viewOf(doc) {
  let name = "";
  try {
    name = decodeURIComponent(location.hash.slice(1));
  } catch {
    // Not percent-encoding: the site.
  }
  return Object.hasOwn(doc.devices, name) ? name : null;
}

function viewLink(label, view) {
  const a = document.createElement("a");
  a.href = `#${encodeURIComponent(view)}`;
  a.dataset.view = view;
  a.textContent = label;
  return a;
}

/** The switcher: the site, then each device; the current one marked, those down in red. */
export function renderViews(doc, current) {
  const nav = $("views");
  nav.hidden = false;
  const names = Object.keys(doc.devices);
  const key = JSON.stringify(names);
  if (nav.dataset.names !== key) {
    nav.dataset.names = key;
    nav.replaceChildren(viewLink("Site", ""), ...names.map((name) => viewLink(name, name)));
  }
  for (const a of nav.querySelectorAll("a")) {
    const on = a.dataset.view === (current ?? "");
    a.classList.toggle("on", on);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
    a.classList.toggle("down", doc.devices[a.dataset.view]?.up === false);
  }
}

/** Of today's PV energy, the share not fed into the grid, where both sums are known. */
function selfConsumption(wh) {
  const pv = wh.pvGeneration;
  const fed = wh.gridFeedIn;
  if (pv === undefined || fed === undefined || pv <= 0) return undefined;
  return 100 * Math.min(1, Math.max(0, (pv - fed) / pv));
}

/**
 * The site as a state document the device cards can draw: its sums as the reading, its latest
 * poll, and the devices missing from the sums, each with when it last answered and why not now.
 */
export function siteState(doc) {
  const { site, devices } = doc;
  const r = site.reading ?? {};
  const wh = r.energyTodayWh ?? {};
  const energy = Object.fromEntries(
    Object.entries(wh).map(([name, todayWh]) => [name, { todayWh, source: "device" }]),
  );
  const times = Object.values(devices).map((d) => d.lastSuccess).filter(Boolean).sort();
  return {
    up: site.up,
    lastSuccess: times.at(-1) ?? null,
    missing: (r.missing ?? []).map((name) => ({
      name,
      lastSuccess: devices[name]?.lastSuccess ?? null,
      error: devices[name]?.error,
    })),
    reading: {
      power: r.power ?? {},
      socPct: r.socPct,
      energy,
      selfConsumptionTodayPct: selfConsumption(wh),
    },
    surplus: site.surplus,
  };
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** A flow of one device in words: `charging 2.10 kW`, or `–` when it lacks it. */
function flowText(watts, words) {
  if (watts === undefined) return "–";
  if (!words || Math.abs(watts) < 5) return power(watts);
  return `${watts > 0 ? words[0] : words[1]} ${power(watts)}`;
}

/**
 * The devices card of the site view: each device with its status and live figures, and a link to
 * its own view.
 */
export function renderDevices(doc) {
  const rows = Object.entries(doc.devices).map(([name, d]) => {
    const r = d.reading ?? {};
    const p = r.power ?? {};
    const tr = document.createElement("tr");
    tr.dataset.device = name;
    const th = document.createElement("th");
    th.scope = "row";
    th.append(viewLink(name, name));
    const status = document.createElement("td");
    const badge = document.createElement("span");
    const missing = doc.site.reading?.missing?.includes(name);
    badge.className = `badge ${d.up === false ? "hot" : missing ? "off" : "on"}`;
    badge.textContent = d.up === false ? "unreachable" : missing ? "waiting" : "live";
    status.append(badge);
    const figures = [
      ["pvW", p.pvW, null],
      ["loadW", p.loadW, null],
      ["batteryW", p.batteryW, ["discharging", "charging"]],
      ["gridW", p.gridW, ["buying", "feeding in"]],
    ].map(([flow, watts, words]) => {
      const td = cell(flowText(watts, words), "num");
      td.dataset.flow = flow;
      td.dataset.watts = watts === undefined ? "" : String(Math.round(watts));
      return td;
    });
    const soc = cell(percent(r.socPct), "num");
    soc.dataset.flow = "soc";
    tr.append(th, status, ...figures, soc);
    tr.classList.toggle("missing", missing === true);
    return tr;
  });
  $("device-rows").replaceChildren(...rows);
}
