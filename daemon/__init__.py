"""skilld daemon: configuration, telemetry ingestion, the pipeline and the command line."""
