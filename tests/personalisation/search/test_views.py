"""Personalisation → Search for the marketer: the queries shoppers searched for (top ones, those
that found nothing), the try-it box, the synonyms editor; viewers read only; another team's
page and synonyms are out of reach."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audience.models import Contact
from personalisation.search.models import SearchQueryDay, Synonym
from personalisation.search.services import search_run, synonyms_set

pytestmark = pytest.mark.django_db

PAGE = "/t/acme/personalisation/search/"


def test_the_empty_page_says_so(login: Any, world: Any) -> None:
    page = login(world.dave).get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "No searches yet." in html and "No synonyms yet." in html
    assert 'id="synonym-form"' in html


def test_it_lists_top_queries_and_those_that_found_nothing(login: Any, shop: Any) -> None:
    for query in ("sneakers", "sneakers", "Sneakers", "umbrella", "umbrella", "boots"):
        search_run(tenant=shop.acme, query=query, anonymous_id="v")
    search_run(tenant=shop.globex, query="globex-only query", anonymous_id="v")
    page = login(shop.dave).get(PAGE)
    html = page.content.decode()
    top = [f.query for f in page.context["top_queries"]]
    assert top == ["sneakers", "umbrella", "boots"]
    zero = page.context["zero_queries"]
    assert [(f.query, f.zero_results, f.searches) for f in zero] == [("umbrella", 2, 2)]
    assert "globex-only query" not in html
    assert page.context["totals"] == {"searches": 6, "zero": 2}
    # Each query that found nothing offers a synonym for it.
    assert "term=umbrella#synonym-form" in html


def test_the_try_it_box_ranks_for_a_contact_and_is_not_counted(login: Any, shop: Any) -> None:
    page = login(shop.dave).get(PAGE, {"q": "sneekers", "contact": "casual-cat"})
    answer = page.context["answer"]
    assert answer.hits[0].sku == "SNK-CAS"
    html = page.content.decode()
    assert "read as <q>sneakers</q>" in html
    assert "favourite categories Casual" in html
    assert not SearchQueryDay.objects.exists()
    Contact.objects.filter(tenant=shop.acme, user_id="runner").update(email="run@example.com")
    page = login(shop.dave).get(PAGE, {"q": "sneakers", "contact": "Run@Example.com "})
    assert page.context["answer"].hits[0].sku == "SNK-RUN"


def test_the_try_it_box_shows_its_errors_and_keeps_the_input(login: Any, shop: Any) -> None:
    page = login(shop.dave).get(PAGE, {"q": "sneakers", "contact": "nobody@example.com"})
    html = page.content.decode()
    assert "No contact with this email or user id." in html
    assert 'value="nobody@example.com"' in html and 'value="sneakers"' in html
    assert page.context["answer"] is None
    page = login(shop.dave).get(PAGE, {"q": "  "})
    assert "Type what to search for." in page.content.decode()


def test_a_marketer_adds_changes_and_deletes_a_synonym(login: Any, world: Any) -> None:
    client = login(world.dave)
    response = client.post(
        f"{PAGE}synonyms/", {"term": "Trainers", "alternatives": "sneakers, running shoes"}
    )
    assert response.status_code == 302
    synonym = Synonym.objects.get(tenant=world.acme)
    assert (synonym.term, synonym.alternatives) == ("trainers", ["sneakers", "running shoes"])
    assert "running shoes" in client.get(PAGE).content.decode()

    edit = f"{PAGE}synonyms/{synonym.public_id}/edit/"
    assert 'value="sneakers, running shoes"' in client.get(edit).content.decode()
    assert client.post(edit, {"term": "trainers", "alternatives": "kicks"}).status_code == 302
    synonym.refresh_from_db()
    assert synonym.alternatives == ["kicks"]

    assert client.post(f"{PAGE}synonyms/{synonym.public_id}/delete/").status_code == 302
    assert not Synonym.objects.exists()


def test_a_bad_synonym_shows_its_errors_and_keeps_the_input(login: Any, world: Any) -> None:
    page = login(world.dave).post(f"{PAGE}synonyms/", {"term": "trainers", "alternatives": " , "})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Enter at least one other word to search for" in html
    assert 'value="trainers"' in html
    assert not Synonym.objects.exists()
    synonyms_set(tenant=world.acme, term="kicks", alternatives=["sneakers"])
    other = synonyms_set(tenant=world.acme, term="trainers", alternatives=["sneakers"])
    page = login(world.dave).post(
        f"{PAGE}synonyms/{other.public_id}/edit/", {"term": "kicks", "alternatives": "boots"}
    )
    assert "Another synonym has this term" in page.content.decode()
    assert 'value="boots"' in page.content.decode()


def test_a_viewer_reads_but_cannot_change_synonyms(login: Any, world: Any) -> None:
    synonym = synonyms_set(tenant=world.acme, term="trainers", alternatives=["sneakers"])
    client = login(world.bob)
    html = client.get(PAGE).content.decode()
    assert "trainers" in html and 'id="synonym-form"' not in html
    assert client.post(f"{PAGE}synonyms/", {"term": "a", "alternatives": "b"}).status_code == 403
    edit = f"{PAGE}synonyms/{synonym.public_id}/edit/"
    assert client.post(edit, {"term": "x", "alternatives": "y"}).status_code == 403
    assert client.post(f"{PAGE}synonyms/{synonym.public_id}/delete/").status_code == 403
    assert Synonym.objects.get().alternatives == ["sneakers"]


def test_another_team_reaches_neither_the_page_nor_the_synonyms(
    login: Any, world: Any, client: Client
) -> None:
    ours = synonyms_set(tenant=world.acme, term="plimsolls", alternatives=["sneakers"])
    charlie = login(world.charlie)
    assert charlie.get(PAGE).status_code in (403, 404)
    theirs = "/t/globex/personalisation/search/"
    assert "plimsolls" not in charlie.get(theirs).content.decode()
    for path in (f"synonyms/{ours.public_id}/edit/", f"synonyms/{ours.public_id}/delete/"):
        assert charlie.get(theirs + path).status_code in (404, 405)
        assert charlie.post(theirs + path, {"term": "x", "alternatives": "y"}).status_code == 404
    ours.refresh_from_db()
    assert ours.alternatives == ["sneakers"]
