"""NumPy/SciPy references and sample cases for ops_lapack_ext.c in test_ops.py's SPECS format."""

LAPACK_EXT_SPECS = {}
