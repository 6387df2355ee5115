"""`surveys` in a message's Liquid (messaging.registry.context_extender_register):

    <a href="{{ surveys.nps.url }}">Tell us how we did</a>
    {% for s in surveys.nps.scores %}<a href="{{ s.url }}">{{ s.score }}</a>{% endfor %}

`surveys.<key>.url` is the hosted page for this contact and this message (signed, no login);
`scores` are the 0-10 one-click links of an NPS row (the page opens with that score chosen).

Plain dicts, as the rest of the context (messaging/context.py). Made for a send batch only when
one of its messages names `surveys` (one query for the team's open surveys, one signature per
survey and message); a batch whose template names no survey gets an empty `surveys` and costs
nothing (the sender's statement pins hold).
"""

from __future__ import annotations

from typing import Any

from messaging.models import Delivery
from messaging.registry import ContextItem
from personalisation.surveys import links, selectors
from tenants.models import Tenant

SCORES = range(11)
NAME = "surveys"


def _links(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "scores": [{"score": s, "url": f"{url}?score={s}"} for s in SCORES],
    }


def _names_surveys(delivery: Delivery | None) -> bool:
    """Whether a message's content may read `surveys` (a preview without a delivery may: its
    template is not known here). Push actions are a list of dicts: their URLs count too."""
    if delivery is None or not isinstance(delivery.content, dict):
        return True
    for value in delivery.content.values():
        if isinstance(value, str) and NAME in value:
            return True
        if isinstance(value, list) and any(NAME in str(item) for item in value):
            return True
    return False


class SampleSurveys(dict[str, Any]):
    """The editor's sample contact: any key is a survey, so a template naming one validates
    whatever the team's surveys are (the sample reads no database). A dict still: Liquid reads
    it by `[key]` only, as the plain dicts around it; iterating it gives nothing."""

    def __missing__(self, key: str) -> dict[str, Any]:
        return _links(links.preview_url())


def context_extend(*, tenant: Tenant, items: list[ContextItem]) -> dict[int, dict[str, Any]]:
    if not any(item.contact is not None and _names_surveys(item.delivery) for item in items):
        return {item.key: {NAME: SampleSurveys() if item.contact is None else {}} for item in items}
    surveys = selectors.surveys_for_links(tenant=tenant)
    preview = _links(links.preview_url())
    found: dict[int, dict[str, Any]] = {}
    for item in items:
        contact, delivery = item.contact, item.delivery
        if contact is None:
            found[item.key] = {NAME: SampleSurveys()}
        elif delivery is None:  # a preview: nothing to sign
            found[item.key] = {NAME: {key: preview for key, _ in surveys}}
        elif not _names_surveys(delivery):
            found[item.key] = {NAME: {}}
        else:
            found[item.key] = {
                NAME: {
                    key: _links(
                        links.survey_url(
                            links.SurveyRef(
                                tenant.pk, public_id, contact.public_id, delivery.public_id
                            )
                        )
                    )
                    for key, public_id in surveys
                }
            }
    return found
