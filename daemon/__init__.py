"""dsd.daemon — the dsd service (being written)."""
