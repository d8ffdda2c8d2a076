// The mock's dashboard: it reads and steers the control plane's own JSON operations, nothing
// else, so it can never disagree with them. Everything shown is set with textContent: journal
// paths come from whoever sent the request.
"use strict";

(() => {
  const POLL_MS = 1000;
  const WHY = {
    state: "the state decided",
    armed: "an armed scenario",
    prefer: "the request's Prefer header",
    magic: "a magic agent number",
    auth: "the api-key check",
    "content-type": "the Content-Type check",
    routing: "no operation takes this path or method",
    fault: "an armed fault",
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function row(cells, className) {
    const tr = el("tr", null, className);
    for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
    return tr;
  }

  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren(...(rows.length ? rows : [row([emptyCell(columns, emptyText)])]));
  }

  function emptyCell(columns, text) {
    const td = el("td", text, "empty");
    td.colSpan = columns;
    return td;
  }

  async function api(method, path, body) {
    const init = { method, headers: {}, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch("/__mock/" + path, init);
    const doc = await response.json();
    if (!response.ok) {
      const error = doc && doc.data && doc.data.error;
      throw new Error(method + " /__mock/" + path + ": " + response.status + " " + (error ? error.error_message : ""));
    }
    return doc;
  }

  function say(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function matchText(match) {
    const parts = Object.entries(match || {}).map(([k, v]) => k + "=" + v);
    return parts.length ? parts.join(" ") : "every request";
  }

  function disarmButton(kind, id) {
    const button = el("button", "Disarm");
    button.type = "button";
    button.dataset.disarm = kind + "/" + id;
    button.addEventListener("click", () => act(() => api("DELETE", kind + "/" + id)));
    return el("td").appendChild(button).parentNode;
  }

  function renderArmed(scenarios, faults) {
    fill($("scenarios").tBodies[0], scenarios.map((a) => row([
      a.id, a.scenario, a.remaining === null ? "until disarmed" : a.remaining, matchText(a.match),
      disarmButton("scenarios", a.id),
    ])), 5, "none armed");
    fill($("faults").tBodies[0], faults.map((a) => row([
      a.id, a.fault, a.remaining === null ? "until disarmed" : a.remaining, matchText(a.match),
      JSON.stringify(a.params || {}), disarmButton("faults", a.id),
    ])), 6, "none armed");
  }

  function agentsTable(agents) {
    const table = el("table");
    const names = Object.keys(agents || {});
    const rows = names.map((agent) => row([agent, agents[agent].length + " tester(s)",
      agents[agent].map((t) => t.phoneno + " " + t.status).join(", ")]));
    table.append(el("tbody"));
    fill(table.tBodies[0], rows, 3, "no agents");
    return table;
  }

  function renderState(state) {
    const out = [];
    const dflt = state.default_account;
    out.push(el("h3", "every unlisted SID, both pods" + (dflt ? (dflt.rcs_enabled ? "" : " (RCS off)") : ": unknown (401)")));
    if (dflt) out.push(agentsTable(dflt.agents));
    for (const account of state.accounts || []) {
      out.push(el("h3", "pod " + account.pod + ", SID " + account.sid + (account.rcs_enabled === false ? " (RCS off)" : "")));
      out.push(agentsTable(account.agents));
    }
    const deleted = state.deleted_default_agents || [];
    if (deleted.length) {
      out.push(el("h3", "deleted from the unlisted SIDs' agents"));
      const table = el("table", null, "deleted");
      table.append(el("tbody"));
      fill(table.tBodies[0], deleted.map((d) => row(["pod " + d.pod, "SID " + d.sid, "agent " + d.agent_number])), 3, "");
      out.push(table);
    }
    $("state").replaceChildren(...out);
  }

  function renderJournal(entries) {
    fill($("journal").tBodies[0], entries.map((e) => {
      const why = el("td", (e.source || "?") + (e.example ? " → " + e.example : ""));
      why.title = "X-Mock-Source: " + e.source + " (" + (WHY[e.source] || e.source) + ")" +
        (e.example ? "; X-Mock-Example: " + e.example : "");
      const tr = row([
        (e.time || "").replace("T", " ").replace("Z", ""), e.pod,
        el("td", e.method + " " + e.path, "path"), e.operation || "—",
        el("td", e.status, "code"), why,
      ], "s" + String(e.status).charAt(0));
      tr.dataset.status = e.status;
      tr.dataset.id = e.id;
      return tr;
    }), 6, "no requests yet (or none that match)");
  }

  function journalQuery() {
    const query = new URLSearchParams({ limit: "200" });
    for (const [name, id] of [["pod", "filter-pod"], ["operation", "filter-operation"], ["status", "filter-status"]]) {
      const value = $(id).value.trim();
      if (value) query.set(name, value);
    }
    return "journal?" + query.toString();
  }

  let timer = null;
  let latest = 0;

  async function refresh() {
    clearTimeout(timer);
    const mine = ++latest; // a filter change starts a refresh: an older one in flight must not paint over it
    try {
      const [journal, state, scenarios, faults] = await Promise.all([
        api("GET", journalQuery()), api("GET", "state"), api("GET", "scenarios"), api("GET", "faults"),
      ]);
      if (mine !== latest) return;
      renderJournal(journal);
      renderState(state);
      renderArmed(scenarios, faults);
      say("live, " + journal.length + " journal entr" + (journal.length === 1 ? "y" : "ies") + " shown; " +
        new Date().toLocaleTimeString());
    } catch (error) {
      if (mine === latest) say(error.message, true);
    } finally {
      if (mine === latest) timer = setTimeout(refresh, POLL_MS);
    }
  }

  async function act(write) {
    try {
      await write();
    } catch (error) {
      say(error.message, true);
      return;
    }
    await refresh();
  }

  async function loadExamples() {
    const examples = await api("GET", "examples");
    const operations = new Set();
    $("scenario").replaceChildren(...examples.map((x) => {
      x.operations.forEach((op) => operations.add(op));
      const option = el("option", x.name + " (" + x.status + ")");
      option.value = x.name;
      return option;
    }));
    for (const op of [...operations].sort()) {
      const option = el("option", op);
      option.value = op;
      $("filter-operation").append(option);
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("arm-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const doc = { scenario: $("scenario").value, times: Number($("times").value) || 1 };
      if ($("arm-pod").value) doc.match = { pod: $("arm-pod").value };
      act(() => api("POST", "scenarios", doc));
    });
    $("disarm-scenarios").addEventListener("click", () => act(() => api("DELETE", "scenarios")));
    $("disarm-faults").addEventListener("click", () => act(() => api("DELETE", "faults")));
    $("reset").addEventListener("click", () => act(() => api("POST", "reset")));
    for (const id of ["filter-pod", "filter-operation", "filter-status"]) $(id).addEventListener("input", refresh);
    try {
      await loadExamples();
    } catch (error) {
      say(error.message, true);
    }
    refresh();
  });
})();
