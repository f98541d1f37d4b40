"""dsd.client — client library (being written)."""
