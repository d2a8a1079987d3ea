/* ANSI SGR colours → CSS class names. Log lines are hostile input: this returns plain text
   segments plus class names from a fixed list, and the caller sets them with textContent /
   className, never innerHTML. Every other escape sequence (cursor moves, OSC hyperlinks,
   titles) is dropped. */
(function (global) {
  "use strict";

  // CSI … final byte, OSC … BEL/ST, and lone two-byte escapes.
  var ESCAPE = /\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;
  var CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

  function colourClass(prefix, n) {
    return prefix + "-" + n; // n is always an integer 0..15 here
  }

  function apply(state, codes) {
    if (codes.length === 0) codes = [0];
    for (var i = 0; i < codes.length; i++) {
      var c = codes[i];
      if (c === 0) { state.fg = null; state.bg = null; state.bold = state.dim = state.italic = state.underline = false; }
      else if (c === 1) state.bold = true;
      else if (c === 2) state.dim = true;
      else if (c === 3) state.italic = true;
      else if (c === 4) state.underline = true;
      else if (c === 22) state.bold = state.dim = false;
      else if (c === 23) state.italic = false;
      else if (c === 24) state.underline = false;
      else if (c >= 30 && c <= 37) state.fg = c - 30;
      else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
      else if (c === 39) state.fg = null;
      else if (c >= 40 && c <= 47) state.bg = c - 40;
      else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
      else if (c === 49) state.bg = null;
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        var n = codes[i + 2];
        if (n >= 0 && n < 16) { if (c === 38) state.fg = n; else state.bg = n; }
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        i += 4; // 24-bit colours: not mapped (no inline styles from log data)
      }
    }
  }

  function classesOf(state) {
    var out = [];
    if (state.fg !== null) out.push(colourClass("ansi-fg", state.fg));
    if (state.bg !== null) out.push(colourClass("ansi-bg", state.bg));
    if (state.bold) out.push("ansi-bold");
    if (state.dim) out.push("ansi-dim");
    if (state.italic) out.push("ansi-italic");
    if (state.underline) out.push("ansi-underline");
    return out.join(" ");
  }

  /* "\x1b[31mred\x1b[0m plain" → [{text: "red", cls: "ansi-fg-1"}, {text: " plain", cls: ""}] */
  function parse(text) {
    var state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
    var segments = [];
    var last = 0;
    var m;
    ESCAPE.lastIndex = 0;
    function push(chunk) {
      chunk = chunk.replace(CONTROL, "");
      if (chunk) segments.push({ text: chunk, cls: classesOf(state) });
    }
    while ((m = ESCAPE.exec(text)) !== null) {
      push(text.slice(last, m.index));
      last = ESCAPE.lastIndex;
      if (m[2] === "m") {
        var codes = (m[1] || "").split(/[;:]/).filter(function (s) { return s !== ""; })
          .map(function (s) { return parseInt(s, 10); })
          .filter(function (n) { return n >= 0 && n < 256; });
        apply(state, codes);
      }
    }
    push(text.slice(last));
    return segments;
  }

  global.LogsiteAnsi = { parse: parse };
})(window);
