/* LogHarbor UI helpers: local dates, CSRF header for htmx, copy buttons, JSON trees, date ranges. */
(function () {
  "use strict";

  var dateFmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  var timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  // Dates arrive as ISO UTC in <time datetime>; show them in the viewer's time zone.
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      var today = new Date();
      var sameDay = d.toDateString() === today.toDateString();
      el.textContent = el.dataset.format === "short" && sameDay ? timeFmt.format(d) : dateFmt.format(d);
      el.title = el.getAttribute("datetime");
      el.setAttribute("data-local", "1");
    });
  }

  function copyText(text, button) {
    function done() {
      var old = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = old; button.classList.remove("copied"); }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays visible to copy by hand */ }
    document.body.removeChild(area);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function scalar(value) {
    if (value === null) return el("span", "z", "null");
    if (typeof value === "string") return el("span", "s", JSON.stringify(value));
    if (typeof value === "number") return el("span", "n", String(value));
    if (typeof value === "boolean") return el("span", "b", String(value));
    return el("span", "", String(value));
  }

  // Objects and arrays become <details>, so big payloads can be folded; deep levels start closed.
  function tree(value, key, depth) {
    var isArr = Array.isArray(value);
    if (value === null || typeof value !== "object") {
      var line = el("div", "line");
      if (key !== null) { line.appendChild(el("span", "k", JSON.stringify(key))); line.appendChild(document.createTextNode(": ")); }
      line.appendChild(scalar(value));
      return line;
    }
    var keys = isArr ? value.map(function (_, i) { return i; }) : Object.keys(value);
    var details = el("details");
    if (depth < 2) details.open = true;
    var summary = el("summary");
    if (key !== null) { summary.appendChild(el("span", "k", JSON.stringify(key))); summary.appendChild(document.createTextNode(": ")); }
    summary.appendChild(document.createTextNode(isArr ? "[" : "{"));
    var noun = isArr ? (keys.length === 1 ? " item " : " items ") : (keys.length === 1 ? " key " : " keys ");
    summary.appendChild(el("span", "count", " " + keys.length + noun));
    summary.appendChild(document.createTextNode(isArr ? "]" : "}"));
    details.appendChild(summary);
    keys.forEach(function (k) { details.appendChild(tree(value[k], isArr ? null : k, depth + 1)); });
    return details;
  }

  function renderJsonTrees(root) {
    root.querySelectorAll("[data-json]:not([data-rendered])").forEach(function (node) {
      node.setAttribute("data-rendered", "1");
      var value;
      try { value = JSON.parse(node.textContent); } catch (e) { return; }
      if (value === null || typeof value !== "object") return;
      var box = el("div", "json-tree");
      box.appendChild(tree(value, null, 0));
      node.replaceWith(box);
    });
  }

  // Custom time ranges are typed in local time; the server wants UTC instants.
  function wireRanges(root) {
    root.querySelectorAll("form[data-range-form]:not([data-wired])").forEach(function (form) {
      form.setAttribute("data-wired", "1");
      var select = form.querySelector("select[name=range]");
      var custom = form.querySelector(".custom-range");
      function sync() { if (custom && select) custom.hidden = select.value !== "custom"; }
      if (select) select.addEventListener("change", sync);
      sync();
      form.querySelectorAll("input[type=datetime-local][data-target]").forEach(function (input) {
        var hidden = form.querySelector("input[name=" + input.dataset.target + "]");
        if (hidden && hidden.value) {
          var d = new Date(hidden.value);
          if (!isNaN(d)) {
            var local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
            input.value = local.toISOString().slice(0, 16);
          }
        }
        function update() {
          if (!hidden) return;
          hidden.value = input.value ? new Date(input.value).toISOString() : "";
        }
        input.addEventListener("change", update);
        input.addEventListener("input", update);
      });
    });
  }

  function enhance(root) {
    localizeTimes(root);
    renderJsonTrees(root);
    wireRanges(root);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var target = document.getElementById(button.dataset.copy);
      if (target) copyText(target.value !== undefined && target.tagName === "TEXTAREA" ? target.value : target.textContent, button);
      return;
    }
    var row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a, button")) {
      window.location.href = row.dataset.href;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    var meta = document.querySelector("meta[name=csrf-token]");
    document.body.addEventListener("htmx:configRequest", function (event) {
      if (meta && meta.content) event.detail.headers["X-CSRF-Token"] = meta.content;
    });
    document.body.addEventListener("htmx:afterSwap", function (event) { enhance(event.target); });
  });

  window.LogHarbor = { enhance: enhance, localizeTimes: localizeTimes };
})();
