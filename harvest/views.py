"""SQL views over kb.db: the stable query surface that canned queries and users select from.

VIEWS maps a view name to (tables it needs, SELECT statement). `store.ensure_db_shape`
creates each view only where its tables exist, and replaces it when its SQL changes.
"""

VIEWS = {}
