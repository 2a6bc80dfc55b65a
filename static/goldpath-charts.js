/* Goldpath charts: draws plotly charts from JSON that pages embed with json_script.
 *
 * A chart is an element with data-chart="<kind>" and data-source="<id of the JSON script>".
 * No inline script anywhere, so a strict Content-Security-Policy can allow 'self' only.
 */
(function () {
  "use strict";

  var PALETTE = ["#175cd3", "#b7791f", "#7a5af8", "#0e9384", "#c11574", "#3e4784", "#667085", "#dd2590"];
  var RED = "#d92d20", AMBER = "#f79009", GREEN = "#12b76a", TARGET = "#b42318";
  var CONFIG = {
    responsive: true,
    displaylogo: false,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
    toImageButtonOptions: { format: "png", scale: 2 },
  };

  function load(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function color(slot) {
    return PALETTE[(slot || 0) % PALETTE.length];
  }

  function zip() {
    var columns = Array.prototype.slice.call(arguments);
    return columns[0].map(function (_, i) {
      return columns.map(function (c) { return c[i]; });
    });
  }

  function timeTitle() {
    var el = document.querySelector("[data-time-zone]");
    return "Run time (" + (el ? el.getAttribute("data-time-zone") : "local") + ")";
  }

  // The legend sits under the title (a fixed distance from the top, whatever the chart's
  // height); plotly then pushes the plot area down by the legend's height.
  function layout(el, title, xTitle, yTitle, extra) {
    var height = el.clientHeight || 380;
    var base = {
      title: { text: title, x: 0, xref: "paper", yref: "container", y: 1, yanchor: "top", pad: { t: 12 },
        font: { size: 15 } },
      font: { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: "#1d2430" },
      margin: { l: 64, r: 24, t: 40, b: 56 },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      hovermode: "closest",
      hoverlabel: { align: "left" },
      legend: { orientation: "h", x: 0, xanchor: "left", yref: "container", y: 1 - 38 / height, yanchor: "top" },
      xaxis: { title: { text: xTitle }, automargin: true, gridcolor: "#eaecf0" },
      yaxis: { title: { text: yTitle }, automargin: true, gridcolor: "#eaecf0", zerolinecolor: "#d0d5dd" },
    };
    Object.keys(extra || {}).forEach(function (key) {
      base[key] = typeof extra[key] === "object" && base[key] && !Array.isArray(extra[key])
        ? Object.assign({}, base[key], extra[key])
        : extra[key];
    });
    return base;
  }

  // A click on a run's point opens the run: the point's customdata ends with its URL.
  function openRunOnClick(el) {
    el.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      var data = point && point.customdata;
      var url = Array.isArray(data) ? data[data.length - 1] : data;
      if (typeof url === "string" && url.charAt(0) === "/") window.location.assign(url);
    });
  }

  function draw(el, traces, lay) {
    window.Plotly.newPlot(el, traces, lay, CONFIG).then(function () { openRunOnClick(el); });
  }

  function passRate(el, series) {
    var traces = series.map(function (s) {
      return {
        type: "scatter", mode: "lines+markers", name: s.environment, x: s.x, y: s.y,
        line: { color: color(s.slot), width: 2 }, marker: { size: 7 },
        customdata: zip(s.run, s.verdict, s.passed, s.total, s.url),
        hovertemplate: "<b>Run #%{customdata[0]}</b> · %{customdata[1]}<br>" +
          "%{y:.1f}% passed (%{customdata[2]} of %{customdata[3]})<br>%{x}<extra>%{fullData.name}</extra>",
      };
    });
    draw(el, traces, layout(el, "Pass rate per environment", timeTitle(), "Checks passed (%)", {
      yaxis: { range: [-3, 103], ticksuffix: "%" },
    }));
  }

  function heatmap(el, d) {
    var trace = {
      type: "heatmap", x: d.x, y: d.categories, z: d.z, text: d.text,
      customdata: d.z.map(function () { return d.url; }),
      hovertemplate: "%{text}<extra></extra>",
      colorscale: [[0, RED], [0.5, AMBER], [1, GREEN]], zmin: 0, zmax: 1, ygap: 2,
      xgap: (el.clientWidth - 280) / Math.max(d.x.length, 1) > 10 ? 2 : 0,
      colorbar: { title: { text: "Passed" }, tickformat: ".0%", thickness: 14 },
    };
    el.style.height = Math.max(220, 110 + 34 * d.categories.length) + "px";
    draw(el, [trace], layout(el, "Checks passed per category", "Last " + d.x.length + " runs (oldest → newest)",
      "", { xaxis: { type: "category", tickangle: -45 }, yaxis: { autorange: "reversed" }, margin: { b: 64 } }));
  }

  function allX(series) {
    var seen = {};
    series.forEach(function (s) { s.x.forEach(function (x) { seen[x] = true; }); });
    return Object.keys(seen).sort();
  }

  function targetTrace(m) {
    var line = m.target_line, name = "Target " + m.comparison + " " + m.target + " " + m.unit;
    var constant = line.y.every(function (y) { return y === line.y[0]; });
    var x = constant ? allX(m.series) : line.x;
    var y = constant ? x.map(function () { return line.y[0]; }) : line.y;
    return {
      type: "scatter", mode: x.length > 1 ? "lines" : "markers", name: name, x: x, y: y,
      line: { color: TARGET, dash: "dash", width: 1.5, shape: "hv" },
      marker: { color: TARGET, symbol: "line-ew-open", size: 28 },
      hovertemplate: "Target " + m.comparison + " %{y} " + m.unit + "<extra></extra>",
    };
  }

  function metric(el, m) {
    var several = m.series.length > 1, traces = [], measured = false;
    m.series.forEach(function (s) {
      [["p50", "solid", 2], ["p95", "dot", 1.5]].forEach(function (spec) {
        var values = s[spec[0]];
        measured = measured || values.some(function (v) { return v !== null; });
        // Several environments: one legend entry per environment toggles its p50 and p95.
        traces.push({
          type: "scatter", mode: "lines+markers", connectgaps: false,
          name: several ? s.environment : spec[0], legendgroup: several ? s.environment : spec[0],
          showlegend: !several || spec[0] === "p50", x: s.x, y: values,
          line: { color: color(s.slot), dash: spec[1], width: spec[2] }, marker: { size: 6 },
          customdata: zip(s.run, s.url),
          hovertemplate: "<b>Run #%{customdata[0]}</b><br>" + spec[0] + " %{y:.1f} " + m.unit +
            "<br>%{x}<extra>" + s.environment + "</extra>",
        });
      });
    });
    traces.push(targetTrace(m));
    var lay = layout(el, m.name + " (target " + m.comparison + " " + m.target + " " + m.unit + ")", timeTitle(),
      "p50 / p95 (" + m.unit + ")", { yaxis: { rangemode: "tozero" } });
    if (!measured) {
      lay.annotations = [{ text: "Not measured in these runs", xref: "paper", yref: "paper", x: 0.5, y: 0.5,
        showarrow: false, font: { size: 14, color: "#667085" } }];
    }
    draw(el, traces, lay);
  }

  function metrics(container, list) {
    // Create every chart's element first so that each is drawn at its final width in the grid.
    var elements = list.map(function (m) {
      var el = document.createElement("div");
      el.className = "trend-chart trend-chart-small";
      el.id = "chart-metric-" + m.key;
      container.appendChild(el);
      return el;
    });
    list.forEach(function (m, i) { metric(elements[i], m); });
  }

  function mockCount(el, series) {
    var traces = series.map(function (s) {
      return {
        type: "scatter", mode: "lines+markers", name: s.environment, x: s.x, y: s.mock_count,
        line: { color: color(s.slot), width: 2 }, marker: { size: 7 },
        customdata: zip(s.run, s.verdict, s.url),
        hovertemplate: "<b>Run #%{customdata[0]}</b> · %{customdata[1]}<br>%{y} mock indicator(s)<br>%{x}" +
          "<extra>%{fullData.name}</extra>",
      };
    });
    var most = Math.max.apply(null, [1].concat.apply([], series.map(function (s) { return s.mock_count; })));
    draw(el, traces, layout(el, "Mock indicators per run", timeTitle(), "Indicators flagged (count)", {
      yaxis: { range: [-0.05 * most, 1.08 * most], tickformat: "d", dtick: most <= 10 ? 1 : null },
    }));
  }

  function realness(el, series) {
    var traces = series.map(function (s) {
      return {
        type: "scatter", mode: "lines+markers", connectgaps: false, name: s.environment, x: s.x, y: s.realness,
        line: { color: color(s.slot), width: 2 }, marker: { size: 7 },
        customdata: zip(s.run, s.verdict, s.url),
        hovertemplate: "<b>Run #%{customdata[0]}</b> · %{customdata[1]}<br>realness %{y:.0f}%<br>%{x}" +
          "<extra>%{fullData.name}</extra>",
      };
    });
    draw(el, traces, layout(el, "Realness score", timeTitle(), "Realness (%)", {
      yaxis: { range: [-3, 103], ticksuffix: "%" },
    }));
  }

  function mrr(el, series) {
    var traces = series.map(function (s) {
      return {
        type: "scatter", mode: "lines+markers", name: s.environment, x: s.x, y: s.y,
        line: { color: color(s.slot), width: 2.5, shape: "hv" }, marker: { size: 7 },
        customdata: zip(s.run, s.url),
        hovertemplate: "<b>%{y:$,.0f}</b> of monthly revenue at risk<br>test run #%{customdata[0]}, %{x}" +
          "<extra>%{fullData.name}</extra>",
      };
    });
    draw(el, traces, layout(el, "Monthly revenue at risk, per environment", timeTitle(), "At risk (US$ per month)", {
      yaxis: { rangemode: "tozero", tickprefix: "$", tickformat: ",.0f" },
    }));
  }

  var KINDS = {
    "pass-rate": passRate, heatmap: heatmap, metrics: metrics,
    "mock-count": mockCount, realness: realness, mrr: mrr,
  };

  function init() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var kind = KINDS[el.getAttribute("data-chart")];
      var data = load(el.getAttribute("data-source"));
      if (kind && data) kind(el, data);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
