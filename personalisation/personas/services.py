"""Writes for personas: requesting a run, running it (the worker's job), and saving a persona as
a live segment through segments' services."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from threadpoolctl import threadpool_limits

from accounts.models import User
from personalisation.personas import clustering, features
from personalisation.personas.models import PersonaRun
from segments import registry as segment_kinds
from segments import selectors as segment_selectors
from segments import services as segment_services
from segments.models import Segment
from tenants.models import Tenant

MIN_CONTACTS = 50  # fewer, and "personas" would be a handful of individuals
SAMPLE_MAX = 50_000  # contacts clustered at most; a bigger team is sampled
# Read behaviour in one pass over the team's rows while the sample is at least this share of it
# (features.behaviour_read's `scan`), by index probes per chunk of the sample beyond.
SCAN_RATIO = 4
STALE_AFTER = timedelta(hours=1)  # a run queued or running this long is taken as lost
SEED = clustering.RANDOM_STATE


def _stale_runs_fail(tenant: Tenant) -> None:
    PersonaRun.objects.filter(
        tenant=tenant,
        status__in=[PersonaRun.Status.QUEUED, PersonaRun.Status.RUNNING],
        created_at__lt=timezone.now() - STALE_AFTER,
    ).update(
        status=PersonaRun.Status.FAILED,
        message="The run did not finish within an hour (was the worker stopped?). Run it again.",
        finished_at=timezone.now(),
    )


def persona_run_request(*, tenant: Tenant, user: User | None, k: int | None = None) -> PersonaRun:
    """Queue a clustering run of the team's contacts (`k` personas, or the best of 3 to 6). One run
    at a time per team: ValidationError while another is queued or running."""
    if k is not None and not (2 <= k <= clustering.K_MAX):
        raise ValidationError({"k": f"Choose from 2 to {clustering.K_MAX} personas, or Auto."})
    from personalisation.personas.tasks import persona_run_task  # the task imports this module

    with transaction.atomic():
        _stale_runs_fail(tenant)
        # Lock the team's in-progress runs: two requests at once make one run, not two.
        busy = PersonaRun.objects.select_for_update().filter(
            tenant=tenant, status__in=[PersonaRun.Status.QUEUED, PersonaRun.Status.RUNNING]
        )
        if list(busy.values_list("pk", flat=True)):
            raise ValidationError(
                "A run is in progress already: wait for it to finish.", code="busy"
            )
        run = PersonaRun.objects.create(tenant=tenant, requested_by=user, requested_k=k)
        transaction.on_commit(lambda: persona_run_task.delay(tenant.pk, str(run.public_id)))
    return run


def _rules_words(tree: dict[str, Any]) -> str:
    def words(node: dict[str, Any]) -> str:
        if node["type"] == "group":
            joiner = " and " if node["match"] == "all" else " or "
            inner = joiner.join(words(child) for child in node["children"])
            return f"({inner})" if len(node["children"]) > 1 else inner
        return segment_kinds.get(node["type"]).describe(node, {})

    text = words(tree)
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


def _finish(run: PersonaRun, status: str, message: str = "", **fields: Any) -> PersonaRun:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    for name, value in fields.items():
        setattr(run, name, value)
    run.save()
    return run


def persona_run_execute(*, tenant: Tenant, run: PersonaRun) -> PersonaRun:
    """Cluster the team's contacts (a sample of SAMPLE_MAX for a big team) and record the
    personas on `run`. Safe to call twice: only a queued run is taken."""
    claimed = PersonaRun.objects.filter(
        tenant=tenant, pk=run.pk, status=PersonaRun.Status.QUEUED
    ).update(status=PersonaRun.Status.RUNNING, started_at=timezone.now())
    run.refresh_from_db()
    if not claimed:
        return run
    began = time.perf_counter()
    try:
        # One thread for the numeric libraries: the worker shares its cores with the rest of
        # the product, and OpenMP's threads fighting over two busy cores made k-means of 2,000
        # contacts take 22 s instead of 0.4 s (threadpoolctl, a scikit-learn dependency).
        with threadpool_limits(limits=1):
            return _execute(tenant, run, began)
    except Exception as exc:
        _finish(run, PersonaRun.Status.FAILED, f"The run failed: {exc}")
        raise


def _execute(tenant: Tenant, run: PersonaRun, began: float) -> PersonaRun:
    now = timezone.now()
    ids, total = features.contact_ids_sample(tenant=tenant, size=SAMPLE_MAX, seed=SEED)
    if total < MIN_CONTACTS:
        return _finish(
            run,
            PersonaRun.Status.TOO_FEW,
            f"Personas group contacts who behave alike, which needs at least {MIN_CONTACTS} "
            f"contacts; this team has {total}. Import contacts or track your site, then run "
            "again.",
            contacts_total=total,
        )
    behaviours = features.behaviour_read(
        tenant=tenant, contact_ids=ids, now=now, scan=total <= SCAN_RATIO * len(ids)
    )
    categories = features.top_categories(behaviours, clustering.TOP_CATEGORIES)
    data = clustering.matrix(behaviours, categories)
    distinct = len(np.unique(data, axis=0))
    if distinct < 3:
        return _finish(
            run,
            PersonaRun.Status.TOO_FEW,
            f"All {total} contacts behave alike so far (no orders, views or email activity "
            "tells them apart): there is nothing to group yet. Run again once your site and "
            "messages have recorded some behaviour.",
            contacts_total=total,
            sample_size=len(behaviours),
        )
    k = min(run.requested_k, distinct - 1) if run.requested_k else None
    fit = clustering.cluster(data, k=k)
    baseline = clustering.Baseline.of(behaviours)
    scale = total / len(behaviours)
    rule_features = clustering.rule_features(categories)
    rule_data = clustering.rule_matrix(behaviours, rule_features)
    clusters: list[dict[str, Any]] = []
    members: list[list[int]] = []
    for label in sorted(set(fit.labels.tolist())):
        in_cluster = fit.labels == label
        group = [b for b, inside in zip(behaviours, in_cluster, strict=True) if inside]
        figures = clustering.figures(group, categories)
        approx = clustering.approximate(rule_data, in_cluster, rule_features)
        try:
            rules = segment_services.segment_rules_check(tenant=tenant, rules=approx.rules)
        except segment_services.SegmentError:
            rules = None
        clusters.append(
            {
                "label": clustering.describe(figures, baseline),
                "summary": clustering.summary(figures),
                "size": round(len(group) * scale),
                "sample": len(group),
                "share": round(len(group) / len(behaviours), 4),
                "figures": figures,
                "rules": rules,
                "rules_words": _rules_words(rules) if rules else "",
                "capture": {
                    "captured": round(approx.captured / len(group), 4),
                    "spill": round(approx.spill * scale),
                    "matches": round(int(approx.selected.sum()) * scale),
                },
            }
        )
        members.append([b.contact_id for b in group])
    order = sorted(range(len(clusters)), key=lambda i: -clusters[i]["sample"])
    labels = clustering.unique_labels([clusters[i]["label"] for i in order])
    ordered, kept = [], {}
    for index, (i, label) in enumerate(zip(order, labels, strict=True)):
        ordered.append({**clusters[i], "index": index, "label": label})
        kept[str(index)] = members[i]
    return _finish(
        run,
        PersonaRun.Status.DONE,
        k=fit.k,
        contacts_total=total,
        sample_size=len(behaviours),
        silhouette=fit.silhouette,
        clusters=ordered,
        members=kept,
        seconds=round(time.perf_counter() - began, 3),
    )


def _segment_name(label: str) -> str:
    return f"Persona: {label[:1].upper()}{label[1:]}"[:200]


def persona_segment_save(*, tenant: Tenant, run: PersonaRun, index: int, name: str = "") -> Segment:
    """Save persona `index` of `run` as a live segment whose rules approximate it, and record on
    the run how much of the persona (of the sample) the segment holds and how many others."""
    if run.status != PersonaRun.Status.DONE:
        raise ValidationError("Only a finished run's personas can be saved.")
    persona = next((c for c in run.clusters if c["index"] == index), None)
    if persona is None:
        raise ValidationError({"index": "No such persona in this run."})
    if not persona.get("rules"):
        raise ValidationError("This persona has no rules a segment can hold.")
    name = (name or "").strip() or _segment_name(persona["label"])
    description = (
        f"A persona found on {run.created_at:%Y-%m-%d} among {run.contacts_total} contacts: "
        f"{persona['label']}. {persona['summary']} Its rules approximate the group; it stays "
        "live and changes as contacts do."
    )
    try:
        segment = segment_services.segment_create(
            tenant=tenant, name=name, rules=persona["rules"], description=description
        )
    except segment_services.SegmentError as exc:
        raise ValidationError({exc.field: exc.message}) from None
    cluster_ids = set(run.members.get(str(index), []))
    member_ids = set(
        segment_selectors.segment_members(tenant=tenant, segment=segment).values_list(
            "pk", flat=True
        )
    )
    captured = len(member_ids & cluster_ids)
    # Of a sampled team, only the sample's persona members are known: the others the segment
    # holds are estimated from the capture (the sample stands for the whole team).
    scale = run.contacts_total / run.sample_size if run.sample_size else 1.0
    outside = max(0, round(len(member_ids) - captured * scale))
    with transaction.atomic():
        locked = PersonaRun.objects.select_for_update().get(tenant=tenant, pk=run.pk)
        for cluster in locked.clusters:
            if cluster["index"] == index:
                cluster["segment"] = {
                    "id": str(segment.public_id),
                    "name": segment.name,
                    "members": len(member_ids),
                    "captured": round(captured / len(cluster_ids), 4) if cluster_ids else 0.0,
                    "outside": outside,
                }
        locked.save(update_fields=["clusters"])
    run.clusters = locked.clusters
    return segment
