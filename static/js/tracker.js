/*! wayfarer.js — the Wayfarer browser tracker. Plain ES2017: no dependencies, no build step.
 *
 * Loaded by the async snippet (docs/tracker.md), which defines `window.wayfarer` as an array of
 * queued calls and calls `wayfarer.load(writeKey, {host})`. This file replaces that array with
 * the real API and replays the calls. Messages follow Segment's spec and are sent in batches to
 * {host}/v1/batch.
 *
 * Delivery is at least once: a message stays in the outbox (localStorage when the browser allows
 * it) until Wayfarer has answered 2xx for it; Wayfarer stores each messageId once, so sending one
 * twice is harmless.
 */
(function () {
  "use strict";

  const VERSION = "1.0.0";
  const LIBRARY = { name: "wayfarer.js", version: VERSION };

  const FLUSH_INTERVAL_MS = 1000;
  const FLUSH_AT = 20; // messages per batch; a full batch goes at once
  const MAX_OUTBOX = 500; // beyond this the oldest messages are dropped
  const MAX_MESSAGE_BYTES = 32 * 1024; // Wayfarer refuses larger messages
  // fetch(…, {keepalive: true}) and sendBeacon refuse bodies over 64 KiB (a quota per page).
  const MAX_BODY_BYTES = 60 * 1024;
  const RETRY_BASE_MS = 1000;
  const RETRY_MAX_MS = 60 * 1000;
  // A beacon cannot tell whether it arrived. Its messages stay in the outbox and are sent again
  // (by fetch) after this long, unless a fetch confirmed them first.
  const BEACON_GRACE_MS = 30 * 1000;

  const ANONYMOUS_ID_KEY = "wayfarer.anonymousId";
  const USER_ID_KEY = "wayfarer.userId";
  const OUTBOX_KEY = "wayfarer.outbox";
  const COOKIE_NAMES = { [ANONYMOUS_ID_KEY]: "wf_aid", [USER_ID_KEY]: "wf_uid" };
  const COOKIE_MAX_AGE_S = 365 * 24 * 60 * 60;

  const PUSH_SNOOZE_KEY = "wayfarer.pushSnoozedUntil";
  const PUSH_SYNCED_KEY = "wayfarer.pushSynced"; // what Wayfarer last heard from this browser
  const PUSH_SNOOZE_MS = 30 * 24 * 60 * 60 * 1000; // "Not now" is not asked again for 30 days
  const PUSH_DEFAULTS = {
    title: "Get notified?",
    text: "We can tell you when something you liked is back in stock or on sale. You can turn this off at any time.",
    allow: "Allow notifications",
    later: "Not now",
    delayMs: 0,
    serviceWorker: "/wayfarer-sw.js", // served from the shop's own origin (docs/tracker.md)
    scope: undefined,
  };

  const ECOMMERCE_EVENTS = {
    productViewed: "Product Viewed",
    productAdded: "Product Added",
    productRemoved: "Product Removed",
    addedToWishlist: "Product Added to Wishlist",
    checkoutStarted: "Checkout Started",
    orderCompleted: "Order Completed",
  };

  const stub = window.wayfarer;
  if (!Array.isArray(stub)) {
    // Either the tracker is already running (loaded twice) or the snippet is missing.
    if (!stub || !stub.loaded) console.warn("wayfarer.js: add the snippet before this script.");
    return;
  }
  const writeKey = stub._writeKey;
  const options = stub._options || {};
  if (typeof writeKey !== "string" || !writeKey) {
    console.error("wayfarer.js: wayfarer.load(writeKey) was not called; nothing will be sent.");
    return;
  }
  // By default the host is where this script came from.
  const scriptHost = document.currentScript ? new URL(document.currentScript.src).origin : "";
  const host = String(options.host || scriptHost || window.location.origin).replace(/\/+$/, "");

  // --- Storage: localStorage, with a first-party cookie for the ids --------------------------

  const storage = (function () {
    // localStorage may be missing or throw (disabled cookies, some private modes, sandboxes).
    try {
      const probe = "wayfarer.probe";
      window.localStorage.setItem(probe, probe);
      window.localStorage.removeItem(probe);
      return window.localStorage;
    } catch (error) {
      return null;
    }
  })();

  function readCookie(name) {
    const prefix = name + "=";
    for (const part of document.cookie.split("; ")) {
      if (part.startsWith(prefix)) {
        try {
          return decodeURIComponent(part.slice(prefix.length));
        } catch (error) {
          return null;
        }
      }
    }
    return null;
  }

  function writeCookie(name, value) {
    const secure = window.location.protocol === "https:" ? "; Secure" : "";
    const maxAge = value === null ? 0 : COOKIE_MAX_AGE_S;
    document.cookie =
      `${name}=${encodeURIComponent(value || "")}; path=/; max-age=${maxAge}; SameSite=Lax` + secure;
  }

  // Ids are written to both places, because either can be cleared or blocked on its own.
  function readId(key) {
    let value = null;
    if (storage) value = storage.getItem(key);
    return value || readCookie(COOKIE_NAMES[key]) || null;
  }

  function writeId(key, value) {
    if (storage) {
      if (value === null) storage.removeItem(key);
      else storage.setItem(key, value);
    }
    writeCookie(COOKIE_NAMES[key], value);
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID exists only in secure contexts (HTTPS); getRandomValues works everywhere.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  const identity = {
    anonymousId: readId(ANONYMOUS_ID_KEY),
    userId: readId(USER_ID_KEY),
  };
  // Written back on every load: repairs whichever store was cleared and renews the cookie.
  writeId(ANONYMOUS_ID_KEY, (identity.anonymousId = identity.anonymousId || uuid()));
  if (identity.userId) writeId(USER_ID_KEY, identity.userId);

  // --- Small helpers ------------------------------------------------------------------------

  const listeners = {};

  function emit(name, detail) {
    for (const listener of listeners[name] || []) {
      try {
        listener(detail);
      } catch (error) {
        console.error("wayfarer.js: a listener failed", error);
      }
    }
  }

  const encoder = new TextEncoder();
  const byteLength = (text) => encoder.encode(text).length;

  function isPlainObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function pageProperties() {
    return {
      url: window.location.href,
      path: window.location.pathname,
      referrer: document.referrer,
      title: document.title,
      search: window.location.search,
    };
  }

  function context() {
    let timezone;
    try {
      timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (error) {
      timezone = undefined;
    }
    return {
      library: LIBRARY,
      page: pageProperties(),
      userAgent: navigator.userAgent,
      locale: navigator.language,
      timezone,
      screen: { width: window.screen.width, height: window.screen.height },
    };
  }

  // --- The outbox ---------------------------------------------------------------------------
  //
  // Entries are {key, host, message, beaconAt?}. localStorage is shared by the site's tabs, so
  // the outbox is always read fresh: any tab may deliver any entry. The write key travels with
  // each entry: on a page that talks to another Wayfarer team (or after a key change), older
  // messages still go to the team they were recorded for.

  const outbox = {
    // Used when localStorage is unavailable, or once it has failed: then this page keeps its
    // messages in memory only.
    inMemory: storage === null,
    memory: [],

    load() {
      if (this.inMemory) return this.memory.slice();
      try {
        const entries = JSON.parse(storage.getItem(OUTBOX_KEY) || "[]");
        return Array.isArray(entries) ? entries : [];
      } catch (error) {
        return []; // corrupted by hand; start again
      }
    },

    save(entries) {
      if (entries.length > MAX_OUTBOX) {
        console.warn(`wayfarer.js: outbox full; dropped the ${entries.length - MAX_OUTBOX} oldest`);
        entries = entries.slice(entries.length - MAX_OUTBOX);
      }
      if (this.inMemory) {
        this.memory = entries;
        return;
      }
      try {
        if (entries.length) storage.setItem(OUTBOX_KEY, JSON.stringify(entries));
        else storage.removeItem(OUTBOX_KEY);
      } catch (error) {
        // Quota exceeded (the site's other data shares it): carry on in memory rather than
        // losing messages or re-reading a stale copy.
        console.warn("wayfarer.js: localStorage is full; keeping messages in memory");
        this.inMemory = true;
        this.memory = entries;
        try {
          storage.removeItem(OUTBOX_KEY);
        } catch (ignored) {
          // nothing more to do
        }
      }
    },

    add(entry) {
      const entries = this.load();
      entries.push(entry);
      this.save(entries);
      return entries.length;
    },

    remove(messageIds) {
      this.save(this.load().filter((entry) => !messageIds.has(entry.message.messageId)));
    },
  };

  // --- Sending ------------------------------------------------------------------------------

  let timer = null; // the next scheduled flush
  let timerDue = Infinity;
  let failures = 0; // consecutive failed attempts; drives the backoff
  let inFlight = new Set(); // messageIds of the batch being sent by fetch

  function schedule(delayMs) {
    const due = Date.now() + delayMs;
    if (timer !== null && timerDue <= due) return; // an earlier flush is already planned
    clearTimeout(timer);
    timerDue = due;
    timer = setTimeout(() => {
      timer = null;
      timerDue = Infinity;
      flush();
    }, delayMs);
  }

  function backoffMs(attempt, retryAfterHeader) {
    const retryAfter = Number(retryAfterHeader);
    if (retryAfter > 0) return Math.min(retryAfter * 1000, RETRY_MAX_MS);
    const exponential = Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_MS);
    // Jitter, so that many browsers recovering from one outage do not retry in step.
    return Math.round(exponential * (0.8 + Math.random() * 0.4));
  }

  function withSentAt(entries, sentAt) {
    return entries.map((entry) => Object.assign({}, entry.message, { sentAt }));
  }

  // The next entries to send together: same key and host, at most FLUSH_AT of them and
  // MAX_BODY_BYTES in all. Entries beaconed recently are left alone for BEACON_GRACE_MS.
  function nextBatch(entries, now, skip) {
    let batch = null;
    let bytes = 200; // the envelope: {"batch":[…],"sentAt":"…","writeKey":"…"}
    for (const entry of entries) {
      if (skip.has(entry.message.messageId)) continue;
      if (entry.beaconAt && now - entry.beaconAt < BEACON_GRACE_MS) continue;
      if (batch === null) batch = { key: entry.key, host: entry.host, entries: [] };
      else if (entry.key !== batch.key || entry.host !== batch.host) continue;
      const size = byteLength(JSON.stringify(entry.message)) + 50;
      if (batch.entries.length && bytes + size > MAX_BODY_BYTES) break;
      batch.entries.push(entry);
      bytes += size;
      if (batch.entries.length >= FLUSH_AT) break;
    }
    return batch;
  }

  function earliestBeaconRetry(entries) {
    const times = entries.filter((e) => e.beaconAt).map((e) => e.beaconAt + BEACON_GRACE_MS);
    return times.length ? Math.min(...times) : null;
  }

  async function post(batch) {
    const sentAt = new Date().toISOString();
    const body = JSON.stringify({ batch: withSentAt(batch.entries, sentAt), sentAt });
    try {
      const response = await fetch(batch.host + "/v1/batch", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: "Basic " + btoa(batch.key + ":"),
        },
        body,
        credentials: "omit", // the write key is the credential; no cookies cross to Wayfarer
        keepalive: true, // lets the request finish if the page goes away meanwhile
      });
      let payload = null;
      if (response.status === 400) payload = await response.json().catch(() => null);
      return { status: response.status, retryAfter: response.headers.get("Retry-After"), payload };
    } catch (error) {
      return { status: 0, error }; // offline, DNS, CORS, connection reset…
    }
  }

  // Sends one batch and decides what happens next. Only one batch is in flight at a time, so
  // messages arrive in the order they were recorded; a flush asked for meanwhile joins it.
  // `resendBeaconed` sends beaconed messages again at once rather than after BEACON_GRACE_MS
  // (before a read that depends on them: Wayfarer drops the duplicates by messageId).
  let flushing = null;
  function flush(resendBeaconed) {
    if (flushing === null) {
      const done = () => {
        flushing = null;
      };
      flushing = flushOnce(resendBeaconed === true).then(done, done);
    }
    return flushing;
  }

  async function flushOnce(resendBeaconed) {
    if (inFlight.size) return; // the running flush carries on with what came meanwhile
    const now = Date.now();
    const entries = outbox.load();
    const batch = nextBatch(entries, resendBeaconed ? Infinity : now, new Set());
    if (batch === null) {
      const retryAt = earliestBeaconRetry(entries);
      if (retryAt !== null) schedule(Math.max(0, retryAt - now));
      return;
    }
    const ids = new Set(batch.entries.map((entry) => entry.message.messageId));
    inFlight = ids;
    let result;
    try {
      result = await post(batch);
    } finally {
      inFlight = new Set();
    }
    const { status } = result;
    if (status >= 200 && status < 300) {
      failures = 0;
      outbox.remove(ids);
      emit("sent", batch.entries.map((entry) => entry.message));
      if (outbox.load().length) schedule(0);
      return;
    }
    if (status === 0 || status === 429 || status >= 500) {
      failures += 1;
      const delay = backoffMs(failures, result.retryAfter);
      emit("retry", { status, attempt: failures, delayMs: delay, pending: outbox.load().length });
      schedule(delay);
      return;
    }
    // Any other 4xx will fail the same way every time: drop rather than retry forever. For a bad
    // message in a batch (400 naming its index), drop only that message and send the others.
    failures = 0;
    // Wayfarer answers Segment's error shape: {"success": false, "code", "message", "index"?}.
    const index = result.payload ? result.payload.index : undefined;
    const dropped =
      status === 400 && Number.isInteger(index) && batch.entries[index]
        ? [batch.entries[index]]
        : batch.entries;
    console.warn(
      `wayfarer.js: Wayfarer refused ${dropped.length} message(s) with HTTP ${status}`,
      result.payload || ""
    );
    outbox.remove(new Set(dropped.map((entry) => entry.message.messageId)));
    emit("dropped", { status, messages: dropped.map((entry) => entry.message) });
    if (outbox.load().length) schedule(0);
  }

  // The page is going away (or may be discarded while hidden): hand what is left to the browser
  // with sendBeacon, which survives the page. Beacons cannot carry headers, so the write key is
  // in the body (text/plain, so there is no CORS preflight either).
  function flushWithBeacon() {
    if (typeof navigator.sendBeacon !== "function") return;
    const entries = outbox.load();
    const now = Date.now();
    const skip = new Set(inFlight); // a keepalive fetch finishes on its own
    let beaconed = 0;
    for (;;) {
      const batch = nextBatch(entries, now, skip);
      if (batch === null) break;
      const sentAt = new Date().toISOString();
      const body = JSON.stringify({
        batch: withSentAt(batch.entries, sentAt),
        sentAt,
        writeKey: batch.key,
      });
      if (!navigator.sendBeacon(batch.host + "/v1/batch", body)) break; // the quota is used up
      for (const entry of batch.entries) {
        entry.beaconAt = now;
        skip.add(entry.message.messageId);
      }
      beaconed += batch.entries.length;
    }
    if (beaconed) outbox.save(mergeBeaconMarks(entries));
  }

  // Save beacon marks without losing entries another tab added since we read the outbox.
  function mergeBeaconMarks(marked) {
    const marks = new Map(marked.filter((e) => e.beaconAt).map((e) => [e.message.messageId, e.beaconAt]));
    return outbox.load().map((entry) =>
      marks.has(entry.message.messageId)
        ? Object.assign({}, entry, { beaconAt: marks.get(entry.message.messageId) })
        : entry
    );
  }

  // --- Web push -----------------------------------------------------------------------------
  //
  // A polite soft-ask first: the browser's own permission prompt only appears when the visitor
  // clicks "allow" in ours, so a visitor who is not interested is never shown a prompt whose
  // "Block" would be final. Then the shop's service worker is registered, the browser subscribes
  // with the team's VAPID key, and the subscription goes to Wayfarer with the visitor's ids.

  let pushAsking = null; // the promise of the soft-ask on screen, so it is shown once

  function pushSupported() {
    return (
      window.isSecureContext === true &&
      "serviceWorker" in navigator &&
      "PushManager" in window &&
      "Notification" in window
    );
  }

  // The worker's path and scope may be set once, in wayfarer.load()'s options, or per call.
  function pushSettings(callOptions) {
    const fromLoad = {};
    if (options.serviceWorker) fromLoad.serviceWorker = options.serviceWorker;
    if (options.serviceWorkerScope) fromLoad.scope = options.serviceWorkerScope;
    return Object.assign({}, PUSH_DEFAULTS, fromLoad, isPlainObject(callOptions) ? callOptions : {});
  }

  function pushSnoozed() {
    return storage !== null && Number(storage.getItem(PUSH_SNOOZE_KEY) || 0) > Date.now();
  }

  function pushSnooze() {
    if (storage) storage.setItem(PUSH_SNOOZE_KEY, String(Date.now() + PUSH_SNOOZE_MS));
  }

  function base64UrlToBytes(text) {
    const base64 = (text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  }

  function sameKey(buffer, bytes) {
    if (!buffer || buffer.byteLength !== bytes.length) return false;
    const view = new Uint8Array(buffer);
    return bytes.every((byte, i) => view[i] === byte);
  }

  // A call to one of Wayfarer's browser endpoints (/v1/push/…, /v1/recommendations…) with the
  // write key. A refusal rejects with an Error carrying `status` and Wayfarer's answer
  // (`code`, `field`, `message`).
  async function edgeCall(method, path, body) {
    const headers = { Authorization: "Basic " + btoa(writeKey + ":") };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(host + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = payload && payload.message ? `: ${payload.message}` : "";
      const error = new Error(`${path.split("?")[0]} answered HTTP ${response.status}${detail}`);
      error.status = response.status;
      if (payload) Object.assign(error, { code: payload.code, field: payload.field, detail: payload.message });
      throw error;
    }
    return payload;
  }

  // pushManager.subscribe() needs an active worker. navigator.serviceWorker.ready would never
  // resolve on a page outside the worker's scope, so wait on this registration instead.
  async function pushRegistration(settings) {
    const registration = await navigator.serviceWorker.register(
      settings.serviceWorker,
      settings.scope ? { scope: settings.scope } : undefined
    );
    if (registration.active) return registration;
    const worker = registration.installing || registration.waiting;
    await new Promise((resolve, reject) => {
      const check = () => {
        if (worker.state === "activated") resolve();
        else if (worker.state === "redundant") reject(new Error("the service worker did not install"));
      };
      worker.addEventListener("statechange", check);
      check();
    });
    return registration;
  }

  function pushSyncedAs(subscription) {
    return JSON.stringify([writeKey, host, subscription.endpoint, identity.anonymousId, identity.userId]);
  }

  // Subscribes (permission must be granted) and tells Wayfarer, unless it already knows this
  // subscription for these ids. A subscription made with another key (the team changed) is
  // replaced: push services refuse messages signed with a key it was not made for.
  async function pushSubscribe(settings) {
    const registration = await pushRegistration(settings);
    const { publicKey } = await edgeCall("GET", "/v1/push/key");
    const key = base64UrlToBytes(publicKey);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options && subscription.options.applicationServerKey, key)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    const synced = pushSyncedAs(subscription);
    if (!storage || storage.getItem(PUSH_SYNCED_KEY) !== synced) {
      const body = { anonymousId: identity.anonymousId, subscription: subscription.toJSON(), context: context() };
      if (identity.userId) body.userId = identity.userId;
      await edgeCall("POST", "/v1/push/subscribe", body);
      if (storage) storage.setItem(PUSH_SYNCED_KEY, synced);
    }
    return subscription;
  }

  function pushFinish(status, error) {
    if (error) console.warn(`wayfarer.js: push ${status}:`, error.message || error);
    emit("push", error ? { status, error: String(error.message || error) } : { status });
    return status;
  }

  const SOFT_ASK_STYLE = `
    :host { all: initial; }
    .box { position: fixed; z-index: 2147483647; right: 1rem; bottom: 1rem; box-sizing: border-box;
      width: min(24rem, calc(100vw - 2rem)); padding: 1rem 1.1rem; border-radius: 0.6rem;
      background: #fff; color: #1f2328; border: 1px solid #d0d7de;
      box-shadow: 0 8px 24px rgba(0, 0, 0, 0.18); font: 15px/1.45 system-ui, sans-serif; }
    h2 { margin: 0 0 0.3rem; font-size: 1rem; font-weight: 600; }
    p { margin: 0 0 0.9rem; }
    .buttons { display: flex; gap: 0.5rem; justify-content: flex-end; flex-wrap: wrap; }
    button { font: inherit; padding: 0.45rem 0.9rem; border-radius: 0.4rem; cursor: pointer;
      border: 1px solid #d0d7de; background: #f6f8fa; color: inherit; }
    button.allow { background: #1f6feb; border-color: #1f6feb; color: #fff; }
    button:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
    @media (prefers-color-scheme: dark) {
      .box { background: #161b22; color: #e6edf3; border-color: #30363d; }
      button { background: #21262d; border-color: #30363d; }
    }`;

  // The soft-ask: a small non-modal dialog in a shadow root (the shop's CSS cannot reach in, and
  // ours cannot leak out). It does not take the focus from what the visitor is doing; it is
  // first in the tab order, and Escape means "Not now".
  function showSoftAsk(settings, answer) {
    const hostElement = document.createElement("div");
    hostElement.setAttribute("data-wayfarer", "push-prompt");
    const root = hostElement.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = SOFT_ASK_STYLE;
    const box = document.createElement("div");
    box.className = "box";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "false");
    box.setAttribute("aria-labelledby", "wf-push-title");
    box.setAttribute("aria-describedby", "wf-push-text");
    const heading = document.createElement("h2");
    heading.id = "wf-push-title";
    heading.textContent = settings.title;
    const text = document.createElement("p");
    text.id = "wf-push-text";
    text.textContent = settings.text;
    const buttons = document.createElement("div");
    buttons.className = "buttons";
    const later = document.createElement("button");
    later.type = "button";
    later.textContent = settings.later;
    const allow = document.createElement("button");
    allow.type = "button";
    allow.className = "allow";
    allow.textContent = settings.allow;
    buttons.append(later, allow);
    box.append(heading, text, buttons);
    root.append(style, box);

    const close = () => hostElement.remove();
    later.addEventListener("click", () => {
      close();
      pushSnooze();
      answer("later");
    });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") later.click();
    });
    allow.addEventListener("click", () => {
      close();
      // Called within the click: browsers show their prompt only in answer to a user gesture.
      Notification.requestPermission()
        .then((permission) => {
          if (permission !== "granted") {
            if (permission === "default") pushSnooze(); // closed the browser's prompt
            return answer("blocked");
          }
          return pushSubscribe(settings).then(() => answer("subscribed"));
        })
        .catch((error) => answer("failed", error));
    });
    document.body.prepend(hostElement);
  }

  const push = {
    /** Whether this browser can receive web push here (HTTPS, service workers, Push API). */
    supported: pushSupported,

    /**
     * prompt({title, text, allow, later, delayMs, serviceWorker, scope}): after delayMs, shows
     * the soft-ask unless the answer is already known. Resolves to "subscribed", "later",
     * "blocked", "denied", "snoozed", "unsupported" or "failed" (also emitted as "push").
     * Where permission is already granted it asks nothing and keeps Wayfarer's copy of the
     * subscription current (after identify(), or when the browser renewed it).
     */
    prompt(options) {
      const settings = pushSettings(options);
      if (!pushSupported()) return Promise.resolve(pushFinish("unsupported"));
      if (Notification.permission === "denied") return Promise.resolve(pushFinish("denied"));
      if (Notification.permission === "granted") {
        return pushSubscribe(settings).then(
          () => pushFinish("subscribed"),
          (error) => pushFinish("failed", error)
        );
      }
      if (pushSnoozed()) return Promise.resolve(pushFinish("snoozed"));
      if (pushAsking) return pushAsking;
      pushAsking = new Promise((resolve) => {
        setTimeout(() => {
          showSoftAsk(settings, (status, error) => {
            pushAsking = null;
            resolve(pushFinish(status, error));
          });
        }, Math.max(0, Number(settings.delayMs) || 0));
      });
      return pushAsking;
    },

    /** Stops notifications in this browser and tells Wayfarer. Resolves to true if there was a
     * subscription. */
    async unsubscribe(options) {
      if (!pushSupported()) return false;
      const settings = pushSettings(options);
      // getRegistration() takes a URL in the scope: the worker's own URL is in its default scope.
      const registration = await navigator.serviceWorker.getRegistration(settings.scope || settings.serviceWorker);
      const subscription = registration && (await registration.pushManager.getSubscription());
      if (!subscription) return false;
      await subscription.unsubscribe();
      if (storage) storage.removeItem(PUSH_SYNCED_KEY);
      await edgeCall("POST", "/v1/push/unsubscribe", { endpoint: subscription.endpoint }).catch((error) =>
        console.warn("wayfarer.js: push unsubscribe:", error.message)
      );
      return true;
    },
  };

  // --- Onsite personalisation: recommendations, search, placements, surveys -----------------
  //
  // Reads from Wayfarer's browser endpoints for the current visitor (their ids in the query).
  // What comes back is plain text: the tracker builds the DOM with textContent and only links
  // http(s) URLs, so a product name or a banner's text can never inject HTML or script.

  const SETTLE_MS = 3000; // placements wait at most this long for the outbox to go out
  const SURVEY_TEXT = {
    send: "Send",
    comment: "Anything you would like to tell us? (optional)",
    low: "0 = not at all likely",
    high: "10 = extremely likely",
    pick: "Choose a score from 0 to 10.",
    empty: "Answer at least one question.",
    already: "You have already answered this survey. Thank you!",
    failed: "Your answer could not be sent. Please try again.",
  };
  let uniqueIds = 0;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

  function visitorQuery(params) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
    }
    query.set("anonymousId", identity.anonymousId);
    if (identity.userId) query.set("userId", identity.userId);
    return "?" + query.toString();
  }

  function visitorBody(fields) {
    const body = Object.assign({ anonymousId: identity.anonymousId }, fields);
    if (identity.userId) body.userId = identity.userId;
    return body;
  }

  // Sends what is queued for this team before a read that depends on it (placements follow the
  // segments those events qualify for), the previous page's beacon included: it may still be on
  // its way. Gives up at the deadline or on a failure.
  async function settle() {
    const deadline = Date.now() + SETTLE_MS;
    while (Date.now() < deadline && failures === 0) {
      const mine = outbox.load().some((e) => e.key === writeKey && e.host === host);
      if (!mine && flushing === null) return;
      await Promise.race([flush(true), sleep(deadline - Date.now())]);
    }
  }

  function safeUrl(value) {
    if (typeof value !== "string" || !value.trim()) return null;
    try {
      const url = new URL(value, window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null && text !== "") element.textContent = String(text);
    return element;
  }

  function image(url, className) {
    const img = node("img", className);
    img.src = url;
    img.alt = ""; // decorative: the name or title beside it says what it is
    img.loading = "lazy";
    return img;
  }

  function priceLabel(product) {
    if (typeof product.price !== "number") return "";
    try {
      const format = { style: "currency", currency: product.currency || "EUR" };
      return new Intl.NumberFormat(navigator.language || undefined, format).format(product.price);
    } catch (error) {
      return `${product.price} ${product.currency || ""}`.trim();
    }
  }

  // <ul class="wayfarer-products"> of links; a click calls onClick(product, position from 1).
  // linkTemplate ("/p/{sku}") links to the shop's own page instead of the product's url.
  function productList(products, linkTemplate, onClick) {
    const list = node("ul", "wayfarer-products");
    list.setAttribute("role", "list");
    products.forEach((product, index) => {
      const href = linkTemplate
        ? safeUrl(linkTemplate.replace(/\{sku\}/g, encodeURIComponent(product.sku)))
        : safeUrl(product.url);
      const link = node(href ? "a" : "span", "wayfarer-product-link");
      if (href) link.href = href;
      const picture = safeUrl(product.imageUrl);
      if (picture) link.append(image(picture, "wayfarer-product-image"));
      link.append(node("span", "wayfarer-product-name", product.name || product.sku));
      const price = priceLabel(product);
      if (price) link.append(node("span", "wayfarer-product-price", price));
      link.addEventListener("click", () => onClick(product, index + 1));
      const item = node("li", "wayfarer-product");
      item.append(link);
      list.append(item);
    });
    return list;
  }

  // What an auto-filled element shows: its [data-wayfarer-slot] child, or itself.
  function slotOf(element) {
    return element.querySelector("[data-wayfarer-slot]") || element;
  }

  function stateOf(element, state, error) {
    element.setAttribute("data-wayfarer-state", state);
    if (error) console.warn("wayfarer.js:", error.message || error);
  }

  /** recommendations({strategy, placement, product, limit}): a promise of Wayfarer's answer. */
  function recommendations(opts) {
    const o = isPlainObject(opts) ? opts : {};
    const params = { strategy: o.strategy, placement: o.placement, product: o.product, limit: o.limit };
    return edgeCall("GET", "/v1/recommendations" + visitorQuery(params));
  }

  async function fillRecommendations(element) {
    const data = element.dataset;
    try {
      const answer = await recommendations({
        strategy: data.strategy,
        placement: data.wayfarerRecommendations || data.placement,
        product: data.product,
        limit: data.limit,
      });
      const clicked = (product, position) =>
        api.track("Recommendation Clicked", {
          recommendation_id: answer.recommendationId,
          placement: answer.placement,
          strategy: answer.strategy,
          sku: product.sku,
          position,
        });
      slotOf(element).replaceChildren(productList(answer.products, data.productUrl, clicked));
      element.hidden = answer.products.length === 0; // nothing to recommend: no empty box
      stateOf(element, answer.products.length ? "filled" : "empty");
    } catch (error) {
      stateOf(element, "error", error);
    }
  }

  /** search(query, {limit, offset, category}): a promise of Wayfarer's answer. */
  function search(query, opts) {
    const o = isPlainObject(opts) ? opts : {};
    const params = { q: String(query || "").trim(), limit: o.limit, offset: o.offset, category: o.category };
    return edgeCall("GET", "/v1/search" + visitorQuery(params));
  }

  function renderSearch(target, answer, linkTemplate) {
    const count = `${answer.total} result${answer.total === 1 ? "" : "s"}`;
    const summary = answer.corrected
      ? `${count} for “${answer.corrected}” (you searched for “${answer.query}”)`
      : `${count} for “${answer.query}”`;
    const clicked = (product, position) =>
      api.track("Product Clicked", { search_id: answer.searchId, query: answer.query, sku: product.sku, position });
    const parts = [node("p", "wayfarer-search-summary", summary)];
    if (answer.products.length) parts.push(productList(answer.products, linkTemplate, clicked));
    slotOf(target).replaceChildren(...parts);
    target.hidden = false;
    stateOf(target, answer.products.length ? "filled" : "empty");
  }

  // <form data-wayfarer-search="results-id">: its search box asks Wayfarer, the results go into
  // the element with that id.
  function wireSearch(form) {
    if (form.wayfarerWired) return;
    form.wayfarerWired = true;
    form.addEventListener("submit", (event) => {
      const target = document.getElementById(form.getAttribute("data-wayfarer-search"));
      const input = form.querySelector('input[type="search"], input[name="q"]');
      if (!target || !input) return;
      event.preventDefault();
      if (!input.value.trim()) return;
      target.setAttribute("aria-busy", "true");
      search(input.value, { limit: form.dataset.limit, category: form.dataset.category })
        .then(
          (answer) => renderSearch(target, answer, form.dataset.productUrl),
          (error) => {
            slotOf(target).replaceChildren(node("p", "wayfarer-search-summary", "Search failed. Please try again."));
            target.hidden = false;
            stateOf(target, "error", error);
          }
        )
        .then(() => target.removeAttribute("aria-busy"));
    });
  }

  /** placements(keys): a promise of {key: variant or null}; sends what is queued first. */
  async function placements(keys) {
    const list = (Array.isArray(keys) ? keys : String(keys || "").split(","))
      .map((key) => String(key).trim())
      .filter(Boolean);
    await settle();
    const answer = await edgeCall("GET", "/v1/placements" + visitorQuery({ keys: list.join(",") }));
    return answer.placements;
  }

  function placementProperties(variant) {
    return { placement: variant.placement, variant: variant.variant, variant_name: variant.name };
  }

  function renderPlacement(element, variant) {
    const box = node("div", "wayfarer-placement");
    const picture = safeUrl(variant.imageUrl);
    if (picture) box.append(image(picture, "wayfarer-placement-image"));
    if (variant.title) box.append(node("p", "wayfarer-placement-title", variant.title));
    if (variant.body) box.append(node("p", "wayfarer-placement-body", variant.body));
    const href = safeUrl(variant.linkUrl);
    if (href) {
      const link = node("a", "wayfarer-placement-link", variant.linkText || variant.title || href);
      link.href = href;
      link.addEventListener("click", () =>
        api.track("Placement Clicked", Object.assign(placementProperties(variant), { url: href }))
      );
      box.append(link);
    }
    slotOf(element).replaceChildren(box);
    element.setAttribute("data-wayfarer-variant", variant.variant);
    stateOf(element, "filled");
    api.track("Placement Viewed", placementProperties(variant));
  }

  async function fillPlacements(elements) {
    if (!elements.length) return;
    const keyOf = (element) => element.getAttribute("data-wayfarer-placement");
    try {
      const variants = await placements(Array.from(new Set(elements.map(keyOf))));
      for (const element of elements) {
        const variant = variants[keyOf(element)];
        // No variant for this visitor: the element keeps the content the shop put there.
        if (variant) renderPlacement(element, variant);
        else stateOf(element, "default");
      }
    } catch (error) {
      for (const element of elements) stateOf(element, "error", error);
    }
  }

  // --- Surveys: an accessible form (fieldset and legend, radios, labels) posting one answer.

  function radioGroup(name, legend, values, hint) {
    const fieldset = node("fieldset", "wayfarer-question");
    fieldset.append(node("legend", "", legend));
    const options = node("div", "wayfarer-choices");
    for (const value of values) {
      const label = node("label", "wayfarer-choice");
      const input = node("input");
      input.type = "radio";
      input.name = name;
      input.value = String(value);
      label.append(input, node("span", "", value));
      options.append(label);
    }
    fieldset.append(options);
    if (hint) {
      const ends = node("p", "wayfarer-scale-ends");
      ends.id = name + "-hint";
      ends.append(node("span", "", hint[0]), node("span", "", hint[1]));
      fieldset.setAttribute("aria-describedby", ends.id);
      fieldset.append(ends);
    }
    return fieldset;
  }

  function textArea(id, labelText) {
    const field = node("div", "wayfarer-question");
    const label = node("label", "", labelText);
    label.htmlFor = id;
    const area = node("textarea");
    area.id = area.name = id;
    area.rows = 3;
    area.maxLength = 2000;
    field.append(label, area);
    return field;
  }

  function showThanks(element, text) {
    const thanks = node("p", "wayfarer-survey-thanks", text);
    thanks.setAttribute("role", "status");
    thanks.tabIndex = -1;
    slotOf(element).replaceChildren(thanks);
    return thanks;
  }

  function renderSurvey(surveyId, element, definition, text) {
    const prefix = `wf-survey-${++uniqueIds}`;
    const form = node("form", "wayfarer-survey");
    form.noValidate = true; // the tracker says what is missing, in words, next to the button
    form.setAttribute("aria-label", definition.title || definition.question || "Survey");
    const valueOf = (name) => {
      const checked = form.querySelector(`input[name="${name}"]:checked`);
      return checked ? checked.value : null;
    };
    const isNps = definition.kind === "nps";
    if (isNps) {
      const scale = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
      form.append(radioGroup(`${prefix}-score`, definition.question, scale, [text.low, text.high]));
      form.append(textArea(`${prefix}-comment`, text.comment));
    } else {
      if (definition.question) form.append(node("p", "wayfarer-survey-question", definition.question));
      (definition.questions || []).forEach((question, index) => {
        const name = `${prefix}-q${index}`;
        if (question.type === "text") form.append(textArea(name, question.label));
        else {
          const choices = question.choices && question.choices.length ? question.choices : [1, 2, 3, 4, 5];
          form.append(radioGroup(name, question.label, choices));
        }
      });
    }
    const error = node("p", "wayfarer-survey-error");
    error.id = `${prefix}-error`;
    error.setAttribute("role", "alert");
    const button = node("button", "wayfarer-survey-send", text.send);
    button.type = "submit";
    button.setAttribute("aria-describedby", error.id);
    form.append(error, button);

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = visitorBody({ answers: {}, comment: "", context: context() });
      if (isNps) {
        const score = valueOf(`${prefix}-score`);
        if (score === null) return void (error.textContent = text.pick);
        body.score = Number(score);
        body.comment = form.elements[`${prefix}-comment`].value.trim();
      } else {
        (definition.questions || []).forEach((question, index) => {
          const name = `${prefix}-q${index}`;
          const value = question.type === "text" ? form.elements[name].value.trim() : valueOf(name);
          if (value) body.answers[question.id] = question.type === "scale" && !isNaN(value) ? Number(value) : value;
        });
        if (!Object.keys(body.answers).length) return void (error.textContent = text.empty);
      }
      error.textContent = "";
      button.disabled = true;
      const path = `/v1/surveys/${encodeURIComponent(surveyId)}/answers`;
      try {
        await edgeCall("POST", path, body);
        showThanks(element, definition.thanks || text.already).focus();
        stateOf(element, "answered");
        emit("survey", { survey: surveyId, status: "answered" });
      } catch (failure) {
        if (failure.status === 409) {
          showThanks(element, text.already).focus();
          stateOf(element, "answered");
          emit("survey", { survey: surveyId, status: "already_answered" });
          return;
        }
        button.disabled = false;
        error.textContent = failure.status === 400 && failure.detail ? failure.detail : text.failed;
      }
    });
    slotOf(element).replaceChildren(form);
    stateOf(element, "open");
  }

  /** survey(surveyId, element or selector, text): shows the survey in the element, unless this
   * visitor answered it already. A promise of the survey's definition. */
  async function survey(surveyId, target, labels) {
    const element = typeof target === "string" ? document.querySelector(target) : target;
    if (!element || !surveyId) throw new Error("wayfarer.survey(surveyId, element) needs both");
    const text = Object.assign({}, SURVEY_TEXT, isPlainObject(labels) ? labels : {});
    try {
      const path = `/v1/surveys/${encodeURIComponent(surveyId)}`;
      const definition = await edgeCall("GET", path + visitorQuery({}));
      if (definition.answered) {
        showThanks(element, text.already);
        stateOf(element, "answered");
      } else renderSurvey(surveyId, element, definition, text);
      return definition;
    } catch (error) {
      stateOf(element, "error", error);
      throw error;
    }
  }

  /** fill(root): fills the data-wayfarer-… elements under root (the page on load). */
  function fill(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const all = (selector) => Array.from(scope.querySelectorAll(selector));
    all("[data-wayfarer-recommendations]").forEach(fillRecommendations);
    all("form[data-wayfarer-search]").forEach(wireSearch);
    all("[data-wayfarer-survey]").forEach((element) =>
      survey(element.getAttribute("data-wayfarer-survey"), element).catch(() => {})
    );
    return fillPlacements(all("[data-wayfarer-placement]"));
  }

  // --- Recording ----------------------------------------------------------------------------

  function enqueue(fields) {
    const message = Object.assign(
      {
        type: fields.type,
        messageId: uuid(),
        timestamp: new Date().toISOString(),
        anonymousId: identity.anonymousId,
      },
      fields,
      { context: context() }
    );
    if (identity.userId) message.userId = identity.userId;
    let size;
    try {
      size = byteLength(JSON.stringify(message));
    } catch (error) {
      console.error(`wayfarer.js: ${message.type} properties cannot be sent as JSON`, error);
      return;
    }
    if (size > MAX_MESSAGE_BYTES) {
      console.warn(`wayfarer.js: ${message.type} message over ${MAX_MESSAGE_BYTES} bytes; not sent`);
      return;
    }
    const queued = outbox.add({ key: writeKey, host, message });
    emit("queued", message);
    // While backing off, the retry timer decides when to try again.
    if (failures === 0) schedule(queued >= FLUSH_AT ? 0 : FLUSH_INTERVAL_MS);
  }

  const api = {
    loaded: true,
    VERSION,

    load() {
      console.warn("wayfarer.js: already loaded");
    },

    /** identify(userId, traits) or identify(traits): who the visitor is. */
    identify(userId, traits) {
      if (isPlainObject(userId)) {
        traits = userId;
        userId = null;
      }
      if (userId !== null && userId !== undefined && String(userId).trim()) {
        identity.userId = String(userId).trim();
        writeId(USER_ID_KEY, identity.userId);
      }
      enqueue({ type: "identify", traits: isPlainObject(traits) ? traits : {} });
    },

    /** track(event, properties): something the visitor did. */
    track(event, properties) {
      if (typeof event !== "string" || !event.trim()) {
        console.warn("wayfarer.js: track() needs an event name");
        return;
      }
      enqueue({ type: "track", event: event.trim(), properties: isPlainObject(properties) ? properties : {} });
    },

    /** page(name, properties) or page(properties): a page view; url, path… are added. */
    page(name, properties) {
      if (isPlainObject(name)) {
        properties = name;
        name = null;
      }
      const fields = {
        type: "page",
        properties: Object.assign(pageProperties(), isPlainObject(properties) ? properties : {}),
      };
      if (typeof name === "string" && name.trim()) {
        fields.name = name.trim();
        fields.properties.name = fields.name;
      }
      enqueue(fields);
    },

    /** Forget the visitor (sign-out on a shared computer): a new anonymous id, no user id. */
    reset() {
      identity.userId = null;
      writeId(USER_ID_KEY, null);
      identity.anonymousId = uuid();
      writeId(ANONYMOUS_ID_KEY, identity.anonymousId);
    },

    anonymousId() {
      return identity.anonymousId;
    },

    userId() {
      return identity.userId;
    },

    /** Send what is queued now (the retry backoff still applies after a failure). */
    flush() {
      return flush(false);
    },

    /** ready(callback): run once the tracker has loaded (at once if it has). */
    ready(callback) {
      if (typeof callback === "function") callback(api);
    },

    /** How many messages wait in the outbox (this tab's and the site's other tabs'). */
    pending() {
      return outbox.load().length;
    },

    /** on(name, listener): "queued" (message), "sent" (messages), "retry", "dropped", "push". */
    on(name, listener) {
      (listeners[name] = listeners[name] || []).push(listener);
    },

    productsSearched(query) {
      api.track("Products Searched", { query: String(query || "") });
    },

    /** Web push: push.prompt(options), push.unsubscribe(), push.supported(). Call it inside
     * ready(): before the tracker loads, `wayfarer.push` is the queue's own Array.push. */
    push,

    // Onsite personalisation (docs/tracker.md): promises of Wayfarer's answers.
    recommendations,
    search,
    placements,
    survey,
    fill,
  };

  // productViewed(product), productAdded(product)…: track() with the Segment E-commerce name.
  for (const [method, event] of Object.entries(ECOMMERCE_EVENTS)) {
    api[method] = (properties) => api.track(event, properties);
  }
  api.productRemovedFromWishlist = (product) => api.track("Product Removed from Wishlist", product);

  // --- Start --------------------------------------------------------------------------------

  function replay(calls) {
    for (const call of calls) {
      try {
        api[call[0]](...call.slice(1));
      } catch (error) {
        console.error(`wayfarer.js: replaying ${call[0]}() failed`, error);
      }
    }
  }

  // Calls made before this script arrived, as ["track", "Signed Up", {…}]. Listeners first, so
  // they hear about the automatic page view too; then the page view; then the rest in order.
  const calls = stub.filter((call) => Array.isArray(call) && typeof api[call[0]] === "function");
  window.wayfarer = api;
  replay(calls.filter((call) => call[0] === "on"));
  if (options.autoPage !== false) api.page();
  replay(calls.filter((call) => call[0] !== "on"));

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flushWithBeacon();
  });
  window.addEventListener("pagehide", flushWithBeacon);
  window.addEventListener("online", () => {
    // Back online: do not wait out the backoff.
    failures = 0;
    clearTimeout(timer);
    timer = null;
    timerDue = Infinity;
    flush();
  });
  if (outbox.load().length) schedule(0); // left over from an earlier page
  // The page's data-wayfarer-… elements, once they are all there.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => fill());
  else fill();
})();
