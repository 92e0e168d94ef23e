"""Dashboard pages in-process: every page renders from stored jobs; errors are HTML for browsers."""

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.test_service import SMALL_SCENARIO, wait_for

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash")
    app = create_app(Settings(f"sqlite:///{root / 'db.sqlite'}", root))
    client = TestClient(app)
    tid = client.post("/v1/traces", json={"scenario": SMALL_SCENARIO, "seed": 1}).json()["id"]
    ids = {
        "replay": client.post(
            "/v1/replays", json={"trace_id": tid, "hw": "edge-4x4", "policies": "isosched,hasp"}
        ).json()["id"],
        "sweep": client.post(
            "/v1/sweeps",
            json={"scenario": SMALL_SCENARIO, "hw": "edge-4x4", "policies": "hasp", "scales": [1]},
        ).json()["id"],
        "plan": client.post("/v1/plans", json={"model": "mobilenetv2", "hw": "edge-4x4"}).json()[
            "id"
        ],
    }
    for jid in ids.values():
        assert wait_for(client, jid)["state"] == "done"
    yield client, ids
    app.state.runner.shutdown()


def specs(html):
    """The Vega-Lite specs embedded in a page."""
    found = re.findall(
        r'<script type="application/json" class="chart-spec"[^>]*>(.*?)</script>', html, re.S
    )
    return [json.loads(s) for s in found]


def test_home_lists_jobs_with_links(site):
    client, ids = site
    page = client.get("/", headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for kind, prefix in (("replay", "/runs/"), ("sweep", "/sweeps/"), ("plan", "/plans/")):
        assert f'href="{prefix}{ids[kind]}"' in page.text
    assert "/static/vendor/vega-lite.min.js" in page.text and "cdn" not in page.text.lower()


def test_home_answers_with_lbt_curves_then_all_runs_filtered(site):
    client, ids = site
    page = client.get("/", headers=HTML).text
    charts = specs(page)
    titles = [c["title"] for c in charts]
    assert "latency-bound throughput against load" in titles[0]
    assert "critical deadline satisfaction against load" in titles[1]
    assert page.index("latency-bound throughput") < page.index("All runs")
    # each row says what it was
    assert "plan of mobilenetv2" in page and "replay of " in page and "sweep of " in page
    assert ">edge-4x4<" in page
    plans = client.get("/", params={"kind": "plan"}, headers=HTML).text
    assert f'href="/plans/{ids["plan"]}"' in plans and f'href="/runs/{ids["replay"]}"' not in plans
    chip = client.get("/", params={"hw": "edge-4x4"}, headers=HTML).text
    assert f'href="/runs/{ids["replay"]}"' in chip
    for bad in ({"kind": "nosuch"}, {"hw": "nosuch"}, {"scenario": "nosuch"}):
        got = client.get("/", params=bad, headers=HTML)
        assert got.status_code == 404 and got.headers["content-type"].startswith("text/html")


def test_run_page_has_table_with_units_and_three_charts(site):
    client, ids = site
    page = client.get(f"/runs/{ids['replay']}").text
    for header in ("satisfaction (%)", "p99 latency (ms)", "energy (mJ)", "LBT (jobs/s)"):
        assert header in page
    charts = specs(page)
    assert [c["title"].split(" ")[0] for c in charts] == ["Latency", "Deadline", "Energy"]
    assert f"/runs/{ids['replay']}/gantt?policy=hasp" in page


def test_gantt_page_windows_on_the_server(site):
    client, ids = site
    page = client.get(f"/runs/{ids['replay']}/gantt", params={"policy": "hasp", "t0": 20, "t1": 60})
    assert page.status_code == 200
    (spec,) = specs(page.text)
    bars = spec["layer"][0]["data"]["values"] + spec["layer"][1]["data"]["values"]
    assert bars and all(20 <= b["start_ms"] < b["end_ms"] <= 60 for b in bars)
    assert "t0=0&amp;t1=20" in page.text or "t0=0&t1=20" in page.text  # earlier window
    # one row per job, not per tile; bar height grows with the tiles held
    chip = json.loads(chip_json(page.text))
    assert chip["mesh"] == [4, 4] and chip["t0"] == 20 and chip["t1"] == 60
    rows = {b["row"] for b in bars}
    assert rows == set(range(len(chip["jobs"])))
    assert {b["job"] for b in bars} == {j["id"] for j in chip["jobs"]}
    assert all(b["y1"] - b["y0"] <= 0.85 + 1e-9 for b in bars)
    most = max(b["tiles"] for b in bars)
    for b in bars:
        assert b["y1"] - b["y0"] == pytest.approx(0.85 * max(b["tiles"] / most, 0.08))
    # stream colours are the same on every page and run
    assert set(chip["colours"]) == {j["stream"] for j in chip["jobs"]}
    bad = client.get(f"/runs/{ids['replay']}/gantt", params={"t0": 50, "t1": 10}, headers=HTML)
    assert bad.status_code == 422 and "t1 must be after t0" in bad.text


def test_a_crowded_window_is_cut_short_so_the_chip_view_has_every_job(site, monkeypatch):
    import functools

    import service.dashboard
    from isosched.report.details import chip_window

    client, ids = site
    monkeypatch.setattr(
        service.dashboard, "chip_window", functools.partial(chip_window, max_jobs=3)
    )
    page = client.get(
        f"/runs/{ids['replay']}/gantt", params={"policy": "hasp", "t0": 0, "t1": 100}, headers=HTML
    )
    assert page.status_code == 200 and "cut short" in page.text
    chip = json.loads(chip_json(page.text))
    assert 0 < chip["t1"] < 100 and len(chip["jobs"]) <= 3
    # every job holding tiles in the shown window is on the page
    art = client.app.state.store.get_artifacts(ids["replay"])["runs"]["hasp"]
    full, _, _ = chip_window(art, 0, int(chip["t1"] * 1e3), max_jobs=10_000)
    assert {j["id"] for j in full} == {j["id"] for j in chip["jobs"]}


def test_perfetto_download_and_unknown_policy(site):
    client, ids = site
    page = client.get(f"/runs/{ids['replay']}").text
    assert f'href="/runs/{ids["replay"]}/perfetto.json"' in page
    got = client.get(f"/runs/{ids['replay']}/perfetto.json")
    assert got.status_code == 200
    assert got.headers["content-disposition"].startswith("attachment; filename=")
    assert got.headers["content-encoding"] == "gzip"  # the client asked for it
    plain = client.get(
        f"/runs/{ids['replay']}/perfetto.json", headers={"accept-encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers and plain.json() == got.json()
    doc = got.json()
    procs = [e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"]
    assert procs == ["isosched", "hasp"]
    assert any(e.get("cat") == "scheduler" and e["args"]["why"] for e in doc["traceEvents"])
    nosuch = client.get(f"/runs/{ids['replay']}/gantt", params={"policy": "nosuch"}, headers=HTML)
    assert nosuch.status_code == 404 and nosuch.headers["content-type"].startswith("text/html")
    assert "no policy &#39;nosuch&#39;" in nosuch.text
    assert client.get(f"/runs/{ids['plan']}/perfetto.json", headers=HTML).status_code == 404


def test_sweep_and_plan_pages(site):
    client, ids = site
    sweep = client.get(f"/sweeps/{ids['sweep']}").text
    assert "LBT capacity (load ×)" in sweep
    marks = [[layer["mark"]["type"] for layer in c["layer"]] for c in specs(sweep)]
    assert len(marks) == 3 and all("rule" in m and "line" in m for m in marks)
    plan = client.get(f"/plans/{ids['plan']}").text
    assert "II (cycles)" in plan
    assert "initiation interval" in plan and "is the time from the segment" in plan
    (mesh,) = specs(plan)
    assert "segment 0 (of 0.." in mesh["title"]
    found = re.search(r"segment 0 \(of 0\.\.(\d+)\)", mesh["title"])
    assert found is not None
    n = int(found.group(1))
    last = client.get(f"/plans/{ids['plan']}", params={"segment": n}).text
    assert f"segment {n} (of 0..{n})" in specs(last)[0]["title"]
    beyond = client.get(f"/plans/{ids['plan']}", params={"segment": n + 1}, headers=HTML)
    assert beyond.status_code == 404 and f"segments 0–{n}" in beyond.text
    # a query value of the wrong type is an HTML page for a browser, JSON for the API
    for bad in ({"segment": "abc"}, {"segment": -1}):
        page = client.get(f"/plans/{ids['plan']}", params=bad, headers=HTML)
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        assert "query.segment" in page.text
    gantt = client.get(f"/runs/{ids['replay']}/gantt", params={"t0": "abc"}, headers=HTML)
    assert gantt.status_code == 422 and gantt.headers["content-type"].startswith("text/html")
    api = client.get("/v1/jobs", params={"limit": "abc"})
    assert api.status_code == 422 and api.json()["detail"].startswith("query.limit")


def test_replays_say_their_load_scale_and_seed(site):
    client, ids = site
    home = client.get("/", headers=HTML).text
    assert "replay of svc ×1, seed 1" in home
    run = client.get(f"/runs/{ids['replay']}", headers=HTML).text
    assert "Replay of svc at ×1 on edge-4x4" in run
    # a one-scale sweep is "×1", not "×1–1"
    assert "sweep of svc ×1," in home and "×1–1" not in home


def test_a_finished_or_cancelled_job_page_follows_nothing(site):
    client, ids = site
    for page in (f"/runs/{ids['replay']}", f"/sweeps/{ids['sweep']}", f"/plans/{ids['plan']}"):
        assert "data-follow-job" not in client.get(page, headers=HTML).text
    # the block of an unfinished job page: only a queued or running job is followed (the page
    # script writes to its progress label, which only those have)
    from service.dashboard import templates

    pending = templates.env.get_template("macros.html").module.pending  # type: ignore[attr-defined]
    for state in ("queued", "running", "cancelled", "failed"):
        job = {"id": "j1", "kind": "replay", "state": state, "error": None, "progress": None}
        block = str(pending(job))
        live = state in ("queued", "running")
        assert ('data-follow-job="j1"' in block) == live
        assert ('class="progress-label' in block) == live


def test_home_follows_the_sweep_that_will_draw_its_first_curves(tmp_path):
    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path))
    try:
        store = app.state.store
        jid = store.add_job("sweep", {"scenario": "ad_urban", "hw": "edge-8x8", "scales": [4, 8]})
        store.set_job(jid, "running")
        store.set_progress(jid, "point 3/14: hasp ×8", 0.2)
        home = TestClient(app).get("/", headers=HTML).text
        assert "No sweep has finished yet" in home
        # the page script follows the job: its state badge and progress label, reloaded when done
        follow = re.search(r'<span data-follow-job="([^"]+)">(.*?);\s*this page', home, re.S)
        assert follow is not None and follow.group(1) == jid
        assert '<span class="state running">running</span>' in follow.group(2)
        assert '<span class="progress-label"> (point 3/14: hasp ×8)</span>' in follow.group(2)
    finally:
        app.state.runner.shutdown()


def test_submit_page_and_errors(site):
    client, ids = site
    page = client.get("/submit").text
    for form in ('data-kind="replay"', 'data-kind="plan"', 'data-kind="sweep"'):
        assert form in page
    assert 'value="ad_urban"' in page and "edge-8x8" in page
    missing = client.get("/runs/nope", headers=HTML)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    # a replay id on the plan page is not a plan
    assert client.get(f"/plans/{ids['replay']}", headers=HTML).status_code == 404
    # the API keeps answering JSON
    assert client.get("/v1/jobs/nope", headers=HTML).json()["detail"] == "no job 'nope'"
    assert client.get("/static/vendor/LICENSE-vega.txt").status_code == 200


def test_api_docs_are_served_from_vendored_files(site):
    """/docs works offline: Swagger UI's files come from /static, none from another host."""
    client, _ = site
    page = client.get("/docs")
    assert page.status_code == 200
    srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in srcs
    assert "/static/vendor/swagger-ui/swagger-ui.css" in srcs
    assert all(s.startswith("/") and not s.startswith("//") for s in srcs), srcs
    for s in srcs:
        assert client.get(s).status_code == 200, s
    assert client.get("/static/vendor/swagger-ui/LICENSE").status_code == 200


def chip_json(html):
    """The chip view's data embedded in a page."""
    found = re.search(r'id="chip-data">(.*?)</script>', html, re.S)
    assert found is not None
    return found.group(1)


RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results-data"


@pytest.fixture(scope="module")
def results_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    app = create_app(Settings(f"sqlite:///{root / 'db.sqlite'}", root, results_dir=RESULTS))
    yield TestClient(app)
    app.state.runner.shutdown()


def test_results_page_shows_the_scoreboard_of_the_shipped_data(results_site):
    page = results_site.get("/results", headers=HTML)
    assert page.status_code == 200
    index = json.loads((RESULTS / "index.json").read_text())
    with_isosched = [e for e in index if "isosched" in e["lbt_capacity"]]
    # one linked row per table, and a tally row per physics setting
    for e in with_isosched:
        assert f'href="/results/{e["physics"]}/{e["hw"]}/{e["scenario"]}"' in page.text
    assert page.text.count("wins / ties / losses") == len({e["physics"] for e in with_isosched})
    assert '<a href="/results">Results</a>' in page.text  # in the navigation


def test_a_results_table_page_has_capacities_and_three_charts(results_site):
    e = json.loads((RESULTS / "index.json").read_text())[0]
    page = results_site.get(f"/results/{e['physics']}/{e['hw']}/{e['scenario']}", headers=HTML)
    assert page.status_code == 200
    assert len(specs(page.text)) == 3
    assert e["code"]["commit"][:12] in page.text
    for policy, cap in e["lbt_capacity"].items():
        assert f"<td>{policy}</td>" in page.text
        assert f'data-value="{cap["value"]}"' in page.text
    nosuch = results_site.get(f"/results/{e['physics']}/{e['hw']}/nosuch", headers=HTML)
    assert nosuch.status_code == 404 and "text/html" in nosuch.headers["content-type"]


def test_results_page_without_data_says_how_to_make_it(tmp_path):
    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, results_dir=None))
    try:
        page = TestClient(app).get("/results", headers=HTML)
        assert page.status_code == 200 and "isosched results" in page.text
        assert (
            TestClient(app).get("/results/fair/edge-8x8/ad_urban", headers=HTML).status_code == 404
        )
    finally:
        app.state.runner.shutdown()


def test_results_pages_survive_a_missing_or_broken_table(tmp_path):
    data = tmp_path / "data"
    (data / "fair" / "edge-8x8").mkdir(parents=True)
    index = json.loads((RESULTS / "index.json").read_text())
    good = index[0]
    src = RESULTS / good["physics"] / good["hw"] / f"{good['scenario']}.json"
    dst = data / good["physics"] / good["hw"] / f"{good['scenario']}.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(src.read_text())
    broken = {**good, "scenario": "broken"}
    (dst.parent / "broken.json").write_text("{not json")
    missing = {**good, "scenario": "missing"}
    (data / "index.json").write_text(json.dumps([good, broken, missing]))
    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, results_dir=data))
    try:
        client = TestClient(app)
        page = client.get("/results", headers=HTML)
        assert page.status_code == 200 and f'/{good["scenario"]}"' in page.text
        assert "/broken" not in page.text and "/missing" not in page.text
        for name in ("broken", "missing"):
            got = client.get(f"/results/{good['physics']}/{good['hw']}/{name}", headers=HTML)
            assert got.status_code == 404
    finally:
        app.state.runner.shutdown()


def test_results_table_shows_every_stream_where_the_policies_part(results_site):
    doc = json.loads((RESULTS / "fair" / "edge-8x8" / "ad_urban.json").read_text())["sweep"]
    iso = {c["scale"]: c for c in doc["policies"]["isosched"]["curve"]}
    # by default the first grid scale at which some policy misses 99 %
    grid = sorted(iso)
    part = next(
        x
        for x in grid
        if any(
            {c["scale"]: c for c in b["curve"]}[x]["satisfaction"] < 0.99
            for b in doc["policies"].values()
        )
    )
    page = results_site.get("/results/fair/edge-8x8/ad_urban", headers=HTML).text
    assert f"Satisfaction by stream at ×{part:g}" in page
    for sid, got in iso[part]["streams"].items():
        assert f"<td>{sid}</td>" in page
        assert f'data-value="{got["satisfaction"]}"' in page
    other = results_site.get("/results/fair/edge-8x8/ad_urban?scale=1", headers=HTML).text
    assert "Satisfaction by stream at ×1 " in other
    bad = results_site.get("/results/fair/edge-8x8/ad_urban?scale=3.3", headers=HTML)
    assert bad.status_code == 404 and "not a grid scale" in bad.text
