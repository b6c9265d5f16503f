"""Format adapters: each turns one telemetry stream's records into Readings of an Interaction."""
