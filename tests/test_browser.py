"""Real-browser tests: Debian's Chromium driven by playwright against a real server on loopback.

Each page loads with no console error, its charts render (SVG marks present), and the upload
form starts a replay whose result page appears. A screenshot per page is kept under
``artifacts/screenshots/``. Outside CI the tests skip when Chromium or playwright is missing; in
CI (``CI=true``) that is a failure.
"""

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import serve
from tests.test_perfetto import SCENARIO as CONTENDED
from tests.test_service import SMALL_SCENARIO

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MARKS = "g.mark-rect path, g.mark-line path, g.mark-symbol path, g.mark-rule line"


def _require_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if not Path(CHROMIUM).exists():
        missing.append("chromium (apt-get install chromium)")
    if missing:
        why = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_browser()
    results = {"ISOSCHED_RESULTS_DIR": str(ROOT / "docs" / "results-data")}
    proc, base = serve(tmp_path_factory.mktemp("browser"), env=results)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            tid = c.post("/v1/traces", json={"scenario": SMALL_SCENARIO, "seed": 2}).json()["id"]
            ids = {
                "replay": c.post(
                    "/v1/replays", json={"trace_id": tid, "hw": "edge-4x4", "policies": "all"}
                ).json()["id"],
                "sweep": c.post(
                    "/v1/sweeps",
                    json={
                        "scenario": SMALL_SCENARIO,
                        "hw": "edge-4x4",
                        "policies": "isosched,hasp,fcfs",
                        "scales": [1, 2],
                    },
                ).json()["id"],
                "plan": c.post("/v1/plans", json={"model": "resnet50", "hw": "edge-8x8"}).json()[
                    "id"
                ],
            }
            # a contended trace: preemptions, so checkpointing tiles to see on the chip
            ctid = c.post("/v1/traces", json={"scenario": CONTENDED, "seed": 3}).json()["id"]
            ids["contended"] = c.post(
                "/v1/replays", json={"trace_id": ctid, "hw": "edge-4x4", "policies": "isosched"}
            ).json()["id"]
            for jid in ids.values():
                t0 = time.time()
                while c.get(f"/v1/jobs/{jid}").json()["state"] not in ("done", "failed"):
                    assert time.time() - t0 < 180, f"job {jid} did not finish"
                    time.sleep(0.2)
                assert c.get(f"/v1/jobs/{jid}").json()["state"] == "done"
        yield base, ids
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    page.close()


def visit(page, url, name):
    """Load a page, wait for its charts, keep a screenshot; returns the number of chart marks."""
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_function("window.__chartsReady === true", timeout=20_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert page.errors == [], page.errors
    return page.locator(MARKS).count()


@pytest.mark.parametrize(
    ("name", "path", "charts"),
    [
        ("run", "/runs/{replay}", 3),
        ("gantt", "/runs/{replay}/gantt?policy=isosched&t0=0&t1=100", 1),
        ("sweep", "/sweeps/{sweep}", 3),
        ("home", "/", 2),
        ("plan", "/plans/{plan}", 1),
        ("results-table", "/results/fair/edge-8x8/ad_urban", 3),
    ],
)
def test_pages_render_charts_without_console_errors(server, page, name, path, charts):
    base, ids = server
    marks = visit(page, base + path.format(**ids), name)
    assert page.locator("div.chart svg").count() == charts
    assert marks > 0
    for svg in page.locator("div.chart svg").all():  # axis titles and a legend on every chart
        assert svg.locator("g.role-axis-title").count() >= 1
        assert svg.locator("g.role-legend").count() >= 1


def test_results_scoreboard_links_to_its_tables(server, page):
    base, _ = server
    visit(page, base + "/results", "results")
    link = page.locator('table.scoreboard a[href="/results/fair/edge-8x8/ad_urban"]')
    assert link.count() == 1
    link.click()
    page.wait_for_url(f"{base}/results/fair/edge-8x8/ad_urban")
    page.wait_for_function("window.__chartsReady === true")
    assert page.locator("div.chart svg").count() == 3
    assert page.errors == []


def test_home_and_sorting(server, page):
    base, ids = server
    visit(page, base + "/", "home")
    assert page.locator(f'a[href="/runs/{ids["replay"]}"]').count() == 1
    # the runs table (a replay of all seven policies among them) fits a 1280-pixel screen
    fits = page.evaluate(
        "() => { const w = document.querySelector('#runs-table').parentElement;"
        " return w.scrollWidth <= w.clientWidth; }"
    )
    assert fits
    page.goto(base + f"/runs/{ids['replay']}")
    page.wait_for_function("window.__chartsReady === true")
    header = page.locator("table.metrics th", has_text="energy (mJ)")
    col = page.locator("table.metrics th").all_text_contents().index(header.text_content())

    def column():
        cells = page.locator(f"table.metrics tbody tr td:nth-child({col + 1})")
        return [float(c.get_attribute("data-value")) for c in cells.all()]

    header.click()
    assert column() == sorted(column())
    header.click()
    assert column() == sorted(column(), reverse=True)
    assert page.errors == []


def test_upload_form_starts_a_replay_and_shows_its_result(server, page, tmp_path):
    base, _ = server
    with httpx.Client(base_url=base) as c:
        tid = c.post("/v1/traces", json={"scenario": SMALL_SCENARIO, "seed": 5}).json()["id"]
        trace = c.get(f"/v1/traces/{tid}").json()
    import json

    path = tmp_path / "upload.jsonl"
    lines = [json.dumps(trace["header"])] + [json.dumps(j) for j in trace["jobs"]]
    path.write_text("\n".join(lines) + "\n")
    visit(page, base + "/submit", "submit")
    form = page.locator("#replay-form")
    form.locator("input[name=trace_file]").set_input_files(str(path))
    form.locator("select[name=hw]").select_option("edge-4x4")
    form.locator("input[value=isosched]").check()
    form.locator("input[value=fcfs]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/runs/*", timeout=120_000)
    page.wait_for_function("window.__chartsReady === true", timeout=20_000)
    page.screenshot(path=str(SHOTS / "upload-result.png"), full_page=True)
    rows = page.locator("table.metrics tbody tr td:first-child").all_text_contents()
    assert sorted(rows) == ["fcfs", "isosched"]
    assert page.locator("div.chart svg").count() == 3
    assert page.errors == []


def test_chip_over_time_marks_checkpointing_tiles_and_plays(server, page):
    """The mesh at an instant: tiles in their stream's colour, checkpointing ones hatched; the
    slider and the play button move the instant, and the Gantt's rule follows."""
    base, ids = server
    rid = ids["contended"]
    with httpx.Client(base_url=base) as c:
        whole = c.get(f"/runs/{rid}/gantt", params={"policy": "isosched", "t0": 0, "t1": 1000})
    assert whole.status_code == 200
    import json

    chip = json.loads(chip_json(whole.text))
    ckpt = next(iv for iv in chip["intervals"] if iv[1] == "checkpoint")
    start, end = ckpt[2], ckpt[3]
    pad = max(end - start, 0.001)
    url = f"{base}/runs/{rid}/gantt?policy=isosched&t0={start - pad:.6f}&t1={end + pad:.6f}"
    visit(page, url, "chip")
    page.evaluate(
        """(t) => { const s = document.getElementById("chip-time");
                    s.value = t; s.dispatchEvent(new Event("input")); }""",
        (start + end) / 2,
    )
    kinds = page.locator("#chip-mesh rect.tile").evaluate_all("rs => rs.map(r => r.dataset.kind)")
    assert len(kinds) == 16 and "checkpoint" in kinds
    tile = page.locator('#chip-mesh rect.tile[data-kind="checkpoint"]').first
    job = next(j for j in chip["jobs"] if j["id"] == tile.get_attribute("data-job"))
    hatch = tile.locator("xpath=following-sibling::*[1]")
    assert hatch.get_attribute("visibility") == "visible"
    colours = json.loads(chip_json(page.content()))["colours"]
    assert tile.get_attribute("fill") == colours[job["stream"]]
    page.screenshot(path=str(SHOTS / "chip-checkpoint.png"), full_page=True)
    now = page.evaluate("window.__views.gantt.signal('now')")
    assert now == pytest.approx((start + end) / 2, abs=(end - start) / 500 + 1e-9)
    before = float(page.locator("#chip-time").input_value())
    page.locator("#chip-play").click()
    page.wait_for_function(
        f"Number(document.getElementById('chip-time').value) > {before}", timeout=10_000
    )
    page.locator("#chip-play").click()  # pause
    assert page.evaluate("window.__views.gantt.signal('now')") > before
    # a click on a job's bar moves the instant to the middle of that span
    page.locator("#gantt svg g.mark-rect path").first.click()
    t = float(page.locator("#chip-time").input_value())
    here = json.loads(chip_json(page.content()))
    step = (here["t1"] - here["t0"]) / 1000
    mids = [(iv[2] + iv[3]) / 2 for iv in here["intervals"]]
    assert min(abs(t - m) for m in mids) <= step
    # ◀ and ▶ step to the instants the chip changes, exactly
    changes = sorted(
        {c for iv in here["intervals"] for c in iv[2:4] if here["t0"] <= c <= here["t1"]}
    )
    page.locator("#chip-next").click()
    after = float(page.locator("#chip-time").input_value())
    assert after == pytest.approx(min(c for c in changes if c > t), rel=1e-12)
    page.locator("#chip-prev").click()
    assert float(page.locator("#chip-time").input_value()) == pytest.approx(
        max(c for c in changes if c < after), rel=1e-12
    )
    assert page.errors == []


def test_a_refused_form_says_why_and_stops_its_progress_bar(server, page):
    base, _ = server
    visit(page, base + "/submit", "submit-refused")
    form = page.locator("#sweep-form")
    form.locator("input[name=scales]").fill("1,,abc")
    form.locator("button[type=submit]").click()
    label = form.locator(".progress-label.error")
    label.wait_for(timeout=10_000)
    assert "load scales" in label.inner_text() and "not a positive number" in label.inner_text()
    assert form.locator("progress").is_hidden()
    # an emptied number field is refused by the form, not sent as 0
    replay = page.locator("#replay-form")
    replay.locator("input[name=seed]").fill("")
    replay.locator("button[type=submit]").click()
    assert replay.locator("input[name=seed]").evaluate("e => e.validity.valueMissing")
    assert replay.locator(".status").is_hidden()
    assert page.url == base + "/submit" and page.errors == []
    # any load scale the API takes is one the form takes
    replay.locator("input[name=scale]").fill("0.25")
    assert replay.locator("input[name=scale]").evaluate("e => e.validity.valid")


def test_a_double_click_starts_one_job(server, page):
    import json
    import urllib.request

    base, _ = server

    def jobs() -> int:
        with urllib.request.urlopen(base + "/v1/jobs?kind=plan&limit=500", timeout=10) as r:
            return len(json.loads(r.read()))

    before = jobs()
    visit(page, base + "/submit", "submit-double")
    form = page.locator("#plan-form")
    form.locator("button[type=submit]").dblclick()
    form.locator(".progress-label").filter(has_text="job").wait_for(timeout=10_000)
    page.wait_for_timeout(500)  # a second request, if one were sent, would be answered by now
    assert jobs() == before + 1


def test_plan_and_gantt_pages_fit_a_phone(server, browser):
    base, ids = server
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        for path in (f"/plans/{ids['plan']}", f"/runs/{ids['replay']}/gantt?policy=isosched"):
            response = phone.goto(base + path)
            assert response is not None and response.status == 200
            phone.wait_for_function("window.__chartsReady === true", timeout=20_000)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)  # wide meshes scroll inside their cards
        # the chip view's time readout stays inside its panel (its controls wrap)
        now = phone.locator("#chip-now").bounding_box()
        panel = phone.locator(".chip-panel").bounding_box()
        assert now is not None and panel is not None
        assert now["x"] + now["width"] <= panel["x"] + panel["width"] + 0.5, (now, panel)
    finally:
        phone.close()


def test_chart_titles_and_legends_fit_a_phone(server, browser):
    base, ids = server
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    outside = """() => [...document.querySelectorAll('div.chart svg')].flatMap((svg) => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('g.role-title text, g.role-legend text')]
            .map((t) => t.getBoundingClientRect())
            .filter((t) => t.left < box.left - 1 || t.right > box.right + 1)
            .map((t) => [t.left, t.right, box.left, box.right]);
    })"""
    wider_than_card = """() => [...document.querySelectorAll('div.chart.vega-embed')]
        .filter((d) => d.scrollWidth > d.clientWidth)
        .map((d) => [d.id, d.scrollWidth, d.clientWidth])"""
    # labels of one axis less than 2 px apart (the latency CDF's log axis ran "0.40.5" together)
    overlapping_labels = """() => [...document.querySelectorAll('div.chart svg g.role-axis')]
        .flatMap((axis) => {
            const boxes = [...axis.querySelectorAll('g.role-axis-label text')]
                .filter((t) => t.textContent && getComputedStyle(t).opacity !== '0')
                .map((t) => [t.textContent, t.getBoundingClientRect()]);
            const hit = [];
            for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                const [a, p] = boxes[i], [b, q] = boxes[j];
                if (p.left < q.right + 2 && q.left < p.right + 2 && p.top < q.bottom - 1
                    && q.top < p.bottom - 1) hit.push([a, b]);
            }
            return hit;
        })"""
    try:
        for path in (
            f"/sweeps/{ids['sweep']}",
            f"/runs/{ids['replay']}",
            f"/runs/{ids['contended']}/gantt?policy=isosched",
        ):
            response = phone.goto(base + path)
            assert response is not None and response.status == 200
            phone.wait_for_function("window.__chartsReady === true", timeout=20_000)
            assert phone.locator("div.chart svg g.role-title text").count() >= 1
            SHOTS.mkdir(parents=True, exist_ok=True)
            phone.screenshot(path=str(SHOTS / f"phone-{path.split('/')[1]}.png"), full_page=True)
            assert phone.evaluate(outside) == [], path  # titles break into lines; legends go below
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390, path
            # no chart is wider than its card (they overflowed it by its 8 px padding before)
            assert phone.evaluate(wider_than_card) == [], path
            assert phone.evaluate(overlapping_labels) == [], path
    finally:
        phone.close()


def test_a_job_followed_without_a_progress_bar_updates_its_state(server, page):
    """The home page's sentence about a pending sweep has a state badge and a label, no bar."""
    base, ids = server
    visit(page, base + "/", "home-follow")
    page.evaluate(
        """(jid) => {
            document.body.insertAdjacentHTML("beforeend", `<p id="probe">is
              <span class="state queued">queued</span><span class="progress-label"></span></p>`);
            const node = document.getElementById("probe");
            followJob(jid, null, node.querySelector(".progress-label"),
                      () => { window.__followed = true; },
                      { badge: node.querySelector(".state"), inline: true });
        }""",
        ids["sweep"],
    )
    page.wait_for_function("window.__followed === true", timeout=10_000)
    assert page.locator("#probe .state").text_content() == "done"
    assert page.locator("#probe .state").get_attribute("class") == "state done"
    assert page.errors == []


def test_unknown_policy_is_a_404_page(server, page):
    base, ids = server
    response = page.goto(f"{base}/runs/{ids['replay']}/gantt?policy=nosuch")
    assert response is not None and response.status == 404
    assert "no policy 'nosuch'" in page.locator("main").inner_text()
    assert page.locator("a[href='/']").count() >= 1


def test_nearest_point_tooltip_on_the_latency_cdf(server, page):
    """Hovering anywhere over the CDF shows the nearest point's tooltip, not only on the line."""
    base, ids = server
    visit(page, f"{base}/runs/{ids['replay']}", "run-tooltip")
    box = page.locator("#latency-cdf svg g.mark-line").first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5 + 7)
    page.wait_for_selector("#vg-tooltip-element.visible", timeout=5_000)
    assert "latency (ms)" in page.locator("#vg-tooltip-element").inner_text()


def test_perfetto_download_from_the_replay_page(server, page):
    base, ids = server
    visit(page, f"{base}/runs/{ids['replay']}", "run-download")
    with page.expect_download() as got:
        page.locator("a#perfetto").click()
    import json

    doc = json.loads(Path(got.value.path()).read_text(encoding="utf-8"))
    assert got.value.suggested_filename.endswith(".trace.json")
    assert any(e["ph"] == "X" and e.get("cat") == "tile" for e in doc["traceEvents"])


def test_api_docs_work_offline(server, page):
    """/docs draws the API from vendored Swagger UI files: no request leaves the machine."""
    base, _ = server
    outside: list[str] = []

    def only_local(route):
        url = route.request.url
        if url.startswith(base) or url.startswith("data:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_local)
    response = page.goto(base + "/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() >= 10
    page.screenshot(path=str(SHOTS / "docs.png"), full_page=False)
    assert outside == [] and page.errors == []


def chip_json(html):
    """The chip view's data embedded in a page."""
    found = re.search(r'id="chip-data">(.*?)</script>', html, re.S)
    assert found is not None
    return found.group(1)
