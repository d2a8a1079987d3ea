// Search page: every log text goes into the DOM through textContent, never innerHTML.
(function () {
  "use strict";
  const query = document.getElementById("q").value;
  const hasError = !!document.getElementById("query-error");
  const tbody = document.querySelector("#results tbody");
  const status = document.getElementById("status");
  const more = document.getElementById("more");
  const LEVELS = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"];
  let next = null;

  function api(path, params) {
    const url = new URL(path, window.location.origin);
    Object.entries(params).forEach(([k, v]) => { if (v !== null && v !== undefined) url.searchParams.set(k, v); });
    return fetch(url, { credentials: "same-origin" }).then(async (r) => {
      const body = await r.json();
      if (!r.ok) throw new Error(body.message ? `${body.message} (position ${body.position})` : body.error);
      return body;
    });
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function lineRow(line, extraClass) {
    const tr = document.createElement("tr");
    tr.className = `line ${line.stream}` + (extraClass ? ` ${extraClass}` : "");
    const when = new Date(line.ts);
    tr.appendChild(cell(when.toLocaleString(undefined, { hour12: false }) + "." + String(when.getMilliseconds()).padStart(3, "0"), "ts"));
    tr.appendChild(cell(line.container.name || (line.container.container_id || "").slice(0, 12), "container"));
    tr.appendChild(cell(line.stream, "stream"));
    tr.appendChild(cell(line.level === null ? "" : LEVELS[line.level], `level l${line.level}`));
    const text = cell(line.line, "text");
    if (line.attrs) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "fields";
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(line.attrs, null, 2);
      details.append(summary, pre);
      text.appendChild(details);
    }
    tr.appendChild(text);
    tr.addEventListener("click", (ev) => { if (!ev.target.closest("details")) showContext(tr, line); });
    return tr;
  }

  function showContext(tr, line) {
    if (tr.nextSibling && tr.nextSibling.classList && tr.nextSibling.classList.contains("context")) {
      tr.nextSibling.remove();
      return;
    }
    api("/api/v1/context", { ckey: line.ckey, id: line.id, before: 10, after: 10 }).then((ctx) => {
      const holder = document.createElement("tr");
      holder.className = "context";
      const td = document.createElement("td");
      td.colSpan = 5;
      const table = document.createElement("table");
      ctx.before.forEach((l) => table.appendChild(lineRow(l)));
      table.appendChild(lineRow(ctx.line, "anchor"));
      ctx.after.forEach((l) => table.appendChild(lineRow(l)));
      td.appendChild(table);
      holder.appendChild(td);
      tr.after(holder);
    }).catch((e) => { status.textContent = e.message; });
  }

  function loadPage() {
    status.textContent = "Searching…";
    api("/api/v1/search", { q: query, before: next, limit: 200 }).then((page) => {
      page.lines.forEach((l) => tbody.appendChild(lineRow(l)));
      next = page.next;
      more.hidden = !next;
      status.textContent = `${tbody.querySelectorAll("tr.line").length} lines` + (next ? " (more available)" : "");
    }).catch((e) => { status.textContent = e.message; });
  }

  function drawHistogram() {
    const holder = document.getElementById("histogram");
    const bucket = document.getElementById("bucket").value;
    api("/api/v1/histogram", { q: query, bucket }).then((h) => {
      holder.replaceChildren();
      if (!h.buckets.length || typeof uPlot === "undefined") return;
      const xs = h.buckets.map((b) => Date.parse(b.start) / 1000);
      const ys = h.buckets.map((b) => b.count);
      const opts = {
        width: Math.max(holder.clientWidth, 300), height: 120,
        series: [{}, { label: "lines", stroke: "#88c0d0", fill: "rgba(136,192,208,0.3)", paths: uPlot.paths.bars({ size: [0.9] }) }],
        axes: [{ stroke: "#8b93a5" }, { stroke: "#8b93a5" }],
        legend: { show: false },
      };
      new uPlot(opts, [xs, ys], holder);
    }).catch((e) => { status.textContent = e.message; });
  }

  function exportLink(id, format) {
    const a = document.getElementById(id);
    a.href = `/api/v1/export?format=${format}&q=${encodeURIComponent(query)}`;
  }

  document.getElementById("save").addEventListener("click", () => {
    const name = window.prompt("Name this search");
    if (!name) return;
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    fetch("/api/v1/saved-searches", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.split("=")[1] : "" },
      body: JSON.stringify({ name, query }),
    }).then((r) => { status.textContent = r.ok ? `Saved as ${name}` : "Could not save"; });
  });
  document.getElementById("bucket").addEventListener("change", drawHistogram);
  more.addEventListener("click", loadPage);
  exportLink("export-ndjson", "ndjson");
  exportLink("export-csv", "csv");
  if (!hasError) { loadPage(); drawHistogram(); }
})();
