"""Persistence: SQLAlchemy models, engine set-up, sealing repositories, unit of work."""
