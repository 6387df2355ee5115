/*! wayfarer-sw.js — shows Wayfarer's web push notifications and opens their links.
 *
 * A service worker must come from the shop's own origin. Serve a one-line file there, e.g.
 * https://shop.example/wayfarer-sw.js:
 *
 *     importScripts("https://wayfarer.example.com/static/js/wayfarer-sw.js");
 *
 * (a shop with a service worker of its own adds that line to it). The tracker registers
 * "/wayfarer-sw.js" by default (docs/tracker.md, "Web push").
 *
 * A message's payload is JSON (messaging/push.py): {title, body, icon, image, url,
 * actions: [{action, title, url}], tag, delivery}. Its URLs are Wayfarer's tracked links, which
 * record the click and redirect to the shop.
 */
/* eslint-env serviceworker */
(function () {
  "use strict";

  function parse(data) {
    if (!data) return null;
    try {
      return data.json();
    } catch (error) {
      return { title: "", body: data.text() };
    }
  }

  self.addEventListener("push", (event) => {
    const message = parse(event.data);
    // Only Wayfarer's own messages (their tag says so): a shop that imports this file into its
    // own service worker shows its other pushes itself.
    if (!message || typeof message.tag !== "string" || !message.tag.startsWith("wayfarer-")) return;
    const actions = Array.isArray(message.actions) ? message.actions : [];
    const limit = self.Notification && self.Notification.maxActions ? self.Notification.maxActions : 2;
    const urls = {};
    const shown = actions.slice(0, limit).map((action, index) => {
      const id = String(action.action || `action-${index}`);
      urls[id] = action.url || "";
      return { action: id, title: String(action.title || "") };
    });
    const options = {
      body: message.body || "",
      // The tag makes a second copy of the same message (a retried send) replace the first.
      tag: message.tag || undefined,
      actions: shown,
      data: { url: message.url || "", urls, delivery: message.delivery || "" },
    };
    if (message.icon) options.icon = message.icon;
    if (message.image) options.image = message.image;
    event.waitUntil(self.registration.showNotification(message.title || "", options));
  });

  self.addEventListener("notificationclick", (event) => {
    event.notification.close();
    const data = event.notification.data || {};
    const url = (event.action && data.urls && data.urls[event.action]) || data.url;
    if (url) event.waitUntil(self.clients.openWindow(url));
  });
})();
