"""Commands registered on `framepress` (filled in by its owner)."""
from . import cli  # noqa: F401
