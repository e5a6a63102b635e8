// The dashboard's surplus card: the spare power for switched loads and each rule's state and
// why. It shows only where ess computes a surplus (`surplus` in the state). Rule names and
// reasons reach the page through textContent only.

function watts(w) {
  if (w === null || w === undefined) return "unknown";
  const abs = Math.abs(w);
  const text = abs < 1000 ? `${Math.round(abs)} W` : `${(abs / 1000).toFixed(2)} kW`;
  return w < 0 ? `−${text}` : text;
}

function ruleRow(rule) {
  const row = document.createElement("div");
  const name = document.createElement("dt");
  name.textContent = rule.name;
  const state = document.createElement("dd");
  const badge = document.createElement("span");
  badge.className = `badge ${rule.on ? "on" : "off"}`;
  badge.textContent = rule.on ? "On" : "Off";
  const why = document.createElement("span");
  why.className = "muted why";
  why.textContent = rule.why;
  state.append(badge, " ", why);
  row.append(name, state);
  return row;
}

/** Draws the card from a state document; hides it when the state has no surplus. */
export function renderSurplus(state) {
  const card = document.getElementById("surplus");
  const surplus = state?.surplus;
  card.hidden = surplus === undefined || surplus === null;
  if (card.hidden) return;
  document.getElementById("surplus-watts").textContent = watts(surplus.watts);
  document.getElementById("surplus-note").textContent = surplus.failSafe
    ? "unknown: the device is offline, every rule is off"
    : `averaged over ${surplus.windowSeconds} s; now ${watts(surplus.instantWatts)}`;
  const list = document.getElementById("surplus-rules");
  list.replaceChildren(...surplus.rules.map(ruleRow));
  list.hidden = surplus.rules.length === 0;
}
