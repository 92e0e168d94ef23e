"""The isosched REST service (FastAPI) over the library."""

from service.app import create_app

__all__ = ["create_app"]
