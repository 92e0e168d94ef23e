"""IsoSched ablations: options of the one policy, each switching exactly one mechanism off."""

from __future__ import annotations

import pytest

from isosched.errors import IsoschedError
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.plan import PlanCache
from isosched.sim import PlanBook, Simulator, make_policy, summarize
from isosched.sim.engine import Run
from isosched.sim.policies import ABLATION_NAMES, POLICY_NAMES, parse_policies
from isosched.sim.policies.isosched import IsoSched
from isosched.trace import Job, Trace

HW = load_hardware("edge-8x8")
BOOK = PlanBook(HW, load_models(["gpt2_xl", "yolov3", "mobilenetv2"]), PlanCache())


def contended() -> Trace:
    """A GPT-2 XL prefill holding the chip, critical detections and small jobs arriving."""
    jobs = [Job("bg#0", "bg", "gpt2_xl", 0, 10**7, 1, False, None)]
    jobs += [
        Job(f"cam#{i}", "cam", "yolov3", 1000 + 3000 * i, 13_000 + 3000 * i, 9, True, None)
        for i in range(4)
    ]
    jobs += [
        Job(f"m#{i}", "m", "mobilenetv2", 500 + 700 * i, 20_500 + 700 * i, 3, False, None)
        for i in range(10)
    ]
    jobs.sort(key=lambda j: j.release_us)
    return Trace({"schema": "isosched.trace/v1", "seed": 0}, tuple(jobs))


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    trace = contended()
    return {
        p: Simulator(trace, HW, make_policy(p), BOOK).run() for p in ("isosched", *ABLATION_NAMES)
    }


def test_ablations_are_named_policies_outside_all():
    assert ABLATION_NAMES == (
        "isosched-no-preempt",
        "isosched-no-library",
        "isosched-rectangles",
        "isosched-no-lcs",
    )
    assert not set(ABLATION_NAMES) & set(POLICY_NAMES)
    assert parse_policies("isosched,isosched-rectangles") == ["isosched", "isosched-rectangles"]
    assert "isosched-no-preempt" not in parse_policies("all")
    for text, reason in [("fcfs,fcfs", "named twice"), ("all,fcfs", "stands alone"),
                         ("fcfs,", "empty policy name")]:  # fmt: skip
        with pytest.raises(IsoschedError, match=reason):
            parse_policies(text)
    assert [make_policy(n).name for n in ABLATION_NAMES] == list(ABLATION_NAMES)
    assert IsoSched().name == "isosched"
    with pytest.raises(IsoschedError, match="ablation"):
        make_policy("isosched-no-everything")


def test_no_preemption_never_preempts_and_loses_the_critical_jobs(runs):
    full, ablated = summarize(runs["isosched"]), summarize(runs["isosched-no-preempt"])
    assert full["preemptions"] > 0 and ablated["preemptions"] == 0
    assert ablated["critical_met"] < full["critical_met"]


def test_no_library_places_by_online_match_only(runs):
    full, ablated = summarize(runs["isosched"]), summarize(runs["isosched-no-library"])
    assert full["library_hits"] > 0
    assert ablated["library_hits"] == 0 and ablated["online_matches"] > 0


def test_rectangles_hold_whole_rectangles(runs):
    for js in runs["isosched-rectangles"].jobs:
        for iv in js.intervals:
            xs = [t[0] for t in iv["tiles"]]
            ys = [t[1] for t in iv["tiles"]]
            area = (max(xs) - min(xs) + 1) * (max(ys) - min(ys) + 1)
            assert area == len(iv["tiles"]), (js.id, iv)
    assert summarize(runs["isosched-rectangles"])["placements"] > 0


def test_no_lcs_runs_on_the_single_tile_plans_only(monkeypatch):
    asked: list[bool] = []
    real, real_all = PlanBook.job_plan, PlanBook.job_plans

    def spy(self, model, shape, lcs=True):
        asked.append(lcs)
        return real(self, model, shape, lcs)

    def spy_all(self, model, lcs=True):
        asked.append(lcs)
        return real_all(self, model, lcs)

    monkeypatch.setattr(PlanBook, "job_plan", spy)
    monkeypatch.setattr(PlanBook, "job_plans", spy_all)
    run = Simulator(contended(), HW, make_policy("isosched-no-lcs"), BOOK).run()
    assert asked and not any(asked)
    full = summarize(Simulator(contended(), HW, make_policy("isosched"), BOOK).run())
    ablated = summarize(run)
    assert ablated["placements"] > 0
    # One layer per tile leaves the pipeline unbalanced: the same jobs take longer.
    assert ablated["mean_finished_latency_ms"] > full["mean_finished_latency_ms"]
