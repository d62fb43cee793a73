"""NumPy/SciPy references and sample cases for ops_linalg_norms.c in test_ops.py's SPECS format."""

NORMS_SPECS = {}
