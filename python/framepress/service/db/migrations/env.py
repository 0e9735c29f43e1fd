"""Alembic environment: always handed a live connection by `framepress.service.db.migrate`."""
from alembic import context

from framepress.service.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `framepress db upgrade`")
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
