"""Schemathesis over the OpenAPI schema: no generated request may get a 5xx answer."""

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

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


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Chains of calls following the OpenAPI links (create, then read, cancel or delete)."""

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=[not_a_server_error])


def test_stateful_workflows_never_get_a_server_error():
    Workflow.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
