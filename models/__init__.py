"""Pure machine learning for cupcheck: no Qt, no SQL."""
