"""The verdict log: the only package that knows SQL.

- :mod:`db.schema`: typed ORM tables (stations, operators, orders, cups, captures, coins, verdicts, labels, and the
  append-only relabel audit log).
- :mod:`db.session`: engines (SQLite under the station home by default, PostgreSQL by URL), session factories,
  Alembic upgrades (:func:`db.session.init_db`).
- :mod:`db.repository`: :class:`~db.repository.VerdictRepository` with ``log_verdict``, ``review_queue``,
  ``relabel``, ``training_export`` and ``gc_orphan_images``; the queue's query and score are in :mod:`db.review`,
  the ruling in force of each exported cup and coin in :mod:`db.export`.
- :mod:`db.spool`: :class:`~db.spool.SpoolingRepository`, which journals verdicts while the database is down.
- :mod:`db.records`: the frozen dataclasses that go in and come out; :mod:`db.store`: the content-addressed image
  files; :mod:`db.pins`: salted scrypt PIN hashes.
"""
