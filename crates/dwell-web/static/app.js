// dwell's session analytics page: every panel is one call of the JSON API (see the dwell-web
// crate docs) with the filters of the form; the figures are the server's, the page only draws.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = {
  sessions: "#2f6fde",
  hours: "#f08c2e",
  struggling: "#e8590c",
  disengaged: "#868e96",
  engaged: "#2b8a3e",
};
const REASON_COLORS = ["#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#868e96", "#1098ad", "#f59f00", "#c92a2a", "#5c940d"];
const SEGMENTS = ["struggling", "disengaged", "engaged"];
const charts = {};
const generations = {};
let context = null;

const integer = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));

/** A duration in seconds as people read it. */
function duration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  const hours = seconds / 3600;
  if (hours < 100) return `${hours.toFixed(1)} h`;
  return `${Math.round(hours).toLocaleString("en-US")} h`;
}

const timeText = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";

/** The form's filters as query parameters (empty ones left out). */
function filters() {
  const values = {
    from: $("f-from").value,
    to: $("f-to").value,
    account: $("f-account").value,
    app: $("f-app").value,
  };
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v));
}

/** GET /api/PATH?PARAMS as JSON; a failure throws with the server's message. */
async function api(path, params) {
  const query = new URLSearchParams(params).toString();
  let response;
  try {
    response = await fetch(`/api/${path}${query ? "?" + query : ""}`, {
      headers: { accept: "application/json" },
      credentials: "same-origin",
    });
  } catch (e) {
    throw new Error(`the server did not answer (${e.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status says what happened.
  }
  if (!response.ok) {
    throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  }
  return body;
}

/**
 * Loads one panel: shows progress (with the seconds it has taken) while the query runs, the
 * server's error as a message if it fails, and draws it otherwise. An answer that a newer
 * request overtook is dropped.
 */
async function load(panelId, path, params, render) {
  const panel = $(panelId);
  const status = panel.querySelector(".status");
  const generation = (generations[panelId] = (generations[panelId] || 0) + 1);
  const started = performance.now();
  panel.dataset.state = "loading";
  status.className = "status loading";
  status.textContent = "Loading…";
  const timer = setInterval(() => {
    status.textContent = `Loading… ${((performance.now() - started) / 1000).toFixed(1)} s`;
  }, 250);
  try {
    const data = await api(path, params);
    if (generation !== generations[panelId]) return;
    render(data);
    panel.dataset.state = "ready";
    panel.dataset.ms = String(Math.round(performance.now() - started));
    status.className = "status";
    status.textContent = "";
  } catch (e) {
    if (generation !== generations[panelId]) return;
    panel.dataset.state = "error";
    status.className = "status error";
    status.textContent = `Could not load this panel: ${e.message}`;
  } finally {
    clearInterval(timer);
  }
}

/** Draws (or redraws) the chart on canvas `id`. */
function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  config.options = Object.assign({ animation: false, maintainAspectRatio: false, responsive: true }, config.options);
  charts[id] = new Chart($(id), config);
}

function setCard(id, value, text) {
  const card = $(id);
  card.dataset.value = value == null ? "" : String(value);
  card.textContent = text;
}

function renderSummary(data) {
  setCard("card-sessions", data.sessions, integer(data.sessions));
  setCard("card-avg", data.avg_session_seconds, duration(data.avg_session_seconds));
  setCard("card-total", data.total_session_seconds, duration(data.total_session_seconds));
  setCard("card-users", data.users, integer(data.users));
}

/** Bars of sessions and a line of session hours over `labels`. */
function sessionsAndHours(id, labels, rows, extra) {
  chart(id, {
    data: {
      labels,
      datasets: [
        { type: "bar", label: "Sessions", data: rows.map((r) => r.sessions), backgroundColor: COLORS.sessions, yAxisID: "y" },
        {
          type: "line",
          label: "Session time (h)",
          data: rows.map((r) => r.total_session_seconds / 3600),
          borderColor: COLORS.hours,
          backgroundColor: COLORS.hours,
          yAxisID: "y1",
        },
      ],
    },
    options: Object.assign(
      {
        scales: {
          y: { beginAtZero: true, title: { display: true, text: "sessions" } },
          y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "hours" } },
        },
        plugins: {
          tooltip: {
            callbacks: {
              afterBody: (items) => {
                const r = rows[items[0].dataIndex];
                return [`users: ${integer(r.users)}`, `average: ${duration(r.avg_session_seconds)}`];
              },
            },
          },
        },
      },
      extra,
    ),
  });
}

function renderDaily(data) {
  sessionsAndHours("chart-daily", data.rows.map((r) => r.day), data.rows);
}

function renderApps(data) {
  sessionsAndHours("chart-apps", data.rows.map((r) => r.app_id ?? "(none)"), data.rows, {
    indexAxis: "x",
    onClick: (_, elements) => {
      if (!elements.length) return;
      const app = data.rows[elements[0].index].app_id;
      if (app == null) return;
      $("f-app").value = app;
      refresh();
    },
  });
}

function renderDurations(data) {
  chart("chart-durations", {
    type: "bar",
    data: {
      labels: data.buckets.map((b) => b.label),
      datasets: [{ label: "Sessions", data: data.buckets.map((b) => b.sessions), backgroundColor: COLORS.sessions }],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "sessions" } } }, plugins: { legend: { display: false } } },
  });
}

function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.appendChild(td);
}

function header(table, columns) {
  const tr = document.createElement("tr");
  for (const [text, numeric] of columns) {
    const th = document.createElement("th");
    th.textContent = text;
    if (numeric) th.className = "num";
    tr.appendChild(th);
  }
  table.replaceChildren(tr);
}

function renderSegments(data) {
  const counts = Object.fromEntries(data.counts.map((c) => [c.segment, c]));
  chart("chart-segments", {
    type: "doughnut",
    data: {
      labels: SEGMENTS,
      datasets: [{ data: SEGMENTS.map((s) => (counts[s] ? counts[s].users : 0)), backgroundColor: SEGMENTS.map((s) => COLORS[s]) }],
    },
    options: { plugins: { legend: { position: "right" }, title: { display: true, text: "users per segment" } } },
  });
  const split = data.by_attribute;
  $("f-attribute-label").hidden = !context || context.attributes.length === 0;
  if (split) {
    const values = [...new Set(split.rows.map((r) => r.value))];
    chart("chart-attribute", {
      type: "bar",
      data: {
        labels: values,
        datasets: SEGMENTS.map((segment) => ({
          label: segment,
          backgroundColor: COLORS[segment],
          data: values.map((v) => {
            const row = split.rows.find((r) => r.value === v && r.segment === segment);
            return row ? row.users : 0;
          }),
        })),
      },
      options: {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "users" } } },
        plugins: { title: { display: true, text: `users by ${split.attribute}` } },
      },
    });
  } else if (charts["chart-attribute"]) {
    charts["chart-attribute"].destroy();
    delete charts["chart-attribute"];
  }
  const admin = context && context.account == null;
  const ids = $("user-ids");
  ids.replaceChildren();
  for (const segment of SEGMENTS) {
    const table = $(`table-${segment}`);
    const columns = [["user", false]];
    if (admin) columns.push(["account", false]);
    columns.push(["sessions", true], ["per day", true], ["median", true], ["apps", true]);
    header(table, columns);
    const users = data.users.filter((u) => u.segment === segment);
    for (const u of users) {
      const tr = document.createElement("tr");
      tr.className = "pick";
      tr.dataset.user = u.user_id;
      cell(tr, u.user_id);
      if (admin) cell(tr, u.account_id ?? "");
      cell(tr, integer(u.sessions), true);
      cell(tr, u.sessions_per_active_day.toFixed(1), true);
      cell(tr, duration(u.median_session_seconds), true);
      cell(tr, integer(u.apps_used), true);
      tr.title = `${integer(u.active_days)} active days, ${duration(u.total_session_seconds)} in all; click for the sessions`;
      tr.addEventListener("click", () => showUser(u.user_id));
      table.appendChild(tr);
      const option = document.createElement("option");
      option.value = u.user_id;
      ids.appendChild(option);
    }
    const total = counts[segment] ? counts[segment].users : 0;
    const caption = document.createElement("caption");
    caption.textContent =
      total > users.length ? `${integer(users.length)} of ${integer(total)} users, most sessions first` : `${integer(total)} users`;
    table.prepend(caption);
  }
}

function renderUser(data) {
  const sessions = data.sessions;
  $("user-chart").hidden = false;
  const apps = [...new Set(sessions.map((s) => s.app_id ?? "(none)"))].sort();
  const reasons = [...new Set(sessions.map((s) => s.end_reason))].sort();
  const total = sessions.reduce((sum, s) => sum + s.duration_seconds, 0);
  $("user-summary").textContent = sessions.length
    ? `${data.user_id}: ${integer(sessions.length)} sessions${data.truncated ? " (the first 1,000 shown)" : ""}, ` +
      `${duration(total)} in all, in ${apps.length} application${apps.length === 1 ? "" : "s"}`
    : `${data.user_id}: no sessions with these filters`;
  chart("chart-user", {
    type: "bar",
    data: {
      labels: apps,
      datasets: reasons.map((reason, i) => ({
        label: reason,
        grouped: false,
        minBarLength: 4,
        backgroundColor: REASON_COLORS[i % REASON_COLORS.length],
        data: sessions
          .filter((s) => s.end_reason === reason)
          .map((s) => ({ x: [s.start_ms, Math.max(s.end_ms, s.start_ms)], y: s.app_id ?? "(none)", session: s })),
      })),
    },
    options: {
      indexAxis: "y",
      scales: {
        x: {
          type: "linear",
          min: sessions.length ? sessions[0].start_ms : undefined,
          ticks: { callback: (v) => timeText(v), maxRotation: 0, autoSkipPadding: 24 },
        },
      },
      plugins: {
        title: { display: true, text: "sessions on a timeline, coloured by how they ended" },
        tooltip: {
          callbacks: {
            label: (item) => {
              const s = item.raw.session;
              return [
                `${timeText(s.start_ms)} · ${duration(s.duration_seconds)} · ended: ${s.end_reason}`,
                `${s.event_count} events (${s.page_views} page views, ${s.user_actions} actions, ${s.content_engagements} engagements)`,
              ];
            },
          },
        },
      },
    },
  });
  const table = $("table-user");
  header(table, [
    ["#", true], ["start", false], ["application", false], ["tab", false], ["duration", true],
    ["events", true], ["page views", true], ["actions", true], ["engagements", true], ["end reason", false],
  ]);
  for (const s of sessions) {
    const tr = document.createElement("tr");
    tr.dataset.session = s.session_id;
    cell(tr, integer(s.session_seq), true);
    cell(tr, timeText(s.start_ms));
    cell(tr, s.app_id ?? "");
    cell(tr, s.tab_id ?? "");
    cell(tr, duration(s.duration_seconds), true);
    cell(tr, integer(s.event_count), true);
    cell(tr, integer(s.page_views), true);
    cell(tr, integer(s.user_actions), true);
    cell(tr, integer(s.content_engagements), true);
    cell(tr, s.end_reason);
    table.appendChild(tr);
  }
}

function showUser(userId) {
  $("user-id").value = userId;
  syncUrl();
  $("panel-user").scrollIntoView({ block: "nearest" });
  return load("panel-user", "user", { ...filters(), user_id: userId }, renderUser);
}

function syncUrl() {
  const params = { ...filters() };
  const user = $("user-id").value.trim();
  if (user) params.user = user;
  if ($("f-attribute").value) params.attribute = $("f-attribute").value;
  history.replaceState(null, "", `${location.pathname}?${new URLSearchParams(params)}`);
}

function loadSegments() {
  const params = { ...filters() };
  if ($("f-attribute").value) params.attribute = $("f-attribute").value;
  return load("panel-segments", "segments", params, renderSegments);
}

/** Every panel, with the filters of the form. */
function refresh() {
  syncUrl();
  const params = filters();
  const loads = [
    load("panel-summary", "summary", params, renderSummary),
    load("panel-daily", "daily", params, renderDaily),
    load("panel-apps", "applications", params, renderApps),
    load("panel-durations", "durations", params, renderDurations),
    loadSegments(),
  ];
  const user = $("user-id").value.trim();
  if (user) loads.push(showUser(user));
  return Promise.all(loads);
}

function fillSelect(select, values, keep) {
  const first = select.options[0];
  select.replaceChildren(first);
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value;
    select.appendChild(option);
  }
  select.value = values.includes(keep) ? keep : "";
}

/** Who is asking and what the filters offer; `account` narrows the applications. */
async function loadContext(account, wanted) {
  const status = $("context-status");
  status.className = "status loading";
  status.textContent = "Loading filters…";
  try {
    context = await api("context", account ? { account } : {});
  } catch (e) {
    status.className = "status error";
    status.textContent = `Could not load the filters: ${e.message}`;
    $("who").textContent = "Not connected";
    $("who").dataset.state = "error";
    // No panel stays blank: each says why it is empty.
    for (const panel of document.querySelectorAll(".panel")) {
      panel.dataset.state = "error";
      const message = panel.querySelector(".status");
      message.className = "status error";
      message.textContent = `Not loaded: the filters could not be loaded (${e.message})`;
    }
    return false;
  }
  status.className = "status";
  status.textContent = "";
  $("who").textContent = `${context.caller} · ${context.account == null ? "all accounts" : `account ${context.account}`}`;
  $("who").dataset.state = "ready";
  $("f-account-label").hidden = context.account != null;
  fillSelect($("f-account"), context.accounts, account || "");
  fillSelect($("f-app"), context.applications, wanted.app || "");
  fillSelect($("f-attribute"), context.attributes, wanted.attribute || context.attributes[0] || "");
  $("f-attribute-label").hidden = context.attributes.length === 0;
  for (const key of ["from", "to"]) {
    const input = $(`f-${key}`);
    input.min = context.first_day || "";
    input.max = context.last_day || "";
    if (wanted[key] !== undefined) input.value = wanted[key];
    else if (!input.value) input.value = (key === "from" ? context.first_day : context.last_day) || "";
  }
  return true;
}

async function start() {
  const wanted = Object.fromEntries(new URLSearchParams(location.search));
  if (wanted.user) $("user-id").value = wanted.user;
  if (!(await loadContext(wanted.account, wanted))) return;
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    refresh();
  });
  $("f-account").addEventListener("change", async () => {
    await loadContext($("f-account").value, { app: $("f-app").value, attribute: $("f-attribute").value, from: $("f-from").value, to: $("f-to").value });
    refresh();
  });
  $("f-app").addEventListener("change", () => refresh());
  $("f-attribute").addEventListener("change", () => {
    syncUrl();
    loadSegments();
  });
  $("user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const user = $("user-id").value.trim();
    if (user) showUser(user);
  });
  await refresh();
  document.body.dataset.ready = "true";
}

if (typeof Chart === "undefined") {
  document.addEventListener("DOMContentLoaded", () => {
    $("who").textContent = "The chart library did not load: reload the page";
  });
} else {
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  start();
}
