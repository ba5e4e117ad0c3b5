// Hover readouts and zoom for the simulator's charts (report.html, comparison.html).
// Each chart's <figure data-chart> carries its data (raw values, the axes' ranges, the plot
// box); the SVG the simulator drew is left as it is until the user zooms. No library, no
// network: the page works offline.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function fmt(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return (v / 1e3).toPrecision(3) + "k";
    if (a >= 100 || v === Math.round(v)) return v.toFixed(0);
    if (a >= 1) return v.toFixed(2);
    return v.toPrecision(3);
  }

  // Ticks and their labels exactly as the simulator draws them (report.rs: nice_ticks, fmt_num),
  // so a reset chart reads as it was drawn.
  function niceTicks(lo, hi) {
    var span = Math.max(hi - lo, 1e-9), mag = Math.pow(10, Math.floor(Math.log10(span / 5)));
    var step = 10 * mag;
    for (var m of [1, 2, 5, 10]) { if (span / (m * mag) <= 6) { step = m * mag; break; } }
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(t);
    return out;
  }
  function tickLabel(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 10 || v === Math.round(v)) return v.toFixed(0);
    return v.toFixed(2);
  }

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function setup(fig) {
    var d = JSON.parse(fig.getAttribute("data-chart"));
    var svg = fig.querySelector("svg"), plot = svg.querySelector("svg.plot");
    var xt = svg.querySelector("g.xt");
    var bx = d.box[0], by = d.box[1], bw = d.box[2], bh = d.box[3];
    var tx = function (v) { return d.logx ? Math.log10(1 + Math.max(0, v)) : v; };
    var ty = function (v) { return d.logy ? Math.log10(1 + Math.max(0, v)) : v; };
    var inv = function (t) { return d.logx ? Math.pow(10, t) - 1 : t; };
    var x0 = d.x0, x1 = d.x1;
    var px = function (v) { return bx + (tx(v) - x0) / (x1 - x0) * bw; };
    var py = function (v) { return by + bh - (ty(v) - d.y0) / (d.y1 - d.y0) * bh; };

    fig.style.position = "relative";
    var tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.style.cssText = "position:absolute;display:none;pointer-events:none;background:#fff;" +
      "border:1px solid #999;padding:3px 6px;font:11px sans-serif;white-space:nowrap;z-index:2";
    fig.appendChild(tip);
    var cursor = el("line", { y1: by, y2: by + bh, stroke: "#555", "stroke-width": 1,
      visibility: "hidden", "pointer-events": "none" }, svg);
    var band = el("rect", { y: by, height: bh, fill: "#36c", "fill-opacity": 0.15,
      visibility: "hidden", "pointer-events": "none" }, svg);

    function redraw() {
      while (plot.firstChild) plot.removeChild(plot.firstChild);
      d.series.forEach(function (s) {
        if (d.scatter) {
          s.points.forEach(function (p) {
            el("circle", { cx: px(p[0]).toFixed(1), cy: py(p[1]).toFixed(1), r: 2, fill: s.color,
              "fill-opacity": 0.5 }, plot);
          });
          return;
        }
        var pts = [], last = null;
        s.points.forEach(function (p) {
          if (last !== null) pts.push(px(p[0]).toFixed(1) + "," + py(last).toFixed(1));
          pts.push(px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1));
          last = p[1];
        });
        var attrs = { points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": 1.5 };
        if (s.dashed) attrs["stroke-dasharray"] = "5,3";
        el("polyline", attrs, plot);
      });
      while (xt.firstChild) xt.removeChild(xt.firstChild);
      var ticks = d.logx
        ? [0].concat([1, 10, 100, 1e3, 1e4, 1e5, 1e6]).map(function (v) { return Math.log10(1 + v); })
          .filter(function (t) { return t >= x0 - 1e-9 && t <= x1 + 1e-9; })
        : niceTicks(x0, x1);
      if (d.logx && ticks.length < 2 && (x0 !== d.x0 || x1 !== d.x1)) {
        // Zoomed inside a decade: even ticks of the values, placed on the log axis.
        ticks = niceTicks(inv(x0), inv(x1)).map(tx);
      }
      ticks.forEach(function (t) {
        var x = (bx + (t - x0) / (x1 - x0) * bw).toFixed(1);
        el("line", { x1: x, y1: by, x2: x, y2: by + bh, stroke: "#eee" }, xt);
        var label = el("text", { x: x, y: by + bh + 14, "text-anchor": "middle" }, xt);
        label.textContent = tickLabel(Math.round(inv(t) * 1e6) / 1e6);
      });
      fig.setAttribute("data-zoomed", x0 !== d.x0 || x1 !== d.x1 ? "yes" : "no");
    }

    function svgX(ev) {
      var r = svg.getBoundingClientRect();
      return { x: (ev.clientX - r.left) * svg.viewBox.baseVal.width / r.width,
        y: (ev.clientY - r.top) * svg.viewBox.baseVal.height / r.height };
    }
    function inside(p) { return p.x >= bx && p.x <= bx + bw && p.y >= by && p.y <= by + bh; }

    // The value each series has at raw x (steps hold until the next point); for scatter plots,
    // the nearest point within 8 px.
    function readout(p) {
      var xv = inv(x0 + (p.x - bx) / bw * (x1 - x0));
      var rows = [];
      d.series.forEach(function (s) {
        if (d.scatter) {
          var best = null, bd = 64;
          s.points.forEach(function (q) {
            var dx = px(q[0]) - p.x, dy = py(q[1]) - p.y, dd = dx * dx + dy * dy;
            if (dd <= bd) { bd = dd; best = q; }
          });
          if (best) rows.push([s, fmt(best[0]) + ", " + fmt(best[1])]);
          return;
        }
        var v = null;
        for (var i = 0; i < s.points.length && s.points[i][0] <= xv; i++) v = s.points[i][1];
        if (v !== null) rows.push([s, fmt(v)]);
      });
      return { x: xv, rows: rows };
    }

    var drag = null;
    svg.addEventListener("mousemove", function (ev) {
      var p = svgX(ev);
      if (drag !== null) {
        var a = Math.max(bx, Math.min(drag, p.x)), b = Math.min(bx + bw, Math.max(drag, p.x));
        band.setAttribute("x", a); band.setAttribute("width", b - a);
        band.setAttribute("visibility", "visible");
      }
      if (!inside(p)) { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); return; }
      cursor.setAttribute("x1", p.x); cursor.setAttribute("x2", p.x);
      cursor.setAttribute("visibility", "visible");
      var r = readout(p);
      tip.textContent = "";
      var head = document.createElement("div");
      head.textContent = d.xlabel + ": " + fmt(r.x);
      tip.appendChild(head);
      r.rows.forEach(function (row) {
        var line = document.createElement("div");
        var sw = document.createElement("span");
        sw.style.cssText = "display:inline-block;width:8px;height:8px;margin-right:4px;background:" + row[0].color;
        line.appendChild(sw);
        line.appendChild(document.createTextNode(row[0].name + ": " + row[1]));
        tip.appendChild(line);
      });
      var frect = fig.getBoundingClientRect();
      var left = ev.clientX - frect.left + 12;
      if (left + 220 > frect.width) left = ev.clientX - frect.left - 232;
      tip.style.left = Math.max(0, left) + "px";
      tip.style.top = (ev.clientY - frect.top + 12) + "px";
      tip.style.display = "block";
    });
    svg.addEventListener("mouseleave", function () {
      tip.style.display = "none"; cursor.setAttribute("visibility", "hidden");
    });
    svg.addEventListener("mousedown", function (ev) {
      var p = svgX(ev);
      if (inside(p)) { drag = p.x; ev.preventDefault(); }
    });
    window.addEventListener("mouseup", function (ev) {
      if (drag === null) return;
      var p = svgX(ev), a = Math.max(bx, Math.min(drag, p.x)), b = Math.min(bx + bw, Math.max(drag, p.x));
      drag = null;
      band.setAttribute("visibility", "hidden");
      if (b - a < 5) return;
      var na = x0 + (a - bx) / bw * (x1 - x0), nb = x0 + (b - bx) / bw * (x1 - x0);
      x0 = na; x1 = nb;
      redraw();
    });
    svg.addEventListener("dblclick", function () { x0 = d.x0; x1 = d.x1; redraw(); });
    fig.setAttribute("data-zoomed", "no");
    fig.title = "hover for values; drag across to zoom on time; double-click to reset";
  }

  Array.prototype.forEach.call(document.querySelectorAll("figure[data-chart]"), setup);
})();
