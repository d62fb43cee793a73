"""NumPy/SciPy references and sample cases for ops_interp.c in test_ops.py's SPECS format."""

INTERP_SPECS = {}
