/* The live-tail page. Protocol: search/consumers.py and docs/live-tail.md.

   Every log line, container name and label is untrusted: the DOM is built with
   createElement + textContent only (never innerHTML), and ANSI colours become class names
   from a fixed list (ansi.js). Updates are batched per animation frame, the DOM holds at most
   `cap` lines, and whatever is dropped is announced by an explicit "N lines skipped" row. */
(function () {
  "use strict";

  var root = document.getElementById("tail");
  if (!root) return;
  var CAP = parseInt(root.dataset.cap, 10) || 5000;
  var RECENT = parseInt(root.dataset.recent, 10) || 200;
  var LEVELS = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"];

  var log = document.getElementById("tail-log");
  var form = document.getElementById("tail-form");
  var queryBox = document.getElementById("tail-query");
  var picker = document.getElementById("tail-picker");
  var pauseButton = document.getElementById("tail-pause");
  var earlierButton = document.getElementById("tail-earlier");
  var wrapBox = document.getElementById("tail-wrap");
  var statusBox = document.getElementById("tail-status");
  var errorBox = document.getElementById("tail-error");

  var state = {
    socket: null,
    query: "",
    containers: {},      // ckey → {name, service, tenant, ...}
    lastIds: {},         // ckey → newest id held: the resume point after a reconnect
    pending: [],         // lines waiting for the next animation frame
    skipped: 0,          // lines dropped since the last marker
    skipReason: "",
    paused: false,
    frame: 0,
    highlight: [],
    live: false,
    retry: 0,
    generation: 0,
    loadingEarlier: false,
  };

  var timeFormat = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  var dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "long" });
  var lastSecond = NaN, lastSecondText = "";

  // Intl formatting is the costliest step per line at 10k lines/s: format each second once.
  function clock(tsUs) {
    var ms = Math.floor(tsUs / 1000);
    var second = Math.floor(ms / 1000);
    if (second !== lastSecond) { lastSecond = second; lastSecondText = timeFormat.format(new Date(second * 1000)); }
    return lastSecondText + "." + String(ms % 1000).padStart(3, "0");
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setStatus(text) { statusBox.textContent = text; }

  function showError(message, position) {
    errorBox.hidden = false;
    errorBox.textContent = position === undefined ? message : message + " (at character " + (position + 1) + ")";
  }

  // --- rendering ----------------------------------------------------------------------------
  function appendHighlighted(parent, text, cls) {
    var terms = state.highlight;
    if (!terms.length) { parent.appendChild(el("span", cls, text)); return; }
    var lower = text.toLowerCase();
    var pos = 0;
    while (pos < text.length) {
      var best = -1, bestLen = 0;
      for (var i = 0; i < terms.length; i++) {
        var at = lower.indexOf(terms[i], pos);
        if (at !== -1 && (best === -1 || at < best)) { best = at; bestLen = terms[i].length; }
      }
      if (best === -1) break;
      if (best > pos) parent.appendChild(el("span", cls, text.slice(pos, best)));
      var mark = el("mark", "hit", text.slice(best, best + bestLen));
      if (cls) mark.className += " " + cls;
      parent.appendChild(mark);
      pos = best + bestLen;
    }
    if (pos < text.length) parent.appendChild(el("span", cls, text.slice(pos)));
  }

  var attrsOf = new WeakMap(); // row → its structured fields; a row that leaves the DOM takes them along

  function jsonOf(text, attrs) {
    var trimmed = text.trim();
    if (trimmed.charAt(0) === "{") {
      try {
        var parsed = JSON.parse(trimmed);
        if (parsed && typeof parsed === "object") return parsed;
      } catch (e) { /* not JSON: shown as text */ }
    }
    return attrs && typeof attrs === "object" && Object.keys(attrs).length ? attrs : null;
  }

  function renderLine(line) {
    // [ckey, id, ts_us, stream, level, flags, text, attrs]
    var ckey = line[0], tsUs = line[2], stream = line[3], level = line[4], text = line[6];
    var container = state.containers[ckey] || {};
    var row = el("div", "line " + (stream === "stderr" ? "stderr" : "stdout"));
    row.dataset.ckey = String(ckey);
    row.dataset.id = String(line[1]);
    row.dataset.ts = String(tsUs);
    if (typeof level === "number" && level >= 0 && level <= 7) row.classList.add("lvl-" + LEVELS[level]);
    row.appendChild(el("time", "ts", clock(tsUs)));
    var who = el("span", "ctr", container.name || container.container_id || "?");
    who.title = (container.tenant || "") + " · " + (container.service || "") + " · " + (container.image || "");
    row.appendChild(who);
    row.appendChild(el("span", "stream", stream === "stderr" ? "ERR" : "OUT"));
    row.appendChild(el("span", "lvl", typeof level === "number" ? LEVELS[level] || "" : ""));
    var msg = el("span", "msg");
    var segments = window.LogsiteAnsi.parse(text);
    for (var i = 0; i < segments.length; i++) appendHighlighted(msg, segments[i].text, segments[i].cls);
    if (jsonOf(text, line[7])) {
      // One listener on the log opens it (below); a row keeps no closure and no parsed copy.
      var toggle = el("button", "json-toggle", "{…}");
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", "false");
      if (line[7]) attrsOf.set(row, line[7]);
      row.appendChild(toggle);
    }
    row.appendChild(msg);
    return row;
  }

  function skipMarker(count, reason) {
    return el("div", "skipped", count + " lines skipped — " + reason);
  }

  // Rows live in blocks of CHUNK inside the log, never directly in it: appending a line or
  // dropping the oldest then touches one block, and the browser skips layout and paint of every
  // block off screen (content-visibility), instead of walking 5,000 rows on every frame.
  var CHUNK = 100;
  var rows = 0; // lines and skip markers in the DOM

  function appendRows(nodes) {
    var chunk = log.lastElementChild, i = 0;
    while (i < nodes.length) {
      if (!chunk || chunk.childElementCount >= CHUNK) {
        chunk = el("div", "chunk");
        log.appendChild(chunk);
      }
      var fragment = document.createDocumentFragment();
      var room = CHUNK - chunk.childElementCount;
      for (var end = Math.min(nodes.length, i + room); i < end; i++) fragment.appendChild(nodes[i]);
      chunk.appendChild(fragment);
    }
    rows += nodes.length;
  }

  function prependRows(nodes) {
    for (var start = nodes.length; start > 0; start -= CHUNK) {
      var chunk = el("div", "chunk");
      for (var i = Math.max(0, start - CHUNK); i < start; i++) chunk.appendChild(nodes[i]);
      log.insertBefore(chunk, log.firstChild);
    }
    rows += nodes.length;
  }

  // Whole blocks go: the DOM keeps between CAP - CHUNK and CAP rows.
  function trimTop() {
    while (rows > CAP && log.firstElementChild) {
      rows -= log.firstElementChild.childElementCount;
      log.removeChild(log.firstElementChild);
    }
  }

  function clearRows() {
    log.textContent = "";
    rows = 0;
  }

  function flush() {
    state.frame = 0;
    if (state.paused) {
      // Keep at most CAP lines waiting; older waiting lines are the ones given up.
      var over = state.pending.length - CAP;
      if (over > 0) { state.pending.splice(0, over); state.skipped += over; state.skipReason = "paused"; }
      setStatus("paused · " + state.pending.length + " waiting" + (state.skipped ? " · " + state.skipped + " skipped" : ""));
      return;
    }
    var batch = state.pending;
    state.pending = [];
    if (batch.length > CAP) {
      state.skipped += batch.length - CAP;
      state.skipReason = state.skipReason || "overloaded";
      batch = batch.slice(batch.length - CAP);
    }
    if (!batch.length && !state.skipped) return;
    var nodes = [];
    if (state.skipped) {
      nodes.push(skipMarker(state.skipped, state.skipReason));
      state.skipped = 0;
      state.skipReason = "";
    }
    for (var i = 0; i < batch.length; i++) nodes.push(renderLine(batch[i]));
    appendRows(nodes);
    trimTop();
    log.scrollTop = log.scrollHeight;
    if (typeof window.logsiteTailOnRender === "function") window.logsiteTailOnRender(batch);
    if (state.live) setStatus("live · " + state.query);
  }

  // At most one DOM update per animation frame: a flood is drawn in fewer, larger batches,
  // because a slow frame delays the next one.
  function schedule() {
    if (state.frame) return;
    state.frame = requestAnimationFrame(flush);
  }

  function receiveLines(message) {
    var described = message.containers || {};
    for (var key in described) if (Object.prototype.hasOwnProperty.call(described, key)) state.containers[key] = described[key];
    var lines = message.lines || [];
    for (var i = 0; i < lines.length; i++) {
      var ckey = lines[i][0], id = lines[i][1];
      if (!(state.lastIds[ckey] >= id)) state.lastIds[ckey] = id;
      state.pending.push(lines[i]);
    }
    // Frames stop in a hidden tab: never hold more than CAP lines waiting, say what was dropped.
    var over = state.pending.length - CAP;
    if (over > 0) {
      state.pending.splice(0, over);
      state.skipped += over;
      state.skipReason = state.skipReason || (state.paused ? "paused" : "overloaded");
    }
    schedule();
  }

  function receiveEarlier(message) {
    state.loadingEarlier = false;
    var described = message.containers || {};
    for (var key in described) if (Object.prototype.hasOwnProperty.call(described, key)) state.containers[key] = described[key];
    var nodes = [];
    var lines = message.lines || [];
    for (var i = lines.length - 1; i >= 0; i--) nodes.push(renderLine(lines[i]));
    var before = log.scrollHeight;
    prependRows(nodes);
    log.scrollTop += log.scrollHeight - before;
    earlierButton.disabled = !message.more;
    if (!message.more) earlierButton.textContent = "No earlier lines";
  }

  // --- socket -------------------------------------------------------------------------------
  function connect(resume) {
    var generation = ++state.generation;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/tail/");
    state.socket = socket;
    state.live = false;
    setStatus(resume ? "reconnecting…" : "connecting…");
    socket.addEventListener("open", function () {
      var request = { type: "subscribe", query: state.query };
      if (resume && Object.keys(state.lastIds).length) request.resume = state.lastIds;
      else request.recent = RECENT;
      socket.send(JSON.stringify(request));
    });
    socket.addEventListener("message", function (event) {
      if (generation !== state.generation) return;
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (typeof window.logsiteTailOnMessage === "function") window.logsiteTailOnMessage(message);
      if (message.type === "lines") receiveLines(message);
      else if (message.type === "earlier") receiveEarlier(message);
      else if (message.type === "live") {
        state.live = true;
        state.retry = 0;
        state.highlight = (message.highlight || []).map(function (t) { return String(t).toLowerCase(); })
          .filter(function (t) { return t.length > 0; });
        setStatus(state.paused ? "paused" : "live · " + state.query);
        errorBox.hidden = true;
      } else if (message.type === "error") {
        showError(message.message, message.position);
        state.loadingEarlier = false;
      }
    });
    socket.addEventListener("close", function (event) {
      if (generation !== state.generation) return;
      state.live = false;
      if (event.code === 4401) { setStatus("not logged in"); return; }
      state.retry = Math.min(state.retry + 1, 5);
      setStatus("disconnected · retrying");
      setTimeout(function () { if (generation === state.generation) connect(true); }, 500 * state.retry);
    });
  }

  function start() {
    var parts = [picker.value, queryBox.value.trim()].filter(function (s) { return s; });
    state.query = parts.join(" ");
    state.containers = {};
    state.lastIds = {};
    state.pending = [];
    state.skipped = 0;
    errorBox.hidden = true;
    earlierButton.disabled = false;
    earlierButton.textContent = "Load earlier";
    clearRows();
    if (state.socket) state.socket.close();
    connect(false);
  }

  function setPaused(paused) {
    state.paused = paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    if (!paused) schedule();
    else setStatus("paused");
  }

  // The full date (in the viewer's zone) only when someone points at a time.
  log.addEventListener("mouseover", function (event) {
    var ts = event.target.closest && event.target.closest("time.ts");
    if (ts && !ts.title) ts.title = dateFormat.format(new Date(parseInt(ts.parentNode.dataset.ts, 10) / 1000));
  });

  log.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("button.json-toggle");
    if (!toggle) return;
    var row = toggle.parentNode;
    var open = row.querySelector("pre.json");
    if (open) { open.remove(); toggle.setAttribute("aria-expanded", "false"); return; }
    var doc = jsonOf(row.querySelector(".msg").textContent, attrsOf.get(row));
    row.appendChild(el("pre", "json", JSON.stringify(doc, null, 2)));
    toggle.setAttribute("aria-expanded", "true");
  });

  form.addEventListener("submit", function (event) { event.preventDefault(); start(); });
  picker.addEventListener("change", start);
  pauseButton.addEventListener("click", function () { setPaused(!state.paused); });
  wrapBox.addEventListener("change", function () { log.classList.toggle("nowrap", !wrapBox.checked); });
  earlierButton.addEventListener("click", function () {
    var first = log.querySelector(".line");
    if (!first || state.loadingEarlier || !state.socket || state.socket.readyState !== WebSocket.OPEN) return;
    state.loadingEarlier = true;
    if (!state.paused) setPaused(true); // reading history: stop the live view from scrolling away
    state.socket.send(JSON.stringify({
      type: "earlier", limit: 200,
      before: { ts_us: parseInt(first.dataset.ts, 10), id: parseInt(first.dataset.id, 10) },
    }));
  });

  start();
})();
