/* Charts of a traffic source, drawn with uPlot from the JSON embedded in the page. */
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || !window.uPlot) return;
  var data = JSON.parse(node.textContent);
  var charts = [];

  function width(el) { return Math.max(260, el.clientWidth); }

  function make(id, times, series, opts) {
    // uPlot reads its own keys on each series; our data arrays travel beside them.
    var arrays = series.map(function (s) { var d = s.data; delete s.data; return d; });
    var el = document.getElementById(id);
    if (!el) return;
    var cfg = {
      width: width(el),
      height: 220,
      // Times are UTC epoch seconds; uPlot shows them in the browser's time zone.
      series: [{}].concat(series),
      axes: [{}, { size: 70, values: opts.values }],
      scales: { y: { range: function (u, min, max) { return [0, Math.max(max || 0, opts.minMax || 1) * 1.1]; } } },
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    var chart = new uPlot(cfg, [times].concat(arrays), el);
    el.setAttribute("data-ready", "1");
    charts.push([chart, el]);
  }

  function line(label, values, stroke, fill) {
    return { label: label, data: values, stroke: stroke, fill: fill, width: 2, spanGaps: false,
             points: { show: values.filter(function (v) { return v != null; }).length < 30 } };
  }
  function fmt(suffix, digits) {
    return function (u, ticks) { return ticks.map(function (v) { return v == null ? "" : v.toFixed(digits) + suffix; }); };
  }

  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined;
  var rpm = line("req/min", data.rpm, "#2457d6", "rgba(36,87,214,.25)");
  if (bars) { rpm.paths = bars; rpm.points = { show: false }; }
  make("chart-rpm", data.t, [rpm], { values: fmt("", 1) });
  make("chart-errors", data.t, [line("error %", data.errorRate, "#c0262d", "rgba(192,38,45,.12)")],
       { values: fmt("%", 0), minMax: 5 });
  var lat = data.latency;
  make("chart-latency", lat.t, [
    line("p50", lat.p50, "#1a7f4b"),
    line("p95", lat.p95, "#b26a00"),
    line("p99", lat.p99, "#c0262d"),
  ], { values: fmt(" ms", 0), minMax: 10 });

  // The LLM section arrives later as an htmx fragment (ui/llm_charts.py) with its own data.
  function drawLlm() {
    var llmNode = document.getElementById("llm-chart-data");
    if (!llmNode || llmNode.getAttribute("data-drawn")) return;
    llmNode.setAttribute("data-drawn", "1");
    var llm = JSON.parse(llmNode.textContent);
    make("chart-llm-tokens", llm.t, [
      line("input", llm.inputTokens, "#2457d6", "rgba(36,87,214,.12)"),
      line("output", llm.outputTokens, "#1a7f4b"),
    ], { values: fmt("", 0), minMax: 10 });
    make("chart-llm-cost", llm.t, [line("US$", llm.cost, "#b26a00", "rgba(178,106,0,.15)")],
         { values: fmt("", 4), minMax: 0.0001 });
  }
  drawLlm();
  document.body.addEventListener("htmx:afterSettle", drawLlm);

  var pending;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (pair) { pair[0].setSize({ width: width(pair[1]), height: 220 }); });
    }, 100);
  });
})();
