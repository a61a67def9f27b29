"""The naive peer: the products list the way most Django code serves it (DRF, limit/offset)."""
