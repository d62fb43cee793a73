"""NumPy/SciPy references and sample cases for ops_contract.c in test_ops.py's SPECS format."""

CONTRACT_SPECS = {}
