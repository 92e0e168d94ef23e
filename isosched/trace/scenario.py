"""The ``isosched.scenario/v1`` format: periodic DNN streams of a multi-DNN workload."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from isosched.errors import IsoschedError

__all__ = ["SCENARIO_SCHEMA", "Scenario", "ScenarioError", "Stream", "parse_scenario"]

SCENARIO_SCHEMA = "isosched.scenario/v1"

#: Releases a scenario may produce (over all streams), to bound memory and replay time.
MAX_JOBS = 2_000_000

Ms = Annotated[float, Field(ge=0, le=86_400_000)]


class ScenarioError(IsoschedError):
    """A scenario is malformed: bad field, unknown dependency, dependency cycle, too many jobs."""


class Stream(BaseModel):
    """One periodic stream of inference jobs of one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    model: str = Field(min_length=1, max_length=512, description="Zoo name or graph file.")
    period_ms: Annotated[float, Field(gt=0, le=86_400_000)]
    phase_ms: Ms = 0.0
    jitter_ms: Ms = Field(default=0.0, description="Release jitter: uniform in ±jitter/2.")
    deadline_ms: Annotated[float, Field(gt=0, le=86_400_000)] = Field(
        description="Relative to each release."
    )
    priority: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        description="Higher is more urgent."
    )
    critical: bool = False
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    depends_on: str | None = Field(
        default=None, description="Stream whose job of the same frame must finish first."
    )
    source: str | None = Field(
        default=None, max_length=2048, description="Where the numbers come from."
    )


class Scenario(BaseModel):
    """A workload: named streams over a horizon."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["isosched.scenario/v1"] = Field(default="isosched.scenario/v1", alias="schema")
    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=8192)
    horizon_ms: Annotated[float, Field(gt=0, le=86_400_000)]
    streams: list[Stream] = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        ids = [s.id for s in self.streams]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate stream id {sorted(dup)[0]!r}")
        known = set(ids)
        for s in self.streams:
            if s.depends_on is not None and s.depends_on not in known:
                raise ValueError(f"stream {s.id!r} depends on unknown stream {s.depends_on!r}")
        parent = {s.id: s.depends_on for s in self.streams}
        for s in self.streams:
            seen: set[str] = set()
            cur: str | None = s.id
            while cur is not None:
                if cur in seen:
                    raise ValueError(f"dependency cycle through stream {s.id!r}")
                seen.add(cur)
                cur = parent[cur]
        jobs = sum(self.horizon_ms / s.period_ms for s in self.streams)
        if jobs > MAX_JOBS:
            raise ValueError(f"scenario releases about {jobs:,.0f} jobs; the limit is {MAX_JOBS:,}")
        return self


def parse_scenario(data: Any) -> Scenario:
    """Validate a decoded scenario document.

    Raises
    ------
    ScenarioError
        With the first offending field and the reason.
    """
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a JSON object")
    schema = data.get("schema")
    if schema is not None and schema != SCENARIO_SCHEMA:
        raise ScenarioError(f"unsupported scenario schema {schema!r}; expected {SCENARIO_SCHEMA!r}")
    try:
        # strict, as JSON: no "yes" for a boolean, no true for a priority
        return Scenario.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "scenario"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ScenarioError(f"scenario {where}: {msg}") from None
