"""The isosched REST service (FastAPI) over the library: ``service.app.create_app``.

Nothing is imported here, so worker processes can load small modules of the package (such as
:mod:`service.niceness`) without the web stack.
"""
