"""skilld storage: the SQLite event store and, later, vectors, skills and datasets."""
