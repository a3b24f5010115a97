"""The store: SQLAlchemy tables, engine set-up, the transactions, the declared reads and the seam (Store)."""
