"""NumPy/SciPy references and sample cases for ops_sort.c in test_ops.py's SPECS format."""

SORT_SPECS = {}
