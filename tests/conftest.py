"""Test-wide settings: plans are cached under a temporary directory, never in the home cache."""

import os
import tempfile

# Set before any test imports the library or starts a subprocess (they inherit it), so that the
# suite neither reads plans a developer cached nor writes into ~/.cache.
os.environ.setdefault("ISOSCHED_CACHE_DIR", tempfile.mkdtemp(prefix="isosched-test-cache-"))
