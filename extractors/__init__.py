"""skilld extractors: turning a valuable interaction into a reusable skill pattern."""
