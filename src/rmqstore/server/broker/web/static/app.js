// rmqstore dashboard: one page, plain JavaScript, every call to the same origin (api.py).
"use strict";

const main = document.getElementById("page");
const statusLine = document.getElementById("status");
const ACTION_HEADERS = { "Content-Type": "application/json", "X-Requested-By": "rmqstore-dashboard" };

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function act(path, method, payload) {
  return api(path, { method, headers: ACTION_HEADERS,
                     body: payload === undefined ? undefined : JSON.stringify(payload) });
}

// One formatter for every number: toLocaleString builds one per call, the largest cost of
// rendering 2,500 rows.
const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 });
const fmt = {
  num: (n) => NUMBER.format(Number(n)),
  time: (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").replace("Z", "") : "-"),
  bytes: (n) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  },
  pct: (r) => `${(r * 100).toFixed(1)}%`,
};

// columns: [{key, label, num, html(row) -> trusted html}]
function table(columns, rows, id) {
  if (!rows.length) return `<div class="empty" id="${id}-empty">Nothing found.</div>`;
  const head = columns.map((c) => `<th class="${c.num ? "num" : ""}">${esc(c.label)}</th>`);
  const body = rows.map((row) => "<tr>" + columns.map((c) => {
    const cell = c.html ? c.html(row) : esc(c.num ? fmt.num(row[c.key]) : row[c.key]);
    return `<td class="${c.num ? "num" : ""}">${cell}</td>`;
  }).join("") + "</tr>");
  return `<table id="${id}"><thead><tr>${head.join("")}</tr></thead>` +
         `<tbody>${body.join("")}</tbody></table>`;
}

function card(label, value, cls = "") {
  return `<div class="card"><div class="label">${esc(label)}</div>` +
         `<div class="value ${cls}">${esc(value)}</div></div>`;
}

function link(hash, text) { return `<a href="#/${hash}">${esc(text)}</a>`; }

// A list page's rows, PAGE_ROWS at a time behind a filter over all of them: the browser's
// layout of a whole 2,500-row table took 0.9 s, of a page of them a tenth of that.
const PAGE_ROWS = 250;

function listBox(id) {
  return `<div class="toolbar"><label>Filter<input id="${id}-filter" placeholder="name contains">` +
         `</label></div><div id="${id}-list"></div>`;
}

function bindList(id, columns, rows) {
  const input = document.getElementById(`${id}-filter`);
  const holder = document.getElementById(`${id}-list`);
  const key = columns[0].key;
  let shown = rows;
  let start = 0;
  const draw = () => {
    const end = Math.min(start + PAGE_ROWS, shown.length);
    const range = shown.length ? `${fmt.num(start + 1)}–${fmt.num(end)}` : "0";
    holder.innerHTML = table(columns, shown.slice(start, end), id) +
      `<div class="toolbar pager"><button id="${id}-prev"${start ? "" : " disabled"}>Previous</button>` +
      `<span id="${id}-range">${range} of ${fmt.num(shown.length)}</span>` +
      `<button id="${id}-next"${end < shown.length ? "" : " disabled"}>Next</button></div>`;
    document.getElementById(`${id}-prev`).addEventListener("click", () => {
      start = Math.max(0, start - PAGE_ROWS); draw();
    });
    document.getElementById(`${id}-next`).addEventListener("click", () => {
      start += PAGE_ROWS; draw();
    });
  };
  input.addEventListener("input", () => {
    const needle = input.value.toLowerCase();
    shown = needle ? rows.filter((r) => String(r[key]).toLowerCase().includes(needle)) : rows;
    start = 0;
    draw();
  });
  draw();
}

// -- pages: each returns html, then binds its handlers ---------------------------------------
const pages = {};

pages.cluster = async () => {
  const o = await api("/api/overview");
  const s = o.store;
  const level = ["ok", "above diskMaxUsedSpaceRatio", "above diskSpaceCleanForciblyRatio",
                 "above diskSpaceWarningLevelRatio: writes refused"][s.diskAlarmLevel];
  main.innerHTML = `<h1>Cluster ${esc(o.cluster)}</h1>
    <div class="cards">
      ${card("Broker", `${o.broker} (id ${o.brokerId})`)}${card("Address", o.address)}
      ${card("Flush", o.flushDiskType)}${card("Permission", o.permission)}
      ${card("Topics", fmt.num(o.topics))}
      ${card("Messages in", fmt.num(o.messagesIn))}${card("Messages out", fmt.num(o.messagesOut))}
      ${card("TPS in", o.tpsIn)}${card("TPS out", o.tpsOut)}
      ${card("Started", fmt.time(o.bootTimestamp))}${card("ACL", o.aclEnabled ? "on" : "off")}
    </div>
    <h2>Store</h2>
    <div class="cards">
      ${card("Disk used", fmt.pct(s.diskUsedRatio), `level-${s.diskAlarmLevel}`)}
      ${card("Disk alarm", level, `level-${s.diskAlarmLevel}`)}
      ${card("Thresholds", `${fmt.pct(o.diskThresholds.maxUsed)} / ` +
             `${fmt.pct(o.diskThresholds.cleanForcibly)} / ${fmt.pct(o.diskThresholds.warning)}`)}
      ${card("Commit log", fmt.bytes(s.commitlogMaxOffset - s.commitlogMinOffset))}
      ${card("Flush behind", fmt.bytes(s.flushBehindBytes))}
      ${card("Writes", s.writesStopped.length ? `stopped: ${s.writesStopped.join(", ")}` +
             (s.syncFailedOffset === null ? "" : ` (durable to offset ${s.syncFailedOffset})`)
             : "taken", s.writesStopped.length ? "level-3" : "level-0")}
      ${card("Oldest message", fmt.time(s.earliestStoreTimestamp))}
    </div>
    <table id="brokers"><thead><tr><th>Broker</th><th>Address</th><th class="num">TPS in</th>
      <th class="num">TPS out</th><th class="num">Disk</th><th>Store</th></tr></thead>
      <tbody><tr><td>${esc(o.broker)}</td><td>${esc(o.address)}</td>
      <td class="num">${esc(o.tpsIn)}</td><td class="num">${esc(o.tpsOut)}</td>
      <td class="num">${fmt.pct(s.diskUsedRatio)}</td><td>${esc(s.root)}</td></tr></tbody></table>`;
};

pages.topics = async () => {
  const data = await api("/api/topics");
  main.innerHTML = `<h1>Topics <span class="muted">(${fmt.num(data.topics.length)})</span></h1>
    <form class="inline" id="create-topic">
      <label>Topic<input name="topic" required></label>
      <label>Queues<input name="queues" type="number" min="1" value="8"></label>
      <label>Permission<select name="perm"><option value="6">read and write</option>
        <option value="4">read</option><option value="2">write</option></select></label>
      <button type="submit">Create or update</button><span id="create-result"></span>
    </form>
    ${listBox("topics")}`;
  bindList("topics", [
    { key: "topic", label: "Topic", html: (r) => link(`topic/${encodeURIComponent(r.topic)}`, r.topic) },
    { key: "kind", label: "Kind" }, { key: "readQueues", label: "Read queues", num: true },
    { key: "writeQueues", label: "Write queues", num: true }, { key: "perm", label: "Perm", num: true },
    { key: "messages", label: "Messages", num: true }, { key: "tps", label: "TPS", num: true },
  ], data.topics);
  document.getElementById("create-topic").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target;
    const out = document.getElementById("create-result");
    try {
      const queues = Number(f.queues.value);
      await act("/api/topics", "POST", { topic: f.topic.value, readQueues: queues,
                                          writeQueues: queues, perm: Number(f.perm.value) });
      await pages.topics();
      document.getElementById("create-result").innerHTML =
        `<span class="notice">created ${esc(f.topic.value)}</span>`;
    } catch (e) { out.innerHTML = `<span class="error">${esc(e.message)}</span>`; }
  });
};

pages.topic = async (name) => {
  const t = await api(`/api/topics/${encodeURIComponent(name)}`);
  main.innerHTML = `<h1>Topic ${esc(t.topic)}</h1>
    <div class="cards">${card("Read queues", t.readQueues)}${card("Write queues", t.writeQueues)}
      ${card("Perm", t.perm)}${card("Broker", `${t.route.brokerName} ${t.route.brokerAddr}`)}
      ${card("Cluster", t.route.cluster)}</div>
    <h2>Status</h2>
    ${table([{ key: "queueId", label: "Queue", num: true }, { key: "minOffset", label: "Min offset", num: true },
             { key: "maxOffset", label: "Max offset", num: true },
             { key: "lastUpdateTimestamp", label: "Last update", html: (r) => esc(fmt.time(r.lastUpdateTimestamp)) }],
            t.queues, "topic-queues")}
    <h2>Consumer groups</h2>
    ${table([{ key: "group", label: "Group", html: (r) => link(`group/${encodeURIComponent(r.group)}`, r.group) }],
            t.consumerGroups.map((g) => ({ group: g })), "topic-groups")}
    <div class="toolbar"><button class="danger" id="delete-topic">Delete topic</button>
      <span id="delete-result"></span></div>`;
  document.getElementById("delete-topic").addEventListener("click", async () => {
    if (!window.confirm(`Delete topic ${t.topic}?`)) return;
    try {
      await act(`/api/topics/${encodeURIComponent(t.topic)}`, "DELETE");
      window.location.hash = "#/topics";
    } catch (e) {
      document.getElementById("delete-result").innerHTML = `<span class="error">${esc(e.message)}</span>`;
    }
  });
};

pages.groups = async () => {
  const data = await api("/api/groups");
  main.innerHTML = `<h1>Consumer groups <span class="muted">(${fmt.num(data.groups.length)})</span></h1>
    ${listBox("groups")}`;
  bindList("groups", [
    { key: "group", label: "Group", html: (r) => link(`group/${encodeURIComponent(r.group)}`, r.group) },
    { key: "online", label: "Online", num: true }, { key: "consumeType", label: "Type" },
    { key: "messageModel", label: "Model" },
    { key: "topics", label: "Topics", html: (r) => esc(r.topics.join(", ")) },
    { key: "lag", label: "Lag", num: true }, { key: "tps", label: "TPS", num: true },
  ], data.groups);
};

function plot(history, interval) {
  const w = 720, h = 200, pad = 36;
  if (history.length < 2) {
    return `<div class="empty" id="plot-empty">The history fills in every ${esc(interval)} s: reload soon.</div>`;
  }
  const t0 = history[0].at, t1 = history[history.length - 1].at;
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (w - 2 * pad);
  const line = (key) => {
    const top = Math.max(1, ...history.map((p) => p[key]));
    return { top, points: history.map((p) => `${x(p.at).toFixed(1)},${(h - pad - (p[key] / top) * (h - 2 * pad)).toFixed(1)}`).join(" ") };
  };
  const lag = line("lag"), tps = line("tps");
  return `<svg class="plot" id="plot" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img"
      aria-label="lag and TPS over time">
    <line class="axis" x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}"/>
    <polyline class="lag" points="${lag.points}"/><polyline class="tps" points="${tps.points}"/>
    <text x="4" y="14">lag (max ${fmt.num(lag.top)})</text>
    <text x="${w - 150}" y="14">TPS (max ${tps.top.toFixed(1)})</text>
    <text x="${pad}" y="${h - 8}">${esc(fmt.time(t0))}</text>
    <text x="${w - pad - 150}" y="${h - 8}">${esc(fmt.time(t1))}</text></svg>`;
}

pages.group = async (name) => {
  const g = await api(`/api/groups/${encodeURIComponent(name)}`);
  const lag = g.queues.reduce((sum, q) => sum + q.lag, 0);
  main.innerHTML = `<h1>Consumer group ${esc(g.group)}</h1>
    <div class="cards">${card("Lag", fmt.num(lag))}${card("TPS", g.tps)}
      ${card("Members", g.members.length)}${card("Type", g.consumeType || "-")}
      ${card("Model", g.messageModel || "-")}</div>
    <h2>Lag and TPS</h2>${plot(g.history, g.sampleIntervalSeconds)}
    <h2>Lag per queue</h2>
    ${table([{ key: "topic", label: "Topic" }, { key: "queueId", label: "Queue", num: true },
             { key: "brokerOffset", label: "Broker offset", num: true },
             { key: "consumerOffset", label: "Consumer offset", num: true },
             { key: "lag", label: "Lag", num: true }, { key: "inflight", label: "In flight", num: true },
             { key: "lastTimestamp", label: "Last consumed", html: (r) => esc(fmt.time(r.lastTimestamp)) }],
            g.queues, "group-queues")}
    <h2>Members</h2>
    ${table([{ key: "clientId", label: "Client" }, { key: "address", label: "Address" },
             { key: "language", label: "Language" }, { key: "version", label: "Version" }],
            g.members, "group-members")}`;
};

pages.producers = async () => {
  const data = await api("/api/producers");
  main.innerHTML = `<h1>Producers <span class="muted">(${fmt.num(data.producers.length)})</span></h1>
    ${table([{ key: "group", label: "Group" }, { key: "clientId", label: "Client" },
             { key: "address", label: "Address" }, { key: "language", label: "Language" },
             { key: "version", label: "Version" }], data.producers, "producers")}`;
};

function messageRows(messages, extra = []) {
  return table([
    ...extra,
    { key: "msgId", label: "Message id", html: (r) =>
      link(`message/${encodeURIComponent(r.msgId)}?topic=${encodeURIComponent(r.topic)}`, r.msgId) },
    { key: "topic", label: "Topic" }, { key: "queueId", label: "Queue", num: true },
    { key: "queueOffset", label: "Offset", num: true }, { key: "tags", label: "Tags" },
    { key: "keys", label: "Keys" },
    { key: "storeTimestamp", label: "Stored", html: (r) => esc(fmt.time(r.storeTimestamp)) },
    { key: "bodySize", label: "Body", num: true },
  ], messages, "messages");
}

function localInput(ms) {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

pages.messages = async (arg, query) => {
  const now = Date.now();
  main.innerHTML = `<h1>Messages</h1>
    <form class="inline" id="search">
      <label>Topic<input name="topic" value="${esc(query.get("topic") || "")}"></label>
      <label>Key<input name="key" value="${esc(query.get("key") || "")}"></label>
      <label>Message id<input name="id" size="34" value="${esc(query.get("id") || "")}"></label>
      <label>From<input name="begin" type="datetime-local" value="${localInput(now - 3600000)}"></label>
      <label>To<input name="end" type="datetime-local" value="${localInput(now + 60000)}"></label>
      <button type="submit">Search</button></form>
    <div id="results"><div class="empty">By id (with its topic for a client's id), by topic and key, or by topic and time.</div></div>`;
  const form = document.getElementById("search");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const name of ["topic", "key", "id"]) if (form[name].value) params.set(name, form[name].value);
    if (!form.id.value) {
      if (form.begin.value) params.set("begin", String(new Date(form.begin.value).getTime()));
      if (form.end.value) params.set("end", String(new Date(form.end.value).getTime()));
    }
    const out = document.getElementById("results");
    try {
      const data = await api(`/api/messages?${params}`);
      out.innerHTML = messageRows(data.messages);
    } catch (e) { out.innerHTML = `<div class="error">${esc(e.message)}</div>`; }
  });
};

pages.message = async (id, query) => {
  const params = new URLSearchParams({ id, topic: query.get("topic") || "" });
  const data = await api(`/api/message?${params}`);
  const m = data.message;
  main.innerHTML = `<h1>Message ${esc(m.msgId)}</h1>
    <div class="cards">${card("Topic", m.topic)}${card("Queue", `${m.queueId} @ ${m.queueOffset}`)}
      ${card("Client id", m.uniqId || "-")}${card("Tags", m.tags || "-")}${card("Keys", m.keys || "-")}
      ${card("Born", `${fmt.time(m.bornTimestamp)} ${m.bornHost}`)}
      ${card("Stored", `${fmt.time(m.storeTimestamp)} ${m.storeHost}`)}
      ${card("Reconsumed", m.reconsumeTimes)}</div>
    <h2>Properties</h2>
    ${table([{ key: "name", label: "Name" }, { key: "value", label: "Value" }],
            Object.entries(m.properties).map(([name, value]) => ({ name, value })), "properties")}
    <h2>Body (${fmt.num(m.bodySize)} bytes${m.bodyTruncated ? ", first 4 KiB" : ""})</h2>
    <pre id="body">${esc(m.body)}</pre>
    <h2>Trace</h2>
    ${table([{ key: "type", label: "Step" },
             { key: "timestamp", label: "When", html: (r) => esc(fmt.time(r.timestamp)) },
             { key: "group", label: "Group" }, { key: "clientHost", label: "Client" },
             { key: "costTime", label: "Cost ms", num: true },
             { key: "success", label: "Success", html: (r) => (r.success ? "yes" : "no") }],
            data.trace, "trace")}`;
};

pages.dlq = async (arg, query) => {
  const group = query.get("group") || "";
  main.innerHTML = `<h1>Dead letter queue</h1>
    <form class="inline" id="dlq-form"><label>Consumer group<input name="group" required
      value="${esc(group)}"></label><button type="submit">Show</button></form>
    <div id="dlq-results">${group ? "" : '<div class="empty">Name a consumer group.</div>'}</div>`;
  document.getElementById("dlq-form").addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = `#/dlq?group=${encodeURIComponent(event.target.group.value)}`;
  });
  if (!group) return;
  const data = await api(`/api/dlq?group=${encodeURIComponent(group)}`);
  const out = document.getElementById("dlq-results");
  out.innerHTML = messageRows(data.messages, [{ key: "pick", label: "", html: (r) =>
      `<input type="checkbox" class="pick" value="${esc(r.msgId)}">` }]) +
    (data.messages.length ? `<div class="toolbar"><button id="resend">Resend selected to %RETRY%${esc(group)}</button>
      <span id="resend-result"></span></div>` : "");
  const button = document.getElementById("resend");
  if (!button) return;
  button.addEventListener("click", async () => {
    const ids = [...document.querySelectorAll("input.pick:checked")].map((c) => c.value);
    const result = document.getElementById("resend-result");
    if (!ids.length) { result.innerHTML = '<span class="error">select messages first</span>'; return; }
    try {
      const r = await act("/api/dlq/resend", "POST", { group, msgIds: ids });
      const ok = r.results.filter((x) => !x.error).length;
      const failed = r.results.filter((x) => x.error).map((x) => x.error);
      result.innerHTML = `<span class="notice">resent ${ok}</span>` +
        (failed.length ? ` <span class="error">${esc(failed.join("; "))}</span>` : "");
    } catch (e) { result.innerHTML = `<span class="error">${esc(e.message)}</span>`; }
  });
};

// -- router -------------------------------------------------------------------------------
async function route() {
  const hash = window.location.hash.replace(/^#\/?/, "") || "cluster";
  const [path, search] = hash.split("?");
  const [name, ...rest] = path.split("/");
  const page = pages[name] ? name : "cluster";
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  for (const a of document.querySelectorAll("nav a")) {
    const group = { topic: "topics", group: "groups", message: "messages" }[page] || page;
    a.classList.toggle("active", a.dataset.page === group);
  }
  main.dataset.ready = "";
  const started = performance.now();
  statusLine.textContent = "loading…";
  try {
    await pages[page](arg, new URLSearchParams(search || ""));
    statusLine.textContent = `${page} in ${Math.round(performance.now() - started)} ms`;
  } catch (e) {
    main.innerHTML = `<div class="error" id="page-error">${esc(e.message)}</div>`;
    statusLine.textContent = "";
  }
  main.dataset.page = page;
  const laidOut = performance.now();
  void main.offsetHeight;  // the layout of what was rendered, counted in renderMs
  main.dataset.layoutMs = String(Math.round(performance.now() - laidOut));
  main.dataset.renderMs = String(Math.round(performance.now() - started));
  main.dataset.ready = page;
}

window.addEventListener("hashchange", route);
route();
