"""Segment rules that name the old lifecycle stages (visitor, lead, customer, repeat) name the
six stages instead (audience 0015, docs/lifecycle.md), so every segment keeps validating and
keeps meaning what it meant as nearly as the new stages allow:

    visitor  → awareness (anonymous)
    lead     → acquisition (identified, not a customer)
    customer → onboarding, engagement, retention, advocacy (everyone who has become a customer)
    repeat   → engagement, retention, advocacy (customers past their first weeks)
"""

from django.db import migrations

NEW = {
    "visitor": ["awareness"],
    "lead": ["acquisition"],
    "customer": ["onboarding", "engagement", "retention", "advocacy"],
    "repeat": ["engagement", "retention", "advocacy"],
}
STAGES = ["awareness", "acquisition", "onboarding", "engagement", "retention", "advocacy"]


def rewrite(node, mapping):
    """The rule tree with every lifecycle condition's stages mapped; (tree, changed)."""
    if isinstance(node, list):
        pairs = [rewrite(child, mapping) for child in node]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    if not isinstance(node, dict):
        return node, False
    changed = False
    out = {}
    for key, value in node.items():
        out[key], moved = rewrite(value, mapping)
        changed = changed or moved
    value = node.get("value")
    if node.get("type") == "lifecycle" and isinstance(value, list):
        if any(v in mapping for v in value):
            mapped = {s for v in value for s in mapping.get(v, [v])}
            out["value"] = sorted(mapped)
            changed = True
    return out, changed


def segments_forward(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    for segment in Segment.objects.all().only("pk", "rules").iterator():
        rules, changed = rewrite(segment.rules, NEW)
        if changed:
            Segment.objects.filter(pk=segment.pk).update(rules=rules)


OLD = {
    "awareness": ["visitor"],
    "acquisition": ["lead"],
    "onboarding": ["customer"],
    "engagement": ["customer", "repeat"],
    "retention": ["customer", "repeat"],
    "advocacy": ["customer", "repeat"],
}


def segments_backward(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    for segment in Segment.objects.all().only("pk", "rules").iterator():
        rules, changed = rewrite(segment.rules, OLD)
        if changed:
            Segment.objects.filter(pk=segment.pk).update(rules=rules)


class Migration(migrations.Migration):
    dependencies = [
        ("audience", "0015_lifecycle_stages"),
        ("segments", "0003_tenant_keys"),
    ]

    operations = [migrations.RunPython(segments_forward, segments_backward, elidable=False)]
