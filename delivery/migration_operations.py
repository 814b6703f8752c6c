"""Migration operations that keep webhooks flowing while they run."""

from django.db import migrations


class AddIndexConcurrently(migrations.AddIndex):
    """``AddIndex`` that, on PostgreSQL, builds the index with ``CREATE INDEX CONCURRENTLY``:
    writes to the table (every webhook's raw request) go on while it is built. Elsewhere a
    plain ``AddIndex``. The migration that uses it must set ``atomic = False``."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(self.index.create_sql(model, schema_editor, concurrently=True))
        else:
            schema_editor.add_index(model, self.index)


class AddUniqueIndexConcurrently(migrations.AddConstraint):
    """``AddConstraint`` of a conditional ``UniqueConstraint`` (Django makes it a unique
    index) that, on PostgreSQL, builds it with ``CREATE UNIQUE INDEX CONCURRENTLY``. The
    migration that uses it must set ``atomic = False``."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            schema_editor.add_constraint(model, self.constraint)
            return
        sql = str(self.constraint.create_sql(model, schema_editor))
        if not sql.startswith("CREATE UNIQUE INDEX "):
            raise ValueError(f"not a unique index: {sql}")
        schema_editor.execute(
            sql.replace("CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY", 1)
        )
