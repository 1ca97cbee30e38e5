"""SQLite persistence: one database in the data dir, WAL, versioned migrations."""
