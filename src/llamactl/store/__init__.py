"""SQLite persistence: one database in the data dir, a rollback journal (database.py says
why), versioned migrations."""
