"""Test support shared by tests/service, tests/reliability and tests/scaling.

`tests/` is on sys.path (the top-level conftest.py sits there, outside any package), so these
modules are imported as `support.<module>` from any test directory.
"""
