"""``POST /v1/match``: the placer's answer with its stop reason, in-process."""

import itertools

import pytest
from fastapi.testclient import TestClient

from isosched.match import mesh_target, placement_errors
from isosched.tilegraph import TileGraph
from service.app import create_app
from service.settings import Settings

TRI = {
    "schema": "isosched.tilegraph/v1",
    "vertices": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
    "edges": [{"src": "a", "dst": "b"}, {"src": "b", "dst": "c"}, {"src": "a", "dst": "c"}],
}


@pytest.fixture
def client(tmp_path):
    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, 1 << 20, workers=1))
    with TestClient(app) as c:
        yield c
    app.state.runner.shutdown()


def test_found_with_a_valid_placement(client):
    r = client.post("/v1/match", json={"pattern": TRI, "mesh": [4, 4], "hops": 2})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["found"] and doc["reason"] == "found" and isinstance(doc["nodes"], int)
    target = mesh_target(4, 4, 2)
    placement = {k: tuple(v) for k, v in doc["placement"].items()}
    assert placement_errors(TileGraph.from_doc(TRI), target, placement) == []


def test_impossible_is_an_answer_not_an_error(client):
    """A triangle on a bipartite mesh (h = 1): 200, found false, reason impossible."""
    r = client.post("/v1/match", json={"pattern": TRI, "mesh": [4, 4], "hops": 1})
    assert r.status_code == 200
    doc = r.json()
    assert not doc["found"] and doc["reason"] == "impossible" and doc["proved"]
    assert doc["placement"] == {}


def test_budget_stop_reports_nodes_and_partial(client):
    """A 12-vertex chain needs more than 3 nodes: a budget of 3 stops at exactly 3."""
    ids = [f"v{i}" for i in range(12)]
    chain = TileGraph.from_edges(ids, list(itertools.pairwise(ids))).to_doc()
    r = client.post(
        "/v1/match",
        json={"pattern": chain, "mesh": [8, 8], "hops": 1, "engine": "cp", "max_nodes": 3},
    )
    doc = r.json()
    assert not doc["found"] and doc["reason"] == "budget" and doc["nodes"] == 3
    assert doc["partial"] and not doc["wall_limited"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pattern": TRI, "mesh": [4, 4], "blocked": [[5, 0]]}, "outside the 4x4 mesh"),
        ({"pattern": {"vertices": 3}, "mesh": [4, 4]}, "vertices"),
        ({"pattern": TRI, "mesh": [4, 4], "budget_ms": 10_000}, "budget_ms"),
        ({"pattern": TRI, "mesh": [4, 4], "engine": "vf2"}, "engine"),
        # found by review: each was a 500 before
        (
            {"pattern": {**TRI, "edges": [{"src": ["a"], "dst": "b"}]}, "mesh": [4, 4]},
            "must be vertex ids",
        ),
        (
            {
                "pattern": {**TRI, "edges": [{"src": "a", "dst": "b", "bytes": 2**63}]},
                "mesh": [4, 4],
            },
            "'bytes' is above",
        ),
    ],
)
def test_bad_input_is_422_naming_the_problem(client, body, message):
    r = client.post("/v1/match", json=body)
    assert r.status_code == 422
    assert message in r.text


def test_an_unpaired_surrogate_escape_is_refused_not_a_500(client):
    """``"\\ud800"`` is valid JSON but no text: refused before it reaches the placer."""
    body = '{"pattern": {"vertices": [{"id": "\\ud800"}]}, "mesh": [2, 2]}'
    r = client.post("/v1/match", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert "surrogate" in r.text


def test_match_default_engine_is_the_placers_hybrid(client):
    """Without ``engine``, the service answers with the placer's online engine (cp+repair)."""
    chain = {
        "schema": "isosched.tilegraph/v1",
        "vertices": [{"id": v} for v in "abcd"],
        "edges": [{"src": a, "dst": b} for a, b in ("ab", "bc", "cd")],
    }
    r = client.post(
        "/v1/match", json={"pattern": chain, "mesh": [4, 4], "hops": 1, "max_nodes": 50}
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["found"] and doc["reason"] == "found" and doc["engine"] in ("cp", "repair")
    r = client.post(
        "/v1/match",
        json={"pattern": chain, "mesh": [4, 4], "hops": 1, "engine": "repair", "max_nodes": 50},
    )
    assert r.status_code == 200 and r.json()["engine"] == "repair"


PAIR = {
    "schema": "isosched.tilegraph/v1",
    "vertices": [{"id": "a"}, {"id": "b"}],
    "edges": [{"src": "a", "dst": "b"}],
}
#: A 4×1 mesh held by two jobs: A on the two left tiles (cost 5), B on the two right (cost 1).
HELD = [
    {"job": "A", "tiles": [[0, 0], [1, 0]], "cost": 5.0},
    {"job": "B", "tiles": [[2, 0], [3, 0]], "cost": 1.0},
]


@pytest.mark.parametrize("engine", ["cp+repair", "cp"])
def test_held_tiles_are_taken_from_the_cheapest_job(client, engine):
    """No tile is free: the pair goes on B's two tiles (cost 1), not on A's (5) nor across the
    two jobs (6); the answer names its victim and its cost."""
    body = {"pattern": PAIR, "mesh": [4, 1], "hops": 1, "held": HELD, "engine": engine}
    r = client.post("/v1/match", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["found"] and doc["reason"] == "found"
    assert sorted(map(tuple, doc["placement"].values())) == [(2, 0), (3, 0)]
    assert doc["victims"] == ["B"] and doc["preemption_cost"] == 1.0


def test_without_held_tiles_there_is_no_room_and_no_victim(client):
    """The same chip with B's tiles blocked and A's not offered: proved impossible."""
    body = {"pattern": PAIR, "mesh": [4, 1], "hops": 1, "blocked": [[0, 0], [1, 0], [2, 0]]}
    body["held"] = [{"job": "B", "tiles": [[3, 0]], "cost": 1.0}]
    doc = client.post("/v1/match", json=body).json()
    assert not doc["found"] and doc["reason"] == "impossible"
    assert doc["victims"] == [] and doc["preemption_cost"] == 0.0


@pytest.mark.parametrize(
    ("held", "blocked", "message"),
    [
        ([{"job": "A", "tiles": [[0, 0]], "cost": -1.0}], [], "greater than or equal to 0"),
        ([{"job": "A", "tiles": [[9, 0]], "cost": 1.0}], [], "outside the 4x1 mesh"),
        ([{"job": "A", "tiles": [[0, 0]], "cost": 1.0}], [[0, 0]], "already blocked or held"),
        ([*HELD, {"job": "C", "tiles": [[3, 0]], "cost": 1.0}], [], "already blocked or held"),
        ([*HELD, {"job": "A", "tiles": [[3, 0]], "cost": 1.0}], [], "named twice"),
        ([{"job": "", "tiles": [[0, 0]], "cost": 1.0}], [], "job"),
        # costs whose sums overflowed made the search "prove" that no placement exists
        ([{"job": "A", "tiles": [[0, 0], [1, 0]], "cost": 1e308}], [], "cost must be in 0..1e+18"),
    ],
)
def test_bad_held_tiles_are_422_naming_the_problem(client, held, blocked, message):
    body = {"pattern": PAIR, "mesh": [4, 1], "hops": 1, "held": held, "blocked": blocked}
    r = client.post("/v1/match", json=body)
    assert r.status_code == 422
    assert message in r.text


CHAIN3 = {
    "schema": "isosched.tilegraph/v1",
    "vertices": [{"id": v} for v in "abc"],
    "edges": [{"src": "a", "dst": "b", "bytes": 10}, {"src": "b", "dst": "c", "bytes": 10}],
}
LINE = {"a": [0, 0], "b": [1, 0], "c": [2, 0]}


def test_the_patterns_own_placement_is_tried_first(client):
    """Row 0 blocked: an image of the given line on another row answers, with no node; on a
    2×2 mesh no image fits and the online match bends the chain."""
    body = {"pattern": CHAIN3, "mesh": [4, 4], "hops": 1, "placement": LINE}
    body["blocked"] = [[x, 0] for x in range(4)]
    doc = client.post("/v1/match", json=body).json()
    assert doc["found"] and doc["engine"] == "library" and doc["nodes"] == 0
    placement = {k: tuple(v) for k, v in doc["placement"].items()}
    target = mesh_target(4, 4, 1, [(x, 0) for x in range(4)])
    assert placement_errors(TileGraph.from_doc(CHAIN3), target, placement) == []
    assert doc["cost"] == 20.0 and doc["victims"] == []
    doc = client.post("/v1/match", json={**body, "mesh": [2, 2], "blocked": []}).json()
    assert doc["found"] and doc["engine"] != "library" and doc["nodes"] >= 1


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        ({"a": [0, 0], "b": [1, 0], "c": [3, 0]}, "spans 2 hops > 1"),
        ({"a": [0, 0], "b": [1, 0]}, "every vertex"),
        ({"a": [0, 0], "b": [0, 0], "c": [1, 0]}, "two vertices on one tile"),
    ],
)
def test_a_bad_own_placement_is_422(client, placement, message):
    body = {"pattern": CHAIN3, "mesh": [4, 4], "hops": 1, "placement": placement}
    r = client.post("/v1/match", json=body)
    assert r.status_code == 422 and message in r.text
