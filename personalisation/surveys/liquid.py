"""`surveys` in a message's Liquid (messaging.registry.context_extender_register):

    <a href="{{ surveys.nps.url }}">Tell us how we did</a>
    {% for s in surveys.nps.scores %}<a href="{{ s.url }}">{{ s.score }}</a>{% endfor %}

`surveys.<key>.url` is the hosted page for this contact and this message (signed, no login);
`scores` are the 0-10 one-click links of an NPS row (the page opens with that score chosen).

Lazy on purpose: the sender builds a context for every message of a batch, and most templates
name no survey. `surveys` is a read-only mapping that loads the team's open surveys (one query,
shared by the whole batch) and signs a link only when a template asks for it, so a batch whose
template names no survey costs nothing (the sender's statement pins hold). Liquid reads it by
`[key]` only, as it reads the plain dicts around it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from messaging.registry import ContextItem
from personalisation.surveys import links, selectors
from tenants.models import Tenant

SCORES = range(11)


def _preview_url() -> str:
    # Editor previews and the sample contact: nothing to sign. An http(s) URL all the same, as
    # push templates' URLs must be (messaging.rendering checks them on the sample); it opens
    # the "link not valid" page.
    return links.preview_url()


def _links(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "scores": [{"score": s, "url": f"{url}?score={s}"} for s in SCORES],
    }


class _TeamSurveys:
    """The team's open surveys by key, loaded on first use (once per batch)."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._keys: dict[str, uuid.UUID] | None = None

    @property
    def keys(self) -> dict[str, uuid.UUID]:
        if self._keys is None:
            self._keys = dict(selectors.surveys_for_links(tenant=self.tenant))
        return self._keys


class SurveyLinks(Mapping[str, Any]):
    """One message's `surveys`: {key: {"url", "scores"}} of the team's open surveys."""

    def __init__(self, team: _TeamSurveys, item: ContextItem) -> None:
        self._team = team
        self._item = item
        self._made: dict[str, dict[str, Any]] = {}

    def __getitem__(self, key: str) -> dict[str, Any]:
        found = self._made.get(key)
        if found is not None:
            return found
        survey = self._team.keys[key]  # KeyError: Liquid's undefined
        contact, delivery = self._item.contact, self._item.delivery
        if contact is None or delivery is None:
            found = _links(_preview_url())  # a preview: nothing to sign
        else:
            ref = links.SurveyRef(
                self._team.tenant.pk, survey, contact.public_id, delivery.public_id
            )
            found = _links(links.survey_url(ref))
        self._made[key] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._team.keys)

    def __len__(self) -> int:
        return len(self._team.keys)


class SampleSurveys(Mapping[str, Any]):
    """The editor's sample contact: any key is a survey (the sample reads no database), so a
    template naming one validates; its links lead nowhere useful."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        if not isinstance(key, str):
            raise KeyError(key)
        return _links(_preview_url())

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def context_extend(*, tenant: Tenant, items: list[ContextItem]) -> dict[int, dict[str, Any]]:
    team = _TeamSurveys(tenant)
    return {
        item.key: {"surveys": SampleSurveys() if item.contact is None else SurveyLinks(team, item)}
        for item in items
    }
