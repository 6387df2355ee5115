"""The links inside messages, for recipients (no login, no tenant in the URL: the signed token
names the delivery, which names the tenant and the contact).

- /m/o/<token>.gif   open pixel: always the same GIF, whatever the token (it never says
                      whether a token is valid); records the first open.
- /m/c/<token>?u=&s= click redirect: only to the URL the message contained (the pair is signed),
                      else a 400 page: no open redirect.
- /m/pc/<token>?u=&s= the same for web push notifications.
- /m/u/<token>       unsubscribe: GET asks, POST does it (RFC 8058 one-click, from the mail
                      provider itself: no cookie, no CSRF token).
- /m/p/<token>       the preference centre: consent per channel (a normal CSRF-protected form).
- /m/s/<token>       a team asks to send from this address: GET asks, POST (CSRF-protected)
                      confirms (messaging/sender_verification.py). Asking first, because mail
                      scanners open the links in incoming messages and must not confirm.
"""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from django import forms
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from messaging import links, reachability, sender_verification, tracking
from messaging.models import Channel, Delivery

# The smallest transparent GIF: one pixel, one transparent palette entry, 42 bytes.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

REDIRECT_SCHEMES = ("http", "https")
CHANNEL_NOUNS: dict[str, str] = {Channel.EMAIL: "emails", Channel.PUSH: "notifications"}
# The preference centre says why a channel it shows as wanted still cannot reach the contact.
UNREACHABLE_NOTES = {
    reachability.NO_EMAIL: "We have no email address for you, so no emails reach you.",
    reachability.SUPPRESSED: (
        "Emails to your address bounced or were marked as spam, so we no longer send any."
    ),
    reachability.NO_PUSH: "No browser of yours is signed up for notifications.",
}


def _no_store(response: HttpResponse) -> HttpResponse:
    # Opens and clicks are counted on our server: a cached pixel or redirect would hide them.
    add_never_cache_headers(response)
    return response


def _page(
    request: HttpRequest, template: str, context: dict[str, object], status: int = 200
) -> HttpResponse:
    response = render(request, f"messaging/public/{template}", context, status=status)
    # These pages carry a personal token: keep them out of search engines and shared caches.
    response["X-Robots-Tag"] = "noindex, nofollow"
    return _no_store(response)


def _invalid(request: HttpRequest, status: int) -> HttpResponse:
    return _page(request, "invalid.html", {}, status=status)


def _user_agent(request: HttpRequest) -> str:
    return request.headers.get("User-Agent", "")


@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    delivery = tracking.delivery_for_token(token)
    if delivery is not None and delivery.channel == Channel.EMAIL:
        tracking.open_record(delivery=delivery, user_agent=_user_agent(request))
    return _no_store(HttpResponse(PIXEL, content_type="image/gif"))


def _signed_target(request: HttpRequest, token: str) -> str | None:
    """The URL of a click link if the token and the URL are both signed, else None."""
    url, signature = request.GET.get("u", ""), request.GET.get("s", "")
    if not url or not signature:
        return None
    try:
        links.delivery_public_id(token)
    except signing.BadSignature:
        return None
    if not links.url_is_signed(token, url, signature):
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # signed, but not a URL urlsplit can read
        return None
    if scheme not in REDIRECT_SCHEMES:
        return None
    return url


def _redirect(request: HttpRequest, token: str, channel: str) -> tuple[str | None, Delivery | None]:
    url = _signed_target(request, token)
    if url is None:
        return None, None
    delivery = tracking.delivery_for_token(token)
    if delivery is not None and delivery.channel != channel:
        return None, None  # a push link's signature used on the email path, or the reverse
    # A signed link whose delivery is gone (the contact was erased) still leads where it said.
    return url, delivery


@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    url, delivery = _redirect(request, token, Channel.EMAIL)
    if url is None:
        return _invalid(request, 400)
    if delivery is not None:
        tracking.click_record(delivery=delivery, url=url, user_agent=_user_agent(request))
    return _no_store(HttpResponseRedirect(url))


@require_GET
def push_click(request: HttpRequest, token: str) -> HttpResponse:
    url, delivery = _redirect(request, token, Channel.PUSH)
    if url is None:
        return _invalid(request, 400)
    if delivery is not None:
        tracking.push_click_record(delivery=delivery, url=url, user_agent=_user_agent(request))
    return _no_store(HttpResponseRedirect(url))


# RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" to the List-Unsubscribe URL
# with no cookies and no way to send a CSRF token. The signed token is the secret instead.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    delivery = tracking.delivery_for_token(token)
    if delivery is None:
        return _invalid(request, 404)
    context = {
        "delivery": delivery,
        "tenant": delivery.tenant,
        "contact": delivery.contact,
        "channel_label": CHANNEL_NOUNS[delivery.channel],
        "preferences_url": links.preferences_url(delivery),
    }
    if request.method == "GET":
        # Asking first: link scanners and previews GET every link in a message.
        return _page(request, "unsubscribe.html", context)
    tracking.unsubscribe(delivery=delivery)
    return _page(request, "unsubscribed.html", context)


class PreferencesForm(forms.Form):
    email = forms.BooleanField(required=False, label="Marketing emails")
    push = forms.BooleanField(required=False, label="Browser notifications")


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    delivery = tracking.delivery_for_token(token)
    if delivery is None:
        return _invalid(request, 404)
    saved = False
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            tracking.preferences_save(delivery=delivery, wanted=form.cleaned_data)
            saved = True
    # Read after a save: what the page shows is what the next message will meet.
    contact = delivery.contact
    reach = reachability.reachability_load(tenant=delivery.tenant, contacts=[contact])
    form = PreferencesForm(initial={c: reach.consents(contact, c) for c in tracking.CHANNELS})
    notes = []
    for channel in tracking.CHANNELS:
        # A checked box means consent; a note, when something else keeps the channel shut.
        note = UNREACHABLE_NOTES.get(reach.reason(contact, channel) or "")
        if note:
            form.fields[channel].widget.attrs["aria-describedby"] = f"{channel}-note"
            notes.append((channel, note))
    context = {
        "tenant": delivery.tenant,
        "contact": contact,
        "form": form,
        "notes": notes,
        "saved": saved,
        "unsubscribe_url": links.unsubscribe_url(delivery),
    }
    return _page(request, "preferences.html", context)


@require_http_methods(["GET", "POST"])
def sender_email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        identity = sender_verification.sender_email_confirm(token=token)
        if identity is None:
            return _page(request, "sender_confirm.html", {"identity": None}, status=400)
        return _page(
            request, "sender_confirmed.html", {"identity": identity, "tenant": identity.tenant}
        )
    identity = sender_verification.sender_email_link_check(token=token)
    context: dict[str, object] = {
        "identity": identity,
        "tenant": identity.tenant if identity else None,
    }
    return _page(request, "sender_confirm.html", context, status=200 if identity else 400)
