"""segments.Membership becomes SegmentMembership (tenants.Membership is a user's role in a team),
and its constraint and index names say "segment_membership" instead of "membership"."""

from django.db import migrations, models


class RenameUniqueConstraint(migrations.operations.base.Operation):
    """Rename a unique constraint. PostgreSQL renames it in place (with its index), so a big
    membership table is not re-indexed under a lock; other databases drop and re-add it."""

    def __init__(self, model_name, old, new):
        self.model_name, self.old, self.new = model_name, old, new

    def state_forwards(self, app_label, state):
        state.remove_constraint(app_label, self.model_name, self.old.name)
        state.add_constraint(app_label, self.model_name, self.new)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._rename(app_label, schema_editor, from_state, to_state, self.old, self.new)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._rename(app_label, schema_editor, from_state, to_state, self.new, self.old)

    def _rename(self, app_label, schema_editor, from_state, to_state, old, new):
        before = from_state.apps.get_model(app_label, self.model_name)
        after = to_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor == "postgresql":
            quote = schema_editor.quote_name
            schema_editor.execute(
                f"ALTER TABLE {quote(after._meta.db_table)}"
                f" RENAME CONSTRAINT {quote(old.name)} TO {quote(new.name)}"
            )
        else:
            schema_editor.remove_constraint(before, old)
            schema_editor.add_constraint(after, new)

    def describe(self):
        return f"Rename constraint {self.old.name} on {self.model_name} to {self.new.name}"


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0001_initial"),
    ]

    operations = [
        migrations.RenameModel(old_name="Membership", new_name="SegmentMembership"),
        migrations.RenameIndex(
            model_name="segmentmembership",
            new_name="segment_membership_contact_idx",
            old_name="membership_tenant_contact_idx",
        ),
        RenameUniqueConstraint(
            model_name="segmentmembership",
            old=models.UniqueConstraint(
                fields=("tenant", "segment", "contact"), name="membership_tenant_segment_contact"
            ),
            new=models.UniqueConstraint(
                fields=("tenant", "segment", "contact"),
                name="segment_membership_tenant_segment_contact",
            ),
        ),
    ]
