"""Schemathesis over the OpenAPI schema: every check passes on every operation.

Every check runs: no 5xx, status codes, content types, headers and bodies as documented (one
error model for all 4xx), ``Allow`` on 405, invalid data refused. One exception: "schema-valid
data is accepted" is not asked of the operations whose content has rules no JSON Schema can
state — a graph without cycles, a valid ONNX file, a trace in release order, a scenario whose
size after ``scale`` is within the service's limits, a valid tile graph to match, a ``hw`` naming
stored hardware; they answer 422 naming the rule (docs/reliability.md). Likewise a preset's name
is a valid ``DELETE /v1/hardware/{name}`` but presets are read-only: 405 with ``Allow: GET``.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from service.app import create_app
from service.settings import Settings

# One app for the module, built at import because the schema parametrises the test.
_ROOT = Path(tempfile.mkdtemp(prefix="isosched-fuzz-"))
APP = create_app(Settings(f"sqlite:///{_ROOT / 'db.sqlite'}", _ROOT, 1 << 20, workers=1))
atexit.register(shutil.rmtree, _ROOT, True)
atexit.register(APP.state.runner.shutdown)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx, value):
    return str(value).encode("utf-8", "surrogatepass")


@schemathesis.serializer("application/onnx")
def _onnx(_ctx, value):
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

#: Operations whose content has rules beyond their JSON Schema (see the module's docstring).
SEMANTIC = {
    "POST /v1/graphs",
    "POST /v1/hardware",
    "POST /v1/traces",
    "POST /v1/plans",
    "POST /v1/replays",
    "POST /v1/sweeps",
    "DELETE /v1/hardware/{name}",
    "POST /v1/match",
}


def _excluded(case):
    return [positive_data_acceptance] if case.operation.label in SEMANTIC else []


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_check_passes(case):
    case.call_and_validate(excluded_checks=_excluded(case))


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Chains of calls following the OpenAPI links (create, then read, cancel or delete)."""

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, excluded_checks=_excluded(case))


def test_stateful_workflows_pass_every_check():
    Workflow.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
