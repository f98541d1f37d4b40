"""dsd.protocol — the wire format between dsd clients and the daemon (placeholder, being written)."""
