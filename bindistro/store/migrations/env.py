"""Alembic environment: the connection comes from migrate.upgrade(); no alembic.ini, no logging set-up."""
from alembic import context

connection = context.config.attributes["connection"]
# batch mode: SQLite cannot ALTER most things; Alembic copies the table instead
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
