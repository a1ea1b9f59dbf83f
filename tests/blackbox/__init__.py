"""Black-box tests of the fanout binary, plus their helpers (backend.py, fanout.py)."""
