"""Model-only measurements: parameters, serialised size, MACs, latency, peak memory."""
