#!/usr/bin/env python3
"""The simulator's pages (report.html, comparison.html) in real headless Chromium, offline.

Writes them with the release binary (a small generated workload; the built-in demo's
comparison), opens them from file://
and checks what a planner does with a chart: hovering shows the cursor's time and every series'
value there (the value must be the one the chart's own data holds at that time); dragging across
zooms on time (the time axis' labels change, the lines stay inside the plot); double-clicking
resets. Each page links to per-queue pages: one of each is followed, its figures checked against
the run's JSON and its charts tried the same way. No script error on any page. Writes target/ui/report.png and target/ui/comparison.png
(the latter with a readout open) and copies the comparison to docs/img/compare.png when
PHALANX_UPDATE_SCREENSHOT=1.

    python3 tests/ui/check_report.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from selenium.webdriver.common.action_chains import ActionChains

from check_page import BIN, OUT, ROOT, Failure, browser, check_no_js_errors, css, log


def tick_labels(fig):
    return [t.text for t in fig.find_elements("css selector", "g.xt text")]


def check_chart(driver, fig, where):
    data = json.loads(fig.get_attribute("data-chart"))
    svg = fig.find_element("css selector", "svg")
    box = data["box"]
    rect = driver.execute_script("var r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", svg)
    scale = rect[0] / 720.0
    # Pixel offsets from the svg's centre (ActionChains' origin) of a point of the plot box.
    def at(fx, fy):
        x = (box[0] + fx * box[2]) * scale - rect[0] / 2
        y = (box[1] + fy * box[3]) * scale - rect[1] / 2
        return int(x), int(y)

    before = tick_labels(fig)
    # Hover at 40% of the time axis: the readout names the time and each series' value.
    ActionChains(driver).move_to_element_with_offset(svg, *at(0.4, 0.5)).perform()
    tip = fig.find_element("css selector", ".chart-tip")
    if not tip.is_displayed():
        raise Failure(f"{where}: hovering the chart shows no readout")
    lines = tip.text.splitlines()
    if not lines or not lines[0].startswith(data["xlabel"] + ":"):
        raise Failure(f"{where}: the readout does not start with the time: {lines}")
    if not data["scatter"]:
        named = [s["name"] for s in data["series"] if s["points"] and s["points"][0][0] <= float_of(lines[0])]
        shown = [l.split(": ")[0] for l in lines[1:]]
        if shown != named:
            raise Failure(f"{where}: the readout lists {shown}, the chart has {named} by then")
        # The first series' value is the one in force at the readout's time (steps).
        t = float_of(lines[0])
        s = data["series"][0]
        want = None
        for x, y in s["points"]:
            if x <= t:
                want = y
        got = float_of(lines[1])
        if want is None or abs(got - want) > max(0.02 * abs(want), 0.01) and not near_step(s, t, got):
            raise Failure(f"{where}: {s['name']} reads {got} at {t}, its data holds {want}")
    # Drag from 30% to 60%: zoomed, with other time labels.
    ActionChains(driver).move_to_element_with_offset(svg, *at(0.3, 0.5)).click_and_hold() \
        .move_to_element_with_offset(svg, *at(0.45, 0.5)) \
        .move_to_element_with_offset(svg, *at(0.6, 0.5)).release().perform()
    if fig.get_attribute("data-zoomed") != "yes":
        raise Failure(f"{where}: dragging across the chart did not zoom")
    zoomed = tick_labels(fig)
    if zoomed == before:
        raise Failure(f"{where}: zoomed, but the time labels are unchanged: {zoomed}")
    ActionChains(driver).move_to_element_with_offset(svg, *at(0.5, 0.5)).double_click().perform()
    if fig.get_attribute("data-zoomed") != "no" or tick_labels(fig) != before:
        raise Failure(f"{where}: double-click did not reset the zoom: {tick_labels(fig)} against {before}")
    log(f"{where}: readout {lines[:3]}, zoom {before[:3]}... -> {zoomed[:3]}..., reset")


def float_of(line):
    v = line.rsplit(": ", 1)[1].strip()
    mult = 1.0
    if v.endswith("k"):
        v, mult = v[:-1], 1e3
    elif v.endswith("M"):
        v, mult = v[:-1], 1e6
    return float(v) * mult


def near_step(series, t, got):
    # At the cursor's pixel the time is known to about one pixel: accept the value of a step
    # that starts within that pixel.
    return any(abs(y - got) <= max(0.02 * abs(y), 0.01) for x, y in series["points"]
               if abs(x - t) <= 0.01 * max(1.0, abs(t)))


def check_queue_page(driver, tmp, page):
    """Follows the page's link to its last queue's page: the queue's figures agree with the
    JSON the run wrote, its charts read out and zoom, its link leads back."""
    links = css(driver, "a[href^='queue-']")
    if not links:
        raise Failure(f"{page}: no link to a queue's page")
    link = links[-1]
    queue = link.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    where = f"{page} -> queue {queue}"
    if queue not in driver.find_element("css selector", "h1").text:
        raise Failure(f"{where}: the page's title does not name the queue")
    rows = {r.find_elements("css selector", "td")[0].text: [c.text for c in r.find_elements("css selector", "td")[1:]]
            for r in css(driver, "table tr") if r.find_elements("css selector", "td")}
    folder = os.path.dirname(os.path.join(tmp, page))
    if page.endswith("report.html"):
        q = json.load(open(os.path.join(folder, "summary.json")))["queues"][queue]
        want = f"{q['jobs']} / {q['started']}"
        got = rows.get("jobs / started", ["?"])[0]
        want_wait = f"{q['waits']['p50_s']:.0f} / {q['waits']['p95_s']:.0f} / {q['waits']['p99_s']:.0f}"
        got_wait = rows.get("wait p50 / p95 / p99, s", ["?"])[0]
        if got != want or got_wait != want_wait:
            raise Failure(f"{where}: the table says jobs {got}, waits {got_wait}; summary.json {want}, {want_wait}")
    else:
        cmp = json.load(open(os.path.join(folder, "comparison.json")))
        ref = next(r for r in cmp.values() if r["reference"] in cmp and cmp[r["reference"]] is r)
        v = ref["queues"][queue]["wait_p95_s"]
        got = rows.get("wait p95, s", ["?"])[0].split(" ")[0]
        want = f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}"
        if got != want:
            raise Failure(f"{where}: the reference's wait p95 reads {got}, comparison.json {want}")
    figs = css(driver, "figure[data-chart]")
    if len(figs) < 2:
        raise Failure(f"{where}: {len(figs)} charts, expected the share and the jobs over time")
    for i, fig in enumerate(figs[:2]):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", fig)
        check_chart(driver, fig, f"{where} chart {i + 1}")
    check_no_js_errors(driver, where)
    driver.execute_script("window.scrollTo(0, 0)")
    name = "queue-run.png" if page.startswith("run") else "queue-comparison.png"
    driver.save_screenshot(os.path.join(OUT, name))
    log(f"screenshot target/ui/{name}")
    back = css(driver, "nav a")
    if not back or not back[0].get_attribute("href").endswith(os.path.basename(page)):
        raise Failure(f"{where}: no link back to {page}")


def main():
    tmp = tempfile.mkdtemp(prefix="phalanx-report-ui-")
    ok = False
    try:
        # A small generated run, and the built-in demo's comparison (the README's screenshot).
        for args in (["--nodes", "60", "--pods", "1500", "--out", f"{tmp}/run"],
                     ["--compare", "--out", f"{tmp}/cmp"]):
            subprocess.run([BIN, "simulate", "--quiet", *args], check=True, timeout=300)
        driver = browser(1150, 1500)
        try:
            for page, charts in (("run/report.html", 3), ("cmp/comparison.html", 2)):
                driver.get("file://" + os.path.join(tmp, page))
                figs = css(driver, "figure[data-chart]")
                if len(figs) < charts:
                    raise Failure(f"{page}: {len(figs)} charts, expected at least {charts}")
                for i, fig in enumerate(figs[:charts]):
                    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", fig)
                    check_chart(driver, fig, f"{page} chart {i + 1}")
                check_no_js_errors(driver, page)
                # The window as a reader first sees it, with a readout open on the first chart.
                driver.execute_script("window.scrollTo(0, 0)")
                fig = figs[0]
                svg = fig.find_element("css selector", "svg")
                ActionChains(driver).move_to_element_with_offset(svg, 60, 0).perform()
                name = "report.png" if page.startswith("run") else "comparison.png"
                os.makedirs(OUT, exist_ok=True)
                driver.save_screenshot(os.path.join(OUT, name))
                log(f"screenshot target/ui/{name}")
                check_queue_page(driver, tmp, page)
        finally:
            driver.quit()
        if os.environ.get("PHALANX_UPDATE_SCREENSHOT"):
            shutil.copy(os.path.join(OUT, "comparison.png"), os.path.join(ROOT, "docs", "img", "compare.png"))
        ok = True
        log("report pages: PASS")
    except Failure as e:
        print(f"\ncheck_report FAILED: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
