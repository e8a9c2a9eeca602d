"""Alembic environment for SpanLab's database.

core.storage runs the migrations programmatically (no alembic.ini): it builds an alembic Config in
code and passes an open connection in ``config.attributes["connection"]``. Without one, the URL in
``sqlalchemy.url`` (or core.config.database_url()) is used. ``target_metadata`` is the ORM schema in
core.storage, so ``alembic.command.revision(config, autogenerate=True)`` can draft a new migration.
"""
from alembic import context
from sqlalchemy import create_engine

from core.config import database_url
from core.storage import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url") or database_url(),
                      target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run_migrations(config.attributes["connection"])
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or database_url())
    try:
        with engine.begin() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()
