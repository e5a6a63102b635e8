// History charts of the ess dashboard, drawn as SVG in the element's own pixels (so text is
// never stretched). Rows are placed by their time, so a gap in the device's data stays a gap.
// Also the periods the history steps through, and the figures' formats the cards share.

const SVG = "http://www.w3.org/2000/svg";

const SERIES = {
  pv: {
    a: { key: "generation", label: "Generated" },
    b: { key: "feed_in", label: "Fed in" },
  },
  load: {
    a: { key: "consumption", label: "Used" },
    b: { key: "purchase", label: "Bought" },
  },
  batt: {
    a: { key: "charge", label: "Charged" },
    b: { key: "discharge", label: "Discharged" },
    line: { key: "soc", label: "SOC" },
  },
};

/** The two bar series (and the optional line) of a graph device. */
export function seriesOf(device) {
  return SERIES[device];
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function num(value) {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** A row's `time` (YYYYMMDDhhmmss) as a local Date, or undefined. */
function timeOf(row) {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(String(row.time ?? ""));
  return m ? new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) : undefined;
}

function weekStart(d) {
  const monday = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  monday.setDate(monday.getDate() - ((monday.getDay() + 6) % 7));
  return monday;
}

/** How many slots the span has, which slot a time falls in, and the label of a slot. */
function layout(span, date) {
  if (span === "day") {
    return {
      slots: 96,
      slot: (t) => t.getHours() * 4 + Math.floor(t.getMinutes() / 15),
      label: (i) => (i % 24 === 0 ? `${String(i / 4).padStart(2, "0")}:00` : ""),
      name: (i) =>
        `${String(Math.floor(i / 4)).padStart(2, "0")}:${String((i % 4) * 15).padStart(2, "0")}`,
    };
  }
  if (span === "week") {
    const start = weekStart(date);
    const day = (i) => {
      const d = new Date(start);
      d.setDate(d.getDate() + i);
      return d;
    };
    return {
      slots: 7,
      slot: (t) =>
        Math.round((new Date(t.getFullYear(), t.getMonth(), t.getDate()) - start) / 864e5),
      label: (i) => day(i).toLocaleDateString([], { weekday: "short" }),
      name: (i) =>
        day(i).toLocaleDateString([], { weekday: "long", day: "numeric", month: "short" }),
    };
  }
  if (span === "month") {
    const days = new Date(date.getFullYear(), date.getMonth() + 1, 0).getDate();
    return {
      slots: days,
      slot: (t) => t.getDate() - 1,
      label: (i) => ([0, 7, 14, 21, 28].includes(i) ? String(i + 1) : ""),
      name: (i) =>
        new Date(date.getFullYear(), date.getMonth(), i + 1)
          .toLocaleDateString([], { day: "numeric", month: "long" }),
    };
  }
  return {
    slots: 12,
    slot: (t) => t.getMonth(),
    label: (i) => new Date(2000, i, 1).toLocaleDateString([], { month: "short" }),
    narrow: (i) => new Date(2000, i, 1).toLocaleDateString([], { month: "narrow" }),
    name: (i) =>
      new Date(date.getFullYear(), i, 1).toLocaleDateString([], { month: "long", year: "numeric" }),
  };
}

/** Energy units, largest first: each is used from its factor up. */
const UNITS = [["MWh", 1e6], ["kWh", 1e3], ["Wh", 1]];

function unitOf(wh) {
  return UNITS.find(([, factor]) => Math.abs(wh) >= factor) ?? UNITS[UNITS.length - 1];
}

/**
 * An amount of energy in Wh as text, in the unit that fits it, with three significant digits
 * from 1 kWh on: `850 Wh`, `1.00 kWh`, `12.3 kWh`, `4.57 MWh`.
 */
export function energyText(wh) {
  const [unit, factor] = unitOf(wh);
  if (factor === 1) return `${Math.round(wh)} Wh`;
  const v = wh / factor;
  const a = Math.abs(v);
  return `${v.toFixed(a < 9.995 ? 2 : a < 99.95 ? 1 : 0)} ${unit}`;
}

/** Decimals that show `value` exactly (at most 3): 0.25 → 2, 1.5 → 1, 20 → 0. */
function decimalsOf(value) {
  for (let d = 0; d < 3; d++) {
    const scaled = value * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
  }
  return 3;
}

/**
 * The y axis for bars up to `max` Wh: at most four round steps (1, 2, 2.5 or 5 times a power of
 * ten) from 0 to `top`, labelled in the one unit that fits `top`, all with the same decimals:
 * `0`, `0.25 kWh` … `1.00 kWh`. An empty chart gets 0 to 1 kWh.
 */
export function axisTicks(max) {
  const upper = max > 0 ? max : 1000;
  const raw = upper / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * p).find((s) => s >= raw * (1 - 1e-9)) ??
    10 * p;
  const count = Math.max(1, Math.ceil(upper / step - 1e-9));
  const top = step * count;
  const [unit, factor] = unitOf(top);
  const digits = decimalsOf(step / factor);
  const ticks = [];
  for (let k = 0; k <= count; k++) {
    const value = step * k;
    ticks.push({ value, label: k === 0 ? "0" : `${(value / factor).toFixed(digits)} ${unit}` });
  }
  return { top, ticks };
}

/** The rendered width of an SVG text in px, or an estimate while it is not laid out. */
function textWidth(node) {
  const measured = typeof node.getComputedTextLength === "function"
    ? node.getComputedTextLength()
    : 0;
  return measured > 0 ? measured : node.textContent.length * 6.5;
}

/**
 * Draws one graph answer into `svg` and returns the period's totals as text. `onReadout` gets
 * a line about the slot under the pointer.
 */
export function drawChart(svg, answer, device, span, date, onReadout) {
  svg.textContent = "";
  const width = Math.max(280, svg.clientWidth || 800);
  const height = Math.max(160, svg.clientHeight || 260);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const series = SERIES[device];
  const rows = Array.isArray(answer?.loginfo) ? answer.loginfo : [];
  const { slots, slot, label, narrow, name } = layout(span, date);
  const a = new Array(slots).fill(null);
  const b = new Array(slots).fill(null);
  const line = new Array(slots).fill(null);
  for (const row of rows) {
    const t = timeOf(row);
    if (!t) continue;
    const i = slot(t);
    if (!(i >= 0 && i < slots)) continue;
    a[i] = (a[i] ?? 0) + num(row[series.a.key]);
    b[i] = (b[i] ?? 0) + num(row[series.b.key]);
    if (series.line && row[series.line.key] !== undefined) line[i] = num(row[series.line.key]);
  }
  const right = 10;
  const top = 10;
  const bottom = 24;
  const plotH = height - top - bottom;
  const axis = axisTicks(Math.max(0, ...a.map((v) => v ?? 0), ...b.map((v) => v ?? 0)));
  const max = axis.top;
  const y = (v) => top + plotH - (v / max) * plotH;
  // The labels first: the plot starts where the widest of them ends, so none is ever cut.
  const tickLabels = axis.ticks.map(({ value, label }) => {
    const text = el("text", { y: y(value) + 4, "text-anchor": "end" }, label);
    svg.append(text);
    return text;
  });
  const left = Math.ceil(Math.max(24, ...tickLabels.map(textWidth))) + 12;
  const plotW = width - left - right;
  for (const [k, { value }] of axis.ticks.entries()) {
    tickLabels[k].setAttribute("x", String(left - 8));
    svg.append(el("line", {
      class: "gridline",
      x1: left,
      x2: width - right,
      y1: y(value),
      y2: y(value),
    }));
  }
  const w = plotW / slots;
  const slotLabels = [];
  for (let i = 0; i < slots; i++) {
    const x = left + i * w;
    const text = label(i);
    if (text) {
      const node = el("text", {
        x: x + (span === "day" ? 0 : w / 2),
        y: height - 6,
        "text-anchor": span === "day" ? "start" : "middle",
      }, text);
      svg.append(node);
      slotLabels.push([i, node]);
    }
  }
  // Month names that do not fit their bars (a phone's year view) fall back to one letter.
  if (narrow && slotLabels.some(([, node]) => textWidth(node) > w - 2)) {
    for (const [i, node] of slotLabels) node.textContent = narrow(i);
  }
  if (rows.length === 0) {
    svg.append(
      el("text", {
        class: "empty",
        x: left + plotW / 2,
        y: top + plotH / 2,
        "text-anchor": "middle",
      }, "No data for this period"),
    );
    onReadout("");
    return "";
  }
  const hover = el("rect", {
    class: "hover",
    x: 0,
    y: top,
    width: w,
    height: plotH,
    visibility: "hidden",
  });
  svg.append(hover);
  const gap = Math.min(2, w * 0.15);
  for (let i = 0; i < slots; i++) {
    const x = left + i * w;
    if (a[i]) {
      svg.append(
        el("rect", {
          class: "a",
          x: x + gap / 2,
          y: y(a[i]),
          width: Math.max(1, w - gap),
          height: top + plotH - y(a[i]),
          rx: Math.min(3, w / 4),
        }),
      );
    }
    if (b[i]) {
      const bw = Math.max(1, (w - gap) * 0.5);
      svg.append(
        el("rect", {
          class: "b",
          x: x + (w - bw) / 2,
          y: y(b[i]),
          width: bw,
          height: top + plotH - y(b[i]),
          rx: Math.min(2, w / 6),
        }),
      );
    }
  }
  if (series.line && line.some((v) => v !== null)) {
    const points = line.map((
      v,
      i,
    ) => (v === null ? null : `${left + i * w + w / 2},${top + plotH - (v / 100) * plotH}`)).filter(
      Boolean,
    );
    svg.append(el("polyline", { class: "soc", points: points.join(" ") }));
  }
  svg.onpointermove = (e) => {
    const box = svg.getBoundingClientRect();
    const i = Math.floor(((e.clientX - box.left) * (width / box.width) - left) / w);
    if (i < 0 || i >= slots) return;
    hover.setAttribute("x", String(left + i * w));
    hover.setAttribute("visibility", "visible");
    const parts = [
      `${series.a.label} ${energyText(a[i] ?? 0)}`,
      `${series.b.label} ${energyText(b[i] ?? 0)}`,
    ];
    if (series.line && line[i] !== null) parts.push(`SOC ${Math.round(line[i])} %`);
    onReadout(`${name(i)} · ${parts.join(" · ")}`);
  };
  svg.onpointerleave = () => {
    hover.setAttribute("visibility", "hidden");
    onReadout("");
  };
  const sum = (list) => list.reduce((t, v) => t + (v ?? 0), 0);
  return `${series.a.label} ${energyText(sum(a))} · ${series.b.label} ${energyText(sum(b))}`;
}

/** A power in W or kW, without its sign (the words around it say the direction). */
export function power(watts) {
  const w = Math.abs(watts);
  return w < 1000 ? `${Math.round(w)} W` : `${(w / 1000).toFixed(w < 10000 ? 2 : 1)} kW`;
}

/** A duration in ms in words: `42 s`, `5 min`, `2 h 5 min`, `3 d`. */
export function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

/** The time of day of `date`, with seconds, in the browser's locale. */
export function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A percentage, or `–` when unknown. */
export function percent(pct, digits = 0) {
  return pct === undefined ? "–" : `${pct.toFixed(digits)} %`;
}

/** Midnight of the day of `d`, local time. */
export function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

/** The first day of the `span` (a Monday for a week) that holds `d`. */
export function periodStart(span, d) {
  if (span === "day") return startOfDay(d);
  if (span === "week") {
    const monday = startOfDay(d);
    monday.setDate(monday.getDate() - ((monday.getDay() + 6) % 7));
    return monday;
  }
  if (span === "month") return new Date(d.getFullYear(), d.getMonth(), 1);
  return new Date(d.getFullYear(), 0, 1);
}

/** `d` as `YYYY-MM-DD`, local time, as the graph API takes it. */
export function ymd(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The `span` that holds `d`, in words for the history card. */
export function periodLabel(span, d) {
  if (span === "day") {
    return d.toLocaleDateString([], {
      weekday: "short",
      day: "numeric",
      month: "short",
      year: "numeric",
    });
  }
  if (span === "week") {
    const start = periodStart("week", d);
    const end = new Date(start);
    end.setDate(end.getDate() + 6);
    const f = { day: "numeric", month: "short" };
    return `${start.toLocaleDateString([], f)} – ${
      end.toLocaleDateString([], { ...f, year: "numeric" })
    }`;
  }
  if (span === "month") return d.toLocaleDateString([], { month: "long", year: "numeric" });
  return String(d.getFullYear());
}
