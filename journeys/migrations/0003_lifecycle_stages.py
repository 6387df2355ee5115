"""Branch nodes embed segment rules (journeys/kinds/branches.py): those naming the old lifecycle
stages name the six stages instead, with the mapping segments 0004 applies to segments."""

from importlib import import_module

from django.db import migrations

stages = import_module("segments.migrations.0004_lifecycle_stages")


def _nodes_rewrite(apps, mapping):
    Node = apps.get_model("journeys", "Node")
    for node in Node.objects.all().only("pk", "settings").iterator():
        settings, changed = stages.rewrite(node.settings, mapping)
        if changed:
            Node.objects.filter(pk=node.pk).update(settings=settings)


def forward(apps, schema_editor):
    _nodes_rewrite(apps, stages.NEW)


def backward(apps, schema_editor):
    _nodes_rewrite(apps, stages.OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0002_tenant_keys"),
        ("segments", "0004_lifecycle_stages"),
    ]

    operations = [migrations.RunPython(forward, backward)]
