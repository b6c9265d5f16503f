"""Vector stores: one small interface, Qdrant Edge (embedded default) and a Qdrant server (qdrant-client)."""
