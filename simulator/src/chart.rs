//! Inline SVG charts and the frame every HTML page of the simulator shares: one head (styles),
//! one embedded script (`report.js`: hover readouts, drag to zoom, double-click to reset), so
//! `report.html`, `comparison.html` and the per-queue pages look and behave alike and open
//! offline (no scripts, fonts or styles from anywhere else).

use std::fmt::Write as _;

pub(crate) const COLORS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Escapes text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One plotted series.
pub(crate) struct Plot {
    /// Legend name.
    pub name: String,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed line (other runs than the first, reference lines).
    pub dashed: bool,
    /// Points, in data units.
    pub points: Vec<(f64, f64)>,
}

fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 10.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// An SVG chart: lines (`scatter` false) or points. Log axes plot log10(1 + v).
pub(crate) fn chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    plots: &[Plot],
    scatter: bool,
    logx: bool,
    logy: bool,
) -> String {
    let (w, h, ml, mr, mt, mb) = (720.0, 300.0, 60.0, 170.0, 30.0, 40.0);
    let tx = |v: f64| if logx { (1.0 + v.max(0.0)).log10() } else { v };
    let ty = |v: f64| if logy { (1.0 + v.max(0.0)).log10() } else { v };
    let pts = plots.iter().flat_map(|p| p.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(tx(x));
        x1 = x1.max(tx(x));
        y0 = y0.min(ty(y));
        y1 = y1.max(ty(y));
    }
    if x0 > x1 {
        (x0, x1, y1) = (0.0, 1.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    y1 *= 1.05;
    let px = |x: f64| ml + (tx(x) - x0) / (x1 - x0) * (w - ml - mr);
    let py = |y: f64| h - mb - (ty(y) - y0) / (y1 - y0) * (h - mt - mb);
    let mut s = String::new();
    // The data again, for the page's script (hover readouts, zoom): raw values, not pixels.
    let data = serde_json::json!({
        "x0": x0, "x1": x1, "y0": y0, "y1": y1, "logx": logx, "logy": logy,
        "scatter": scatter, "xlabel": xlabel,
        "box": [ml, mt, w - ml - mr, h - mt - mb],
        "series": plots.iter().map(|p| serde_json::json!({
            "name": p.name, "color": p.color, "dashed": p.dashed,
            "points": p.points.iter().map(|&(x, y)| [round6(x), round6(y)]).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let _ = write!(
        s,
        r#"<figure data-chart="{}"><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">"#,
        esc(&data.to_string())
    );
    let _ = write!(
        s,
        r#"<text x="{ml}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        w - ml - mr,
        h - mt - mb
    );
    let inv = |v: f64, log: bool| {
        if log {
            ((10f64.powf(v) - 1.0) * 1e6).round() / 1e6
        } else {
            v
        }
    };
    // Log axes get decade ticks (0, 1, 10, 100, ...), placed at log10(1 + v).
    let ticks = |lo: f64, hi: f64, log: bool| -> Vec<f64> {
        if !log {
            return nice_ticks(lo, hi);
        }
        std::iter::once(0.0)
            .chain((0..12).map(|k| 10f64.powi(k)))
            .map(|v| (1.0 + v).log10())
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect()
    };
    s.push_str(r#"<g class="xt">"#);
    for t in ticks(x0, x1, logx) {
        let x = ml + (t - x0) / (x1 - x0) * (w - ml - mr);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            mt,
            h - mb,
            h - mb + 14.0,
            fmt_num(inv(t, logx))
        );
    }
    s.push_str("</g>");
    for t in ticks(y0, y1, logy) {
        let y = h - mb - (t - y0) / (y1 - y0) * (h - mt - mb);
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - mr,
            ml - 4.0,
            y + 4.0,
            fmt_num(inv(t, logy))
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"#,
        ml + (w - ml - mr) / 2.0,
        h - 6.0,
        esc(xlabel),
        h / 2.0,
        h / 2.0,
        esc(ylabel)
    );
    // Lines and points in a nested viewport of the plot area, which clips them (when zoomed).
    let _ = write!(
        s,
        r#"<svg class="plot" x="{ml}" y="{mt}" width="{pw}" height="{ph}" viewBox="{ml} {mt} {pw} {ph}">"#,
        pw = w - ml - mr,
        ph = h - mt - mb
    );
    for p in plots {
        if scatter {
            for &(x, y) in &p.points {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2" fill="{}" fill-opacity="0.5"/>"#,
                    px(x),
                    py(y),
                    p.color
                );
            }
        } else {
            // Steps: every series here holds its value until the next point.
            let mut d = String::new();
            let mut last: Option<f64> = None;
            for &(x, y) in &p.points {
                if let Some(ly) = last {
                    let _ = write!(d, "{:.1},{:.1} ", px(x), py(ly));
                }
                let _ = write!(d, "{:.1},{:.1} ", px(x), py(y));
                last = Some(y);
            }
            let dash = if p.dashed {
                r#" stroke-dasharray="5,3""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<polyline points="{d}" fill="none" stroke="{}" stroke-width="1.5"{dash}/>"#,
                p.color
            );
        }
    }
    s.push_str("</svg>");
    for (i, p) in plots.iter().enumerate() {
        let ly = mt + 6.0 + i as f64 * 15.0;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            w - mr + 8.0,
            ly,
            p.color,
            w - mr + 22.0,
            ly + 9.0,
            esc(&p.name)
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

/// Six decimals: enough for a chart's readout, and a page a third smaller.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The page's one script (embedded: the page works offline): hover readouts of every series
/// at the cursor, drag to zoom on time, double-click to reset. Without scripts, the charts are
/// the same SVG.
pub(crate) fn chart_script() -> String {
    format!("<script>\n{}</script>\n", include_str!("report.js"))
}

/// Downsamples a step series to at most `n` points (the value in force at each step).
pub(crate) fn thin(points: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n {
        return points;
    }
    let step = points.len().div_ceil(n);
    let last = *points.last().expect("non-empty");
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    out.push(last);
    out
}

/// The start of every page, up to and including its `<h1>`: one style sheet for all of them
/// (tables with numbers right-aligned, cells marked `better` or `worse`).
pub(crate) fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:0.5em 0}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}\
         .better{{background:#d9f2d9}}.worse{{background:#f7d4d4}}\
         figure{{margin:1em 0}}nav{{margin:0 0 1em}}</style></head><body>\n<h1>{t}</h1>\n",
        t = esc(title)
    )
}

/// The end of every page: the chart script, then the closing tags.
pub(crate) fn page_end() -> String {
    format!("{}</body></html>\n", chart_script())
}
