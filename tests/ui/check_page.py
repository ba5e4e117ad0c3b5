#!/usr/bin/env python3
"""The admin page in real headless Chromium, against the real binaries.

Starts `phalanx emulator` (4 nodes of 8 cpu, 32Gi) with two users, `alice` (admin, the
scheduler's identity) and `bob` (view), and `phalanx serve` against it with the admin API's
authentication on (TokenReview and SubjectAccessReview against the emulator); creates two
Volcano Queues, a gang that runs and a gang too big for any node, signs in on
http://127.0.0.1:<admin>/ with bob's token and checks what an admin looks for: the queues with
their bars, the pending gang with reason `unschedulable` at position 1, the running gang; then
changes the cluster and checks the page follows without a reload, and that it says so when the
scheduler goes away. The refusal of a user without the right (403, which the emulator's two
roles cannot produce for reading queues) and escaping of user strings are checked against a
small stub API that serves the page's real assets, fetched from the binary's admin port.

Needs: chromium, chromedriver (/usr/bin/chromedriver), `pip install selenium`, and the binary
(env PHALANX_BIN, default target/release/phalanx). Writes target/ui/queues.png (and
target/ui/narrow.png); copies the first to docs/img/queues.png when PHALANX_UPDATE_SCREENSHOT=1.
PHALANX_UI_DIR=k8s/src/ui serves the page's files from that folder instead of the binary's (the
API stays the binary's): for work on the page without rebuilding.

    python3 tests/ui/check_page.py
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, os.environ.get("PHALANX_BIN", "target/release/phalanx"))
OUT = os.path.join(ROOT, "target", "ui")
TIMEOUT = 20.0
ADMIN_TOKEN = "alice-secret"   # the scheduler's own identity (emulator role admin)
VIEWER_TOKEN = "bob-secret"    # the person at the page (emulator role view)


class Failure(Exception):
    pass


def log(msg):
    print(f"[ui] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def until(what, check, timeout=TIMEOUT, detail=None):
    """Polls `check` until it returns something truthy; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = check()
            if v:
                return v
        except (StaleElementReferenceException, urllib.error.URLError, ConnectionError, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            extra = f"\n  last error: {last!r}" if last else ""
            if detail:
                try:
                    extra += f"\n  {detail()}"
                except Exception as e:  # the detail is only for the message
                    extra += f"\n  (no detail: {e!r})"
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(0.2)


class Procs:
    """The processes this test started; all killed at the end, whatever happened."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = {}

    def start(self, name, args):
        logf = open(os.path.join(self.tmp, f"{name}.log"), "wb")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        p = subprocess.Popen([BIN, *args], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env)
        self.procs[name] = (p, logf)
        return p

    def alive(self, name):
        p, _ = self.procs[name]
        if p.poll() is not None:
            raise Failure(f"{name} exited with {p.returncode}; its log:\n{self.log(name)}")
        return True

    def log(self, name, tail=3000):
        try:
            with open(os.path.join(self.tmp, f"{name}.log"), "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, name):
        p, logf = self.procs.pop(name)
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        logf.close()

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)


# ---------- the cluster ----------

class Cluster:
    def __init__(self, procs):
        self.procs = procs
        self.emu = None
        self.admin = None
        self.as_admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.as_viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}

    def start(self):
        tmp = self.procs.tmp
        kubeconfig = os.path.join(tmp, "kubeconfig")
        port = free_port()
        self.procs.start("emulator", [
            "emulator", "--listen", f"127.0.0.1:{port}", "--nodes", "4",
            "--node-shape", "cpu=8,memory=32Gi,pods=110", "--kubeconfig", kubeconfig,
            "--start-delay-ms", "100", "--stop-delay-ms", "100", "--bookmark-interval-s", "1",
            "--token", f"{ADMIN_TOKEN}=alice:admin", "--token", f"{VIEWER_TOKEN}=bob:view",
        ])
        self.emu = f"http://127.0.0.1:{port}"
        until("the emulator's kubeconfig", lambda: self.procs.alive("emulator") and os.path.exists(kubeconfig),
              timeout=60)
        until("the emulator's API", lambda: http("GET", f"{self.emu}/api/v1/nodes", headers=self.as_admin)[0] == 200,
              timeout=60)

        # Queues before the scheduler: its first list sees them.
        self.create("/apis/scheduling.volcano.sh/v1beta1/queues", {
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": "tenant-a"},
            "spec": {"weight": 2, "reclaimable": True,
                     "guarantee": {"resource": {"cpu": "4", "memory": "16Gi"}},
                     "deserved": {"cpu": "16", "memory": "64Gi"},
                     "capability": {"cpu": "24", "memory": "96Gi"}}})
        self.create("/apis/scheduling.volcano.sh/v1beta1/queues", {
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": "tenant-b"},
            "spec": {"weight": 1, "reclaimable": True, "capability": {"cpu": "32", "memory": "128Gi"}}})

        admin = free_port()
        config = os.path.join(tmp, "config.yaml")
        with open(config, "w") as f:
            f.write("leaderElection: {enabled: false}\n"
                    f"listen: 127.0.0.1:{admin}\n"
                    "cyclePeriodMs: 200\nstatusIntervalMs: 200\n")
        self.procs.start("serve", ["serve", "--kubeconfig", kubeconfig, "--config", config])
        self.admin = f"http://127.0.0.1:{admin}"
        until("phalanx serve /readyz", lambda: self.procs.alive("serve")
              and http("GET", f"{self.admin}/readyz")[0] == 200, timeout=60)

    def create(self, path, obj):
        code, body = http("POST", self.emu + path, obj, headers=self.as_admin)
        if code >= 300:
            raise Failure(f"creating {obj['kind']} {obj['metadata']['name']}: {code} {body[:300]!r}")

    def delete(self, path):
        code, body = http("DELETE", self.emu + path, headers=self.as_admin)
        if code >= 300 and code != 404:
            raise Failure(f"deleting {path}: {code} {body[:300]!r}")

    def gang(self, name, queue, pods, cpu, memory):
        """A Volcano PodGroup in `queue` and its `pods` pods (schedulerName phalanx, serve's default)."""
        self.create("/apis/scheduling.volcano.sh/v1beta1/namespaces/default/podgroups", {
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
            "metadata": {"name": name}, "spec": {"minMember": pods, "queue": queue}})
        for i in range(pods):
            self.create("/api/v1/namespaces/default/pods", {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{name}-{i}", "annotations": {"scheduling.k8s.io/group-name": name}},
                "spec": {"schedulerName": "phalanx", "containers": [{
                    "name": "main", "image": "pause",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})

    def delete_gang(self, name, pods):
        for i in range(pods):
            self.delete(f"/api/v1/namespaces/default/pods/{name}-{i}")
        self.delete(f"/apis/scheduling.volcano.sh/v1beta1/namespaces/default/podgroups/{name}")

    def api(self, path):
        code, body = http("GET", self.admin + path, headers=self.as_viewer)
        if code != 200:
            raise Failure(f"GET {path}: {code} {body[:300]!r}")
        return json.loads(body)

    def job(self, name):
        code, body = http("GET", f"{self.admin}/api/v1/jobs/default/{name}", headers=self.as_viewer)
        return json.loads(body) if code == 200 else None


# ---------- the browser ----------

def browser(width=1280, height=900):
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}",
              "--disable-dev-shm-usage", "--lang=en-US", "--force-prefers-reduced-motion"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    return driver


def css(driver, sel):
    return driver.find_elements(By.CSS_SELECTOR, sel)


def text(driver, sel):
    els = css(driver, sel)
    return els[0].text if els else None


def row(driver, table, job):
    els = css(driver, f'#{table} tbody tr[data-job="{job}"]')
    return els[0] if els else None


def cell(tr, col):
    els = tr.find_elements(By.CSS_SELECTOR, f'[data-col="{col}"]')
    return els[0].text.strip() if els else None


def table_text(driver, table):
    return f"#{table}: {text(driver, f'#{table} tbody')!r}"


def js_errors(driver):
    try:
        # Answers 401/403/404 and a server gone are logged by the browser too ("network"): the
        # page expects those. What counts is the page's own script failing.
        return [e for e in driver.get_log("browser")
                if e.get("level") == "SEVERE" and e.get("source") != "network"]
    except WebDriverException:
        return []


def check_no_js_errors(driver, where):
    errs = js_errors(driver)
    if errs:
        raise Failure(f"JavaScript errors on {where}:\n" + "\n".join(e.get("message", str(e)) for e in errs))


def screenshot(driver, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # The whole page, not only the window.
    h = driver.execute_script("return document.documentElement.scrollHeight")
    w = driver.execute_script("return document.documentElement.clientWidth")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": w, "height": max(h, 200), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.save_screenshot(path)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    log(f"screenshot {os.path.relpath(path, ROOT)}")


# ---------- the checks against the real scheduler ----------

def check_real(cluster, procs):
    cluster.gang("train", "tenant-a", pods=4, cpu="4", memory="8Gi")
    cluster.gang("huge", "tenant-b", pods=2, cpu="12", memory="4Gi")
    until("the API to show train running and huge unschedulable", lambda:
          (cluster.job("train") or {}).get("state") == "Running"
          and ((cluster.job("huge") or {}).get("reason") or {}).get("label") == "unschedulable",
          detail=lambda: f"train={cluster.job('train')} huge={cluster.job('huge')}")

    page = cluster.admin
    proxy = None
    if os.environ.get("PHALANX_UI_DIR"):
        Proxy.assets, Proxy.admin = page_assets(cluster.admin), cluster.admin
        proxy, page = serve_in_thread(Proxy)
        log(f"the page's files from {os.environ['PHALANX_UI_DIR']}, through {page}")
    driver = browser()
    try:
        driver.get(page + "/")
        driver.execute_script("window.__notReloaded = true")

        # The API wants a Kubernetes identity: the page asks for a token, and bob's is checked
        # by the scheduler with a TokenReview and a SubjectAccessReview against the emulator.
        until("the token box on 401", lambda: css(driver, "#auth") and css(driver, "#auth")[0].is_displayed()
              and css(driver, '#live[data-state="auth"]'), detail=lambda: f"{text(driver, '#banners')!r}")
        box = driver.find_element(By.ID, "token")
        box.send_keys("not-a-token")
        box.submit()
        until("a made-up token refused", lambda: css(driver, "#auth")[0].is_displayed()
              and "refused this token" in (text(driver, "#auth-message") or ""),
              detail=lambda: f"{text(driver, '#auth-message')!r}")
        box = driver.find_element(By.ID, "token")
        box.send_keys(VIEWER_TOKEN)
        box.submit()
        until("signed in as bob", lambda: "signed in as bob" in (text(driver, "#whoami") or ""),
              detail=lambda: f"{text(driver, '#whoami')!r} {text(driver, '#banners')!r}")

        # Header: live, counts.
        until("the live indicator", lambda: css(driver, '#live[data-state="live"]'),
              detail=lambda: f"#status: {text(driver, '#status')!r}")

        # The queue tree: both tenants under root, with bars for cpu and memory.
        def queues_shown():
            rows = {r.get_attribute("data-queue"): r for r in css(driver, "#queues tbody tr[data-queue]")}
            if not {"root.tenant-a", "root.tenant-b"} <= set(rows):
                return None
            return rows
        rows = until("both queues in #queues", queues_shown, detail=lambda: table_text(driver, "queues"))
        for q in ("root.tenant-a", "root.tenant-b"):
            r = rows[q]
            if r.get_attribute("data-depth") != "1":
                raise Failure(f"{q} should be indented under root (depth 1), is {r.get_attribute('data-depth')}")
            for res in ("cpu", "memory"):
                if not r.find_elements(By.CSS_SELECTOR, f'[data-resource="{res}"] .bar[role="img"]'):
                    raise Failure(f"{q} has no {res} bar: {r.text!r}")
        a_cpu = rows["root.tenant-a"].find_element(By.CSS_SELECTOR, '[data-resource="cpu"]')
        until("tenant-a's cpu bar at 16 of 24 cores", lambda: "16 / 24 cores" in a_cpu.text,
              detail=lambda: f"{a_cpu.text!r}")
        if not a_cpu.find_elements(By.CSS_SELECTOR, ".mark.deserved") or not a_cpu.find_elements(
                By.CSS_SELECTOR, ".mark.guarantee"):
            raise Failure("tenant-a's cpu bar has no deserved or guarantee marker")
        b_cpu = rows["root.tenant-b"].find_element(By.CSS_SELECTOR, '[data-resource="cpu"]')
        until("tenant-b's cpu bar: nothing allocated of 32, 24 pending",
              lambda: "0 / 32 cores" in b_cpu.text and "+24 pending" in b_cpu.text,
              detail=lambda: f"{b_cpu.text!r}")
        b_mem = rows["root.tenant-b"].find_element(By.CSS_SELECTOR, '[data-resource="memory"]')
        if "128Gi" not in b_mem.text:
            raise Failure(f"tenant-b's memory capability should read 128Gi: {b_mem.text!r}")

        # Pending: huge, unschedulable, first in line; an estimate or "unknown", never a blank.
        huge = until("default/huge in #pending", lambda: row(driver, "pending", "default/huge"),
                     detail=lambda: table_text(driver, "pending"))
        if huge.get_attribute("data-queue") != "root.tenant-b":
            raise Failure(f"huge's queue: {huge.get_attribute('data-queue')}")
        if not cell(huge, "reason").startswith("unschedulable"):
            raise Failure(f"huge's reason: {cell(huge, 'reason')!r}")
        if cell(huge, "position") != "1":
            raise Failure(f"huge's position: {cell(huge, 'position')!r}")
        est = cell(huge, "estimate")
        if not est or not (est == "unknown" or est.startswith("in ") or est.startswith("now")):
            raise Failure(f"huge's estimated start should be a time or 'unknown': {est!r}")
        if "24 cores" not in (cell(huge, "requests") or ""):
            raise Failure(f"huge's requests should read 24 cores: {cell(huge, 'requests')!r}")
        msg = huge.find_elements(By.CSS_SELECTOR, ".msg")
        if msg and not msg[0].get_attribute("title"):
            raise Failure("huge's reason message has no full text on hover")

        # Running: train, 4 of 4 pods bound.
        train = until("default/train in #running", lambda: row(driver, "running", "default/train"),
                      detail=lambda: table_text(driver, "running"))
        until("train's pods 4 / 4", lambda: cell(row(driver, "running", "default/train"), "pods") == "4 / 4",
              detail=lambda: f"{train.text!r}")
        if row(driver, "pending", "default/train") or row(driver, "running", "default/huge"):
            raise Failure("a job shows in the wrong table")

        # Filter: click tenant-b in the tree; only its jobs remain.
        rows["root.tenant-b"].find_element(By.CSS_SELECTOR, "th button").click()
        until("the filter on root.tenant-b", lambda: row(driver, "running", "default/train") is None
              and row(driver, "pending", "default/huge") is not None
              and css(driver, '#queues tr.selected[data-queue="root.tenant-b"]'),
              detail=lambda: table_text(driver, "running"))
        if driver.execute_script("return document.getElementById('queue-filter').value") != "root.tenant-b":
            raise Failure("the queue select does not follow the click in the tree")
        driver.find_element(By.ID, "clear-filter").click()
        until("the filter cleared", lambda: row(driver, "running", "default/train") is not None)

        check_no_js_errors(driver, "the page")
        screenshot(driver, os.path.join(OUT, "queues.png"))

        # The world changes; the page follows by itself.
        cluster.gang("etl", "tenant-b", pods=2, cpu="2", memory="2Gi")
        until("default/etl in #running without a reload", lambda: row(driver, "running", "default/etl"),
              detail=lambda: table_text(driver, "running"))
        cluster.delete_gang("train", 4)
        until("default/train gone from #running", lambda: row(driver, "running", "default/train") is None,
              detail=lambda: table_text(driver, "running"))
        a_cpu = css(driver, '#queues tr[data-queue="root.tenant-a"] [data-resource="cpu"]')[0]
        until("tenant-a's cpu back to 0", lambda: "0 / 24 cores" in css(
            driver, '#queues tr[data-queue="root.tenant-a"] [data-resource="cpu"]')[0].text,
            detail=lambda: css(driver, '#queues tr[data-queue="root.tenant-a"]')[0].text)
        if not driver.execute_script("return window.__notReloaded === true"):
            raise Failure("the page reloaded itself; it should update in place")
        check_no_js_errors(driver, "the page after updates")

        # A narrow window: nothing sticks out of the page; tables scroll inside their boxes.
        driver.set_window_size(420, 900)
        time.sleep(0.5)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 1:
            raise Failure(f"at 420 px the page is {overflow} px wider than the window")
        screenshot(driver, os.path.join(OUT, "narrow.png"))
        driver.set_window_size(1280, 900)

        # The scheduler goes away: the page says so and keeps its data, marked stale.
        procs.stop("serve")
        until("the stale indicator", lambda: css(driver, '#live[data-state="stale"]')
              and css(driver, "#offline") and css(driver, "#offline")[0].is_displayed(),
              detail=lambda: f"#status: {text(driver, '#status')!r}")
        if row(driver, "running", "default/etl") is None:
            raise Failure("the last data should stay on the page while the scheduler is unreachable")
        log(f"offline banner: {text(driver, '#offline')!r}")
    finally:
        driver.quit()
        if proxy:
            proxy.shutdown()
            proxy.server_close()


# ---------- sign-in and escaping, against a stub API serving the real assets ----------

EVIL = '<img src=x onerror="window.__xss=1">'

STUB_QUEUES = {"configurationError": "root.broken: spec.capability.cpu: \"lots\" is not a quantity", "queues": [
    {"name": "root", "object": None, "parent": None, "state": "Open", "weight": 1, "guarantee": {},
     "deserved": {}, "capability": None, "allocated": {"cpu": 2000}, "pending": {"cpu": 4000},
     "dominantShare": 0.06, "dominantResource": "cpu", "pendingJobs": 1, "runningJobs": 0, "topReasons": []},
    {"name": "root.x", "object": "x", "parent": "root", "state": "Closed", "weight": 1, "guarantee": {},
     "deserved": {"cpu": 8000}, "capability": {"cpu": 16000, "nvidia.com/gpu": 4},
     "allocated": {"cpu": 2000, "nvidia.com/gpu": 1}, "pending": {"cpu": 4000},
     "dominantShare": 0.25, "dominantResource": "nvidia.com/gpu", "pendingJobs": 1, "runningJobs": 0,
     "topReasons": [["over_capability", 1]]}]}
STUB_PENDING = {"jobs": [
    {"name": f"default/{EVIL}", "namespace": "default", "queue": "root.x", "state": "Pending",
     "pods": {"pending": 2, "assumed": 0, "bound": 0, "releasing": 0, "succeeded": 0, "failed": 0},
     "minMember": 2, "requests": {"cpu": 4000, "memory": 1536 * 1024 ** 2}, "created": "2026-01-01T00:00:00Z",
     "waitSeconds": 252.2, "reason": {"label": "over_capability", "message": EVIL + " " + "x" * 300},
     "position": 1, "estimatedStart": None, "estimateBasis": None}]}
STUB_EVENTS = {"events": [{"time": "2026-01-01T00:00:00Z", "kind": "eviction", "reason": "reclaim",
                           "queue": "root.x", "job": "default/old", "pods": 4, "message": EVIL}]}


class Stub(BaseHTTPRequestHandler):
    assets = {}

    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in self.assets:
            ctype, body = self.assets[path]
            return self.send(200, body, ctype)
        if not path.startswith("/api/v1/"):
            return self.send(404, {"error": "no such path"})
        auth = self.headers.get("Authorization", "")
        if auth == "Bearer weak-token":
            return self.send(403, {"error": 'user "bob" cannot list queues.scheduling.volcano.sh'})
        if auth != "Bearer good-token":
            return self.send(401, {"error": "a bearer token is needed"})
        answers = {
            "/api/v1/whoami": {"user": "alice", "auth": True},
            "/api/v1/queues": STUB_QUEUES,
            "/api/v1/events": STUB_EVENTS,
        }
        if path == "/api/v1/jobs":
            if "state=pending" not in self.path:
                return self.send(200, {"jobs": []})
            # A second job, expected to start in 12 minutes from now.
            soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 12 * 60 + 20))
            planned = dict(STUB_PENDING["jobs"][0], name="team/planned", position=2, estimatedStart=soon,
                           estimateBasis="reservation", reason={"label": "unschedulable", "message": "wait"})
            return self.send(200, {"jobs": [STUB_PENDING["jobs"][0], planned]})
        if path in answers:
            return self.send(200, answers[path])
        return self.send(404, {"error": "no such API"})


ASSETS = {"/": ("index.html", "text/html; charset=utf-8"), "/ui/app.js": ("app.js", "text/javascript"),
          "/ui/style.css": ("style.css", "text/css")}


def page_assets(admin_url):
    """The page's files: the binary's own, or with PHALANX_UI_DIR those of that folder (to work on
    the page without rebuilding; the API is still the binary's)."""
    out = {}
    ui_dir = os.environ.get("PHALANX_UI_DIR")
    for path, (file, ctype) in ASSETS.items():
        if ui_dir:
            with open(os.path.join(ui_dir, file), "rb") as f:
                out[path] = (ctype, f.read())
        else:
            with urllib.request.urlopen(admin_url + path, timeout=10) as r:
                out[path] = (r.headers.get("Content-Type", "text/plain"), r.read())
    return out


class Proxy(Stub):
    """The page's files from PHALANX_UI_DIR; everything else from the real admin port."""
    admin = None

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in self.assets:
            ctype, body = self.assets[path]
            return self.send(200, body, ctype)
        req = urllib.request.Request(self.admin + self.path)
        if self.headers.get("Authorization"):
            req.add_header("Authorization", self.headers["Authorization"])
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return self.send(r.status, r.read(), r.headers.get("Content-Type", "text/plain"))
        except urllib.error.HTTPError as e:
            return self.send(e.code, e.read(), e.headers.get("Content-Type", "text/plain"))
        except OSError:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)


def serve_in_thread(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def check_stub(admin_url):
    Stub.assets = page_assets(admin_url)
    server, url = serve_in_thread(Stub)
    url += "/"
    driver = browser()
    try:
        driver.get(url)
        until("the token box on 401", lambda: css(driver, "#auth") and css(driver, "#auth")[0].is_displayed()
              and css(driver, '#live[data-state="auth"]'), detail=lambda: f"{text(driver, '#banners')!r}")
        box = driver.find_element(By.ID, "token")
        box.send_keys("weak-token")
        box.submit()
        until("the 403 message", lambda: "may not read queues" in (text(driver, "#auth-message") or ""),
              detail=lambda: f"{text(driver, '#auth-message')!r}")
        box = driver.find_element(By.ID, "token")
        box.send_keys("good-token")
        box.submit()
        until("signed in as alice", lambda: "signed in as alice" in (text(driver, "#whoami") or ""),
              detail=lambda: f"{text(driver, '#whoami')!r} {text(driver, '#banners')!r}")
        if css(driver, "#auth")[0].is_displayed():
            raise Failure("the token box should hide once the token works")
        if driver.execute_script("return sessionStorage.getItem('phalanx.token')") != "good-token":
            raise Failure("the token is not kept in sessionStorage")
        if not css(driver, "#config-error")[0].is_displayed() or "root.broken" not in text(driver, "#config-error"):
            raise Failure(f"the configuration error banner: {text(driver, '#config-error')!r}")
        tr = until("the job with markup in its name", lambda: css(driver, "#pending tbody tr[data-job]"))[0]
        if EVIL not in tr.text or css(driver, "img") or driver.execute_script("return window.__xss === 1"):
            raise Failure(f"a job name or message was parsed as HTML: {tr.text!r}")
        for want in ("4m12s", "unknown", "over_capability", "1.5Gi"):
            if want not in tr.text:
                raise Failure(f"the pending row should show {want!r}: {tr.text!r}")
        planned = row(driver, "pending", "team/planned")
        if not planned or cell(planned, "position") != "2" or "in 12m" not in cell(planned, "estimate") \
                or cell(planned, "basis") != "by reservation":
            raise Failure(f"the estimated start should read 'in 12m', by reservation: {planned and planned.text!r}")
        gpu = css(driver, '#queues tr[data-queue="root.x"] [data-resource="nvidia.com/gpu"]')
        if not gpu or "1 / 4" not in gpu[0].text:
            raise Failure(f"root.x's gpu bar: {gpu[0].text if gpu else None!r}")
        if EVIL not in (text(driver, "#events tbody") or ""):
            raise Failure(f"the eviction message: {text(driver, '#events tbody')!r}")
        screenshot(driver, os.path.join(OUT, "stub.png"))
        # A reload keeps the token (same tab); forgetting it asks again.
        driver.refresh()
        until("signed in again after a reload", lambda: "alice" in (text(driver, "#whoami") or ""))
        driver.find_element(By.ID, "signout").click()
        until("the token box after forgetting the token", lambda: css(driver, "#auth")[0].is_displayed())
        check_no_js_errors(driver, "the stub page")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()


def main():
    # Killed (CI timeout, ^C): still stop what was started, in the `finally` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.access(BIN, os.X_OK):
        print(f"check_page: no binary at {BIN} (build with `cargo build --release`, or set PHALANX_BIN)",
              file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="phalanx-ui-")
    procs = Procs(tmp)
    ok = False
    try:
        cluster = Cluster(procs)
        cluster.start()
        log(f"emulator {cluster.emu}, admin {cluster.admin}")
        check_stub(cluster.admin)
        log("sign-in flow and escaping: ok")
        check_real(cluster, procs)
        log("the page against the real scheduler: ok")
        if os.environ.get("PHALANX_UPDATE_SCREENSHOT") == "1":
            dst = os.path.join(ROOT, "docs", "img", "queues.png")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(OUT, "queues.png"), dst)
            log(f"updated {os.path.relpath(dst, ROOT)}")
        ok = True
    except Failure as e:
        print(f"\ncheck_page FAILED: {e}", file=sys.stderr)
    except Exception:
        print("\ncheck_page FAILED with an unexpected error:", file=sys.stderr)
        traceback.print_exc()
    finally:
        if not ok:
            for name in ("serve", "emulator"):
                if name in procs.procs or os.path.exists(os.path.join(tmp, f"{name}.log")):
                    print(f"\n--- {name} log (tail) ---\n{procs.log(name)}", file=sys.stderr)
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
