// Podium console: plain JavaScript, no build step. Every API call carries the token as a header; live
// feeds are Server-Sent Events read with fetch streaming (EventSource cannot send a header).
"use strict";

const TOKEN_KEY = "podium-console-token";
const main = document.getElementById("main");
const statusEl = document.getElementById("status");
let info = { writable: false };
let view = null; // the AbortController of the shown view's feeds
let started = false;

// -- token ------------------------------------------------------------------------------------------
(function takeTokenFromFragment() {
  // `podium up` prints http://host:port/#token=...: the fragment never reaches any server.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#/agents");
  }
})();

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

function askForToken(why) {
  const form = document.getElementById("token-form");
  form.hidden = false;
  document.getElementById("token-why").textContent = why;
  setStatus("refused: token needed", true);
  main.replaceChildren(el("p", { class: "error", "data-testid": "refused" }, why));
}

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
  document.getElementById("token-form").hidden = true;
  start();
});

class Refused extends Error {}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const res = await fetch(path, opts);
  if (res.status === 401) {
    askForToken("This console needs its token (printed by `podium up` or `podium console`).");
    throw new Refused("unauthorized");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

// A Server-Sent Events stream over fetch; reconnects after a pause until `signal` aborts.
async function subscribe(path, handlers, signal) {
  while (!signal.aborted) {
    try {
      const res = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
      if (res.status === 401) { askForToken("This console needs its token."); return; }
      if (!res.ok || !res.body) throw new Error(res.statusText);
      setStatus("live");
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let name = "message", data = "";
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (name === "error") setStatus(JSON.parse(data).message, true);
          else if (data && handlers[name]) handlers[name](JSON.parse(data));
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      setStatus("reconnecting…", true);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// -- helpers ----------------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "style") Object.assign(node.style, v); // CSSOM: the CSP forbids inline style attributes
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function setStatus(text, bad) {
  statusEl.textContent = text;
  statusEl.classList.toggle("bad", !!bad);
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  return Math.max(0, seconds).toFixed(1) + "s";
}

function when(ts) {
  return ts ? new Date(ts * 1000).toLocaleTimeString() : "-";
}

function pill(state, attrs) {
  return el("span", Object.assign({ class: "pill " + state }, attrs || {}), state);
}

// -- views ------------------------------------------------------------------------------------------
function agentsView(signal) {
  const body = el("tbody");
  const table = el("table", { "data-testid": "agents" },
    el("thead", {}, el("tr", {}, ["Agent", "Version", "Skills", "Bindings", "Signed", "Alive", "Heartbeat",
      "Queued", "Pending", "Consumers", "Dead letters", "Breaker"].map((h) => el("th", {}, h)))),
    body);
  main.replaceChildren(el("h2", {}, "Agents"), table);
  let last = null;
  const draw = () => {
    if (!last) return;
    const now = Date.now() / 1000;
    body.replaceChildren(...last.agents.map((a) => {
      const q = a.queue || {};
      const breaker = a.breaker || { state: "closed", failures: 0 };
      const signed = a.verifiedBy ? "yes (" + a.verifiedBy + ")" : a.signed ? "yes" : "no";
      const cell = (field, value) => el("td", { "data-field": field }, value);
      return el("tr", { "data-agent": a.name },
        cell("name", el("strong", {}, a.name)),
        cell("version", a.version || "-"),
        cell("skills", a.skills.join(", ")),
        cell("bindings", a.bindings.map((b) => b.binding).join(", ")),
        cell("signed", signed),
        el("td", { "data-field": "alive", title: a.instances.map((i) => i.instance + " (beat " + ago(now - i.lastHeartbeat) + " ago)").join("\n") },
          a.static ? outsideState(a) : String(a.alive)),
        cell("heartbeat", a.lastHeartbeat ? ago(now - a.lastHeartbeat) + " ago" : "-"),
        cell("depth", q.depth ?? "-"),
        cell("pending", q.pending ?? "-"),
        cell("consumers", a.static ? "-" : String(a.consumers)),
        cell("dead-letters", String((last.deadLetters || {})[a.name] || 0)),
        cell("breaker", pill(breaker.state), breaker.failures ? " " + breaker.failures + " failed" : ""));
    }));
  };
  const tick = setInterval(draw, 1000); // heartbeat ages count up between updates
  signal.addEventListener("abort", () => clearInterval(tick));
  subscribe("/api/events/agents", { agents: (d) => { last = d; draw(); } }, signal);
}

// An outside A2A agent (added by URL): whether the registry's last fetch of its card worked.
function outsideState(a) {
  if (!a.health) return "outside";
  return a.health.ok ? "outside (ok)" : "outside (down: " + (a.health.error || "no card") + ")";
}

function tasksView(signal) {
  const stateSel = el("select", { "data-testid": "state-filter" }, el("option", { value: "" }, "any state"));
  const agentSel = el("select", { "data-testid": "agent-filter" }, el("option", { value: "" }, "any agent"));
  const body = el("tbody");
  main.replaceChildren(el("h2", {}, "Tasks"),
    el("div", { class: "filters" }, "State", stateSel, "Agent", agentSel),
    el("table", { "data-testid": "tasks" },
      el("thead", {}, el("tr", {}, ["Task", "State", "Agent", "Started", "Duration", "Context", "Owner"].map((h) => el("th", {}, h)))),
      body));
  let rows = [];
  const options = (select, values) => {
    const chosen = select.value;
    select.replaceChildren(select.firstChild, ...[...values].sort().map((v) => el("option", { value: v }, v)));
    select.value = chosen;
  };
  const draw = () => {
    const s = stateSel.value, a = agentSel.value, now = Date.now() / 1000;
    body.replaceChildren(...rows.filter((r) => (!s || r.state === s) && (!a || r.agent === a)).map((r) =>
      el("tr", { class: "clickable", "data-task": r.id, onclick: () => { location.hash = "#/task/" + r.id; } },
        el("td", {}, el("code", {}, r.id.slice(0, 12))),
        el("td", { "data-field": "state" }, pill(r.state)),
        el("td", { "data-field": "agent" }, r.agent || "-"),
        el("td", {}, when(r.started)),
        el("td", {}, ago(r.terminal ? r.duration : now - r.started)),
        el("td", { class: "muted" }, (r.contextId || "").slice(0, 12)),
        el("td", { "data-field": "owner" }, r.owner || "-"))));
  };
  stateSel.addEventListener("change", draw);
  agentSel.addEventListener("change", draw);
  const tick = setInterval(draw, 1000);
  signal.addEventListener("abort", () => clearInterval(tick));
  subscribe("/api/events/tasks", {
    tasks: (d) => {
      rows = d.tasks;
      options(stateSel, new Set(rows.map((r) => r.state)));
      options(agentSel, new Set(rows.map((r) => r.agent).filter(Boolean)));
      draw();
    },
  }, signal);
}

// One task, live: plan graph, timeline, answer, trace, raw JSON. `into` is the element to fill.
function taskPanel(taskId, into, signal) {
  const head = el("div");
  const approvalBox = el("section", { class: "approval", "data-testid": "approval", hidden: true });
  const graph = el("div", { "data-testid": "plan" });
  const timeline = el("div", { class: "timeline", "data-testid": "timeline" });
  const answer = el("div", { "data-testid": "answer" });
  const traceList = el("ol", { class: "trace" });
  const raw = el("pre", { class: "raw", "data-testid": "raw" });
  into.replaceChildren(head, approvalBox,
    el("section", {}, el("h3", {}, "Plan"), graph),
    el("section", {}, el("h3", {}, "Timeline"), timeline),
    el("section", {}, el("h3", {}, "Answer"), answer),
    el("section", {}, el("details", {}, el("summary", {}, "Trace"), traceList)),
    el("section", {}, el("details", {}, el("summary", {}, "Raw A2A task JSON"), raw)));
  let task = null;
  const trace = [];
  const draw = () => {
    if (task) {
      head.replaceChildren(el("h2", {}, "Task ", el("code", {}, taskId), " ", pill(task.state, { "data-testid": "task-state" })),
        el("p", { class: "muted" }, "agent " + (task.agent || "-") + " · owner " + (task.owner || "-") + " · started " + when(task.started) +
          (task.message ? " · " + task.message : "")));
      raw.textContent = JSON.stringify(task.raw, null, 2);
      drawAnswer(answer, task.answer);
      drawApproval(approvalBox, task, taskId);
    } else {
      head.replaceChildren(el("h2", {}, "Task ", el("code", {}, taskId)), el("p", { class: "muted" }, "waiting for the task…"));
    }
    const steps = stepStates(trace);
    drawPlan(graph, trace, steps);
    drawTimeline(timeline, trace, steps, task);
    traceList.replaceChildren(...trace.map((e) => el("li", {}, line(e))));
  };
  subscribe("/api/events/tasks/" + encodeURIComponent(taskId), {
    task: (d) => { task = d; trace.splice(0, trace.length, ...(d.trace || [])); draw(); },
    state: (d) => { task = Object.assign(task || {}, d); draw(); },
    trace: (entries) => { trace.push(...entries); draw(); },
  }, signal);
  const tick = setInterval(() => { if (task && !task.terminal) drawTimeline(timeline, trace, stepStates(trace), task); }, 500);
  signal.addEventListener("abort", () => clearInterval(tick));
  draw();
}

function line(e) {
  const words = [e.event, e.step || "", e.state || ""];
  if (e.agent) words.push("→ " + e.agent);
  if (e.binding) words.push("via " + e.binding);
  if (e.durationMs !== undefined) words.push("(" + (e.durationMs / 1000).toFixed(2) + "s)");
  const text = words.filter(Boolean).join(" ");
  return e.reason ? text + " — " + e.reason : text;
}

// Each step's state, agent, binding, start and end, from the trace.
function stepStates(trace) {
  const steps = {};
  for (const e of trace) {
    if (!e.step) continue;
    const s = steps[e.step] || (steps[e.step] = { state: "pending", marks: [] });
    if (e.event === "step") {
      if (e.state === "started") { s.state = "running"; s.start = e.ts; }
      else { s.state = e.state; s.end = e.ts; if (s.start === undefined) s.start = e.ts - (e.durationMs || 0) / 1000; }
      if (e.agent) s.agent = e.agent;
      if (e.binding) s.binding = e.binding;
    } else if (e.event === "handoff") {
      if (e.agent) s.agent = e.agent;
      if (e.binding) s.binding = e.binding;
    }
    if (["retry", "gate", "fallback", "approval", "breaker", "loop", "vote"].includes(e.event)) {
      s.marks.push(e);
    }
  }
  return steps;
}

function planOf(trace) {
  const entry = [...trace].reverse().find((e) => e.event === "plan" && e.data && e.data.plan);
  return entry ? entry.data.plan : null;
}

function drawPlan(into, trace, states) {
  const plan = planOf(trace);
  if (!plan) { into.replaceChildren(el("p", { class: "muted" }, "no plan yet")); return; }
  const steps = plan.steps;
  const deps = (s) => [...(s.dependsOn || []), ...(s.branches || [])];
  const level = {};
  const depth = (s, seen) => {
    if (level[s.id] !== undefined) return level[s.id];
    if (seen.has(s.id)) return 0;
    seen.add(s.id);
    const ds = deps(s).map((d) => steps.find((x) => x.id === d)).filter(Boolean);
    level[s.id] = ds.length ? 1 + Math.max(...ds.map((d) => depth(d, seen))) : 0;
    return level[s.id];
  };
  steps.forEach((s) => depth(s, new Set()));
  const columns = {};
  const pos = {};
  const W = 170, H = 50, GX = 60, GY = 18;
  for (const s of steps) {
    const c = level[s.id];
    columns[c] = (columns[c] || 0) + 1;
    pos[s.id] = { x: 10 + c * (W + GX), y: 10 + (columns[c] - 1) * (H + GY) };
  }
  const width = 20 + (Math.max(...Object.values(level)) + 1) * (W + GX);
  const height = 20 + Math.max(...Object.values(columns)) * (H + GY);
  const root = svg("svg", { class: "plan", width, height, viewBox: `0 0 ${width} ${height}` },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a93a6" }))));
  for (const s of steps) {
    for (const d of deps(s)) {
      if (!pos[d]) continue;
      const a = pos[d], b = pos[s.id];
      root.append(svg("path", { class: "edge", d: `M ${a.x + W} ${a.y + H / 2} C ${a.x + W + GX / 2} ${a.y + H / 2}, ${b.x - GX / 2} ${b.y + H / 2}, ${b.x} ${b.y + H / 2}` }));
    }
  }
  for (const s of steps) {
    const st = states[s.id] || { state: "pending" };
    const p = pos[s.id];
    const who = st.agent ? st.agent + (st.binding ? " · " + st.binding : "") : (s.call && s.call.skill) || s.pattern;
    root.append(svg("g", { class: "node " + st.state, "data-step": s.id, "data-state": st.state, transform: `translate(${p.x},${p.y})` },
      svg("title", {}, (s.title || s.id) + " — " + st.state),
      svg("rect", { width: W, height: H, rx: 6 }),
      svg("text", { x: 8, y: 19, "font-weight": "bold" }, s.id + " (" + (s.pattern || "task") + ")"),
      svg("text", { x: 8, y: 37 }, who.length > 26 ? who.slice(0, 25) + "…" : who)));
  }
  into.replaceChildren(root);
}

// What a task waiting in input-required asks, with Approve / Reject / Edit, which answer on the task (as
// `podium ask` does) through POST /api/tasks/{id}/answer; the token is needed, as for asking.
function drawApproval(into, task, taskId) {
  const a = task && task.state === "input-required" ? task.approval : null;
  const key = a ? JSON.stringify(a.asks) + (task.updated || "") : "";
  if (into.dataset.shown === key) return; // redraws of the same question keep what is typed in the edit box
  into.dataset.shown = key;
  if (!a) { into.hidden = true; into.replaceChildren(); return; }
  into.hidden = false;
  const status = el("p", { class: "muted", "data-testid": "approval-status" });
  const instruction = el("textarea", { "data-testid": "approval-instruction" });
  instruction.value = (a.asks[0] && a.asks[0].instruction) || "";
  const buttons = [];
  const send = async (decision) => {
    for (const b of buttons) b.disabled = true;
    status.className = "muted";
    status.textContent = "sending " + decision + "…";
    try {
      const body = { decision };
      if (decision === "edit") body.instruction = instruction.value;
      await api("/api/tasks/" + encodeURIComponent(taskId) + "/answer", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      status.textContent = decision + " sent; the task goes on";
    } catch (err) {
      if (err instanceof Refused) return;
      status.className = "error";
      status.textContent = "could not answer: " + String(err.message || err);
      for (const b of buttons) b.disabled = !info.writable;
    }
  };
  const editBox = el("div", { hidden: true }, instruction,
    el("p", {}, el("button", { type: "button", "data-testid": "send-edit", onclick: () => send("edit"), disabled: !info.writable }, "Send the edited instruction")));
  buttons.push(
    el("button", { type: "button", "data-testid": "approve", onclick: () => send("approve"), disabled: !info.writable }, "Approve"),
    el("button", { type: "button", "data-testid": "reject", class: "danger", onclick: () => send("reject"), disabled: !info.writable }, "Reject"),
    el("button", { type: "button", "data-testid": "edit", class: "secondary", onclick: () => { editBox.hidden = false; instruction.focus(); }, disabled: !info.writable }, "Edit"));
  buttons.push(editBox.querySelector("button"));
  into.replaceChildren(el("h3", {}, "Approval needed"),
    el("ul", { "data-testid": "asks" }, ...a.asks.map((ask) => el("li", {}, el("strong", {}, ask.step), ": " +
      (ask.title || ask.skill || "") + " — " + ask.reason, ask.instruction ? el("div", { class: "muted" }, "instruction: " + ask.instruction) : null))),
    a.deadline ? el("p", { class: "muted" }, "Without an answer by " + when(a.deadline) + " the answer is " + (a.default || "deny") + ".") : null,
    el("p", { class: "buttons" }, ...buttons.slice(0, 3)), editBox, status,
    info.writable ? null : el("p", { class: "notice" }, "Read only: start the console with a token to answer."));
}

function drawTimeline(into, trace, states, task) {
  const ids = Object.keys(states).filter((id) => states[id].start !== undefined);
  if (!trace.length || !ids.length) { into.replaceChildren(el("p", { class: "muted" }, "no steps yet")); return; }
  const t0 = trace[0].ts;
  const running = task && !task.terminal;
  let t1 = Math.max(...trace.map((e) => e.ts));
  if (running) t1 = Math.max(t1, Date.now() / 1000);
  const span = Math.max(t1 - t0, 0.001);
  const pct = (t) => (100 * (t - t0) / span).toFixed(3) + "%";
  ids.sort((a, b) => states[a].start - states[b].start);
  into.replaceChildren(...ids.map((id) => {
    const s = states[id];
    const end = s.end !== undefined ? s.end : (running ? Date.now() / 1000 : t1);
    const seconds = (end - s.start).toFixed(2) + "s";
    const track = el("div", { class: "track" },
      el("div", { class: "bar " + s.state, "data-step": id, "data-start": s.start, "data-end": end,
        title: id + ": " + s.state + " " + seconds + (s.agent ? " on " + s.agent : ""),
        style: { left: pct(s.start), width: (100 * (end - s.start) / span).toFixed(3) + "%" } }),
      ...s.marks.map((m) => el("div", { class: "mark " + m.event, "data-event": m.event, style: { left: pct(m.ts) }, title: line(m) })));
    return el("div", { class: "lane" }, el("span", { class: "label", title: id }, id + " " + seconds), track);
  }));
}

function drawAnswer(into, answer) {
  if (!answer) { into.replaceChildren(el("p", { class: "muted" }, "no answer yet")); return; }
  const sources = (answer.sources || []).map((s) =>
    el("li", {}, "[" + (s.marker ?? "") + "] " + (s.title || s.docId || s.url || JSON.stringify(s)) + (s.quote ? " — “" + s.quote + "”" : "")));
  into.replaceChildren(...[el("div", { class: "answer", "data-testid": "answer-text" }, answer.text),
    sources.length ? el("div", {}, el("h3", {}, "Sources"), el("ol", { "data-testid": "sources" }, sources)) : null,
    spendLine((answer.data || {}).usage)].filter(Boolean));
}

// What the task's model calls spent, and who spent it: "Spend $0.0202 · 4,935 tokens (planner $0.0010, …)".
function spendLine(usage) {
  if (!usage) return null;
  const by = Object.entries(usage.by || {}).map(([who, u]) => who + " $" + Number(u.spendUsd || 0).toFixed(4));
  return el("p", { class: "muted", "data-testid": "spend" }, "Spend $" + Number(usage.spendUsd || 0).toFixed(4) +
    " · " + Number(usage.tokens).toLocaleString("en") + " tokens" + (by.length ? " (" + by.join(", ") + ")" : " (no model calls)"));
}

function taskView(signal, taskId) {
  const box = el("div");
  main.replaceChildren(el("p", {}, el("a", { href: "#/tasks" }, "← tasks")), box);
  taskPanel(taskId, box, signal);
}

function dlqView(signal) {
  const list = el("div", { "data-testid": "dlq" });
  main.replaceChildren(...[el("h2", {}, "Dead letters"),
    info.writable ? null : el("p", { class: "notice" }, "Read only: start the console with a token to replay."),
    list].filter(Boolean));
  let shown = "";
  const load = async (counts) => {
    const key = JSON.stringify(counts);
    if (key === shown) return;
    shown = key;
    const agents = Object.keys(counts).filter((a) => counts[a] > 0);
    if (!agents.length) { list.replaceChildren(el("p", { class: "muted", "data-testid": "dlq-empty" }, "no dead letters")); return; }
    const sections = [];
    for (const agent of agents) {
      const found = await api("/api/dlq/" + encodeURIComponent(agent));
      const result = el("span", { class: "muted" });
      sections.push(el("section", { "data-dlq-agent": agent },
        el("h3", {}, agent + " (" + found.deadLetters.length + ")"),
        el("table", {}, el("thead", {}, el("tr", {}, ["Entry", "When", "Method", "Error", "Attempts", "Consumer", ""].map((h) => el("th", {}, h)))),
          el("tbody", {}, found.deadLetters.map((d) => el("tr", { "data-letter": d.id },
            el("td", {}, el("code", {}, d.id)), el("td", {}, when(d.time)), el("td", {}, d.method || "(malformed)"),
            el("td", { "data-field": "error" }, d.error), el("td", {}, String(d.attempts)), el("td", {}, d.consumer),
            el("td", {}, el("button", {
              disabled: !info.writable || !d.replayable,
              onclick: async (ev) => {
                ev.target.disabled = true;
                try {
                  const r = await api("/api/dlq/" + encodeURIComponent(agent) + "/replay", {
                    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ids: [d.id] }) });
                  result.textContent = "replayed " + r.replayed;
                } catch (err) { result.textContent = String(err.message || err); ev.target.disabled = false; }
              },
            }, "Replay")))))),
        result));
    }
    list.replaceChildren(...sections);
  };
  subscribe("/api/events/agents", { agents: (d) => { load(d.deadLetters || {}).catch(() => {}); } }, signal);
}

function askView(signal) {
  const input = el("textarea", { "data-testid": "question", placeholder: "Ask the orchestrator…" });
  const result = el("div");
  const button = el("button", { type: "submit", "data-testid": "ask", disabled: !info.writable }, "Ask");
  let inner = null;
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      result.replaceChildren(el("p", { class: "muted" }, "sending…"));
      try {
        const r = await api("/api/ask", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: input.value }) });
        if (inner) inner.abort();
        inner = new AbortController();
        signal.addEventListener("abort", () => inner.abort());
        taskPanel(r.taskId, result, inner.signal);
      } catch (err) {
        result.replaceChildren(el("p", { class: "error" }, String(err.message || err)));
      } finally {
        button.disabled = !info.writable;
      }
    },
  }, input, el("p", {}, button));
  main.replaceChildren(...[el("h2", {}, "Ask"),
    info.writable ? null : el("p", { class: "notice" }, "Read only: start the console with a token to ask."),
    form, result].filter(Boolean));
}

// -- routing ----------------------------------------------------------------------------------------
function route() {
  if (view) view.abort();
  view = new AbortController();
  const hash = location.hash || "#/agents";
  const [, name, arg] = hash.split("/");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === name || (name === "task" && a.dataset.view === "tasks"));
  if (name === "tasks") tasksView(view.signal);
  else if (name === "task" && arg) taskView(view.signal, decodeURIComponent(arg));
  else if (name === "dlq") dlqView(view.signal);
  else if (name === "ask") askView(view.signal);
  else agentsView(view.signal);
}

async function start() {
  try {
    info = await api("/api/info");
  } catch (err) {
    if (!(err instanceof Refused)) setStatus(String(err.message || err), true);
    return;
  }
  document.title = "Podium console · " + info.namespace;
  if (!started) window.addEventListener("hashchange", route);
  started = true;
  route();
}

start();
