"""The conformance suite: the same rpmsg tests over every transport backend (see conftest.py)."""
