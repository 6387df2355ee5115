"""CSV import (upload with the file's date format → mapping with preview → background task with a
live progress bar, rows per second and time left → report of rows not imported and cells left
out) and CSV export of contacts."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from audience import csv_io, selectors
from audience.forms import ContactFilterForm
from audience.models import ContactImport
from audience.tasks import contact_import_run
from tenants.decorators import TenantRequest, role_required
from tenants.models import Role


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _job(request: TenantRequest, import_id: str) -> ContactImport:
    job = ContactImport.objects.filter(tenant=request.tenant, public_id=import_id).first()
    if job is None:
        raise Http404("No such import")
    return job


def _date_formats() -> list[tuple[str, str]]:
    return [
        (key, f"{label} (like {csv_io.DATE_EXAMPLES[key]})")
        for key, label in csv_io.DATE_FORMATS.items()
    ]


@require_http_methods(["GET", "POST"])
def contact_import_start(request: TenantRequest, tenant_slug: str) -> HttpResponse:
    error = None
    date_format = csv_io.AUTO
    if request.method == "POST":
        upload = request.FILES.get("file")
        date_format = request.POST.get("date_format") or csv_io.AUTO
        if upload is None:
            error = "Choose a CSV file to upload."
        else:
            try:
                job = csv_io.import_create(
                    tenant=request.tenant,
                    filename=upload.name or "contacts.csv",
                    data=upload.read(csv_io.MAX_UPLOAD_BYTES + 1),
                    actor=request.user,
                    date_format=date_format,
                )
            except csv_io.CsvRejected as exc:
                error = str(exc)
            else:
                location = reverse(
                    "contact_import_detail",
                    kwargs={"tenant_slug": tenant_slug, "import_id": job.public_id},
                )
                detected = "?dates=detected" if date_format == csv_io.AUTO else ""
                return redirect(location + detected)
    recent = ContactImport.objects.filter(tenant=request.tenant).defer("content")[:10]
    return render(
        request,
        "audience/import_start.html",
        {
            "error": error,
            "recent": recent,
            "max_mb": csv_io.MAX_UPLOAD_BYTES // 2**20,
            "date_formats": _date_formats(),
            "date_format": date_format,
        },
        status=400 if error else 200,
    )


@require_http_methods(["GET", "POST"])
def contact_import_detail(request: TenantRequest, tenant_slug: str, import_id: str) -> HttpResponse:
    job = _job(request, import_id)
    error = None
    date_format = job.date_format
    if request.method == "POST":
        mapping = {c: request.POST.get(f"map-{i}", "") for i, c in enumerate(job.columns)}
        chosen = request.POST.get("date_format")  # absent: the one chosen at upload
        try:
            with transaction.atomic():
                job = csv_io.import_confirm(
                    tenant=request.tenant, job=job, mapping=mapping, date_format=chosen
                )
                transaction.on_commit(lambda: contact_import_run.delay(job.pk))
        except ValidationError as exc:
            error = " ".join(exc.messages)
            # Show the person's choices again, not the guesses.
            job.mapping = mapping
            date_format = chosen if chosen in csv_io.DATE_FORMATS else date_format
        else:
            # No "Importing…" message: the progress card says what is happening, and a message
            # above it would still say "importing" once the card shows the import done.
            return redirect(
                "contact_import_detail", tenant_slug=tenant_slug, import_id=job.public_id
            )
    not_imported, left_out = csv_io.report_entries(job)
    ctx = {
        "job": job,
        "error": error,
        "targets": csv_io.TARGETS,
        "columns": [(i, c, job.mapping.get(c, "")) for i, c in enumerate(job.columns)],
        "preview": csv_io.preview(job) if job.status == ContactImport.Status.MAPPING else [],
        "date_formats": _date_formats(),
        "date_format": date_format,
        # The start page's "work it out from the file" (dates=detected in the address).
        "date_format_detected": request.GET.get("dates") == "detected",
        "progress": csv_io.progress(job),
        "not_imported": not_imported[:10],
        "left_out": left_out[:10],
    }
    template = "audience/import_detail.html"
    if request.htmx and request.htmx.target == "import-progress":
        template += "#progress"
    return render(request, template, ctx, status=400 if error else 200)


@require_GET
def contact_import_errors(
    request: TenantRequest, tenant_slug: str, import_id: str
) -> StreamingHttpResponse:
    job = _job(request, import_id)
    writer = csv.writer(_Echo())
    rows: Iterator[list[object]] = iter(
        [
            ["row", "problem", "outcome"],
            *(
                [e["row"], e["message"], e.get("outcome", csv_io.ROW_NOT_IMPORTED)]
                for e in job.errors
            ),
        ]
    )
    response = StreamingHttpResponse(
        (writer.writerow(r) for r in rows), content_type="text/csv; charset=utf-8"
    )
    name = slugify(job.filename.rsplit(".", 1)[0]) or "import"
    response["Content-Disposition"] = f'attachment; filename="{name}-report.csv"'
    return response


@require_GET
@role_required(Role.MARKETER)
def contact_export(request: TenantRequest, tenant_slug: str) -> StreamingHttpResponse:
    """Every contact matching the list's filters, streamed: memory stays flat at any size."""
    form = ContactFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    contacts = selectors.contact_list(
        tenant=request.tenant, search=filters.get("q", ""), lifecycle_stage=filters.get("stage", "")
    ).order_by("created_at", "pk")
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in csv_io.export_rows(contacts)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{request.tenant.slug}-contacts.csv"'
    return response
