"""The schema revision this code expects (the Alembic head).

Kept as a constant so the first service call checks the schema with one
plain SELECT instead of importing Alembic; tests/test_migrations.py checks it
equals the head of lume_services/migrations. Update it with every migration.
"""

SCHEMA_REVISION = "0009"
