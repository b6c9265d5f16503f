"""Telemetry sources: finding files, following them safely, and waking up when they change."""
