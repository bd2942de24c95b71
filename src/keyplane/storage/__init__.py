"""SQLAlchemy-backed storage: tables, the SqlStore and Alembic migrations."""
