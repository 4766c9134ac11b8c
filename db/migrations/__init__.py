"""Alembic migration environment for the verdict log (run through :func:`db.session.upgrade`)."""
