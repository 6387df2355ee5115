// The journey editor's one small script (templates/journeys/editor.html). The server draws the
// canvas and is the only source of truth: every change is an htmx POST answered with the
// re-rendered canvas. This script only does what a browser must do locally: pan and zoom, drag a
// card (then POST its x/y), drag from a port onto a card (then POST the connection), the
// keyboard (Enter, Delete, M + arrows, +/-/0, arrows), the palette and the dialogs, and keeping
// focus where it was across swaps. No inline handlers (the Content-Security-Policy forbids them).
(function () {
  "use strict";
  var MIN_ZOOM = 0.3, MAX_ZOOM = 2, STEP = 1.2, PAN = 60, NUDGE = 20, DRAG_SLOP = 5;
  var zoom = 1;
  var zoomChosen = false;  // the marketer zoomed: keep it across swaps and resizes
  var moving = null;  // {card, x, y, x0, y0}: keyboard move mode
  var focusAfterSwap = null;

  function $(sel, root) { return (root || document).querySelector(sel); }
  function frame() { return document.getElementById("canvas-frame"); }
  function world() { return document.getElementById("canvas"); }
  function announce(text) {
    var el = document.getElementById("editor-announce");
    if (el) { el.textContent = ""; window.setTimeout(function () { el.textContent = text; }, 30); }
  }
  function post(url, values, source) {
    return window.htmx.ajax("POST", url, {
      target: "#canvas", swap: "outerHTML", values: values, source: source || world()
    });
  }

  // --- zoom and pan --------------------------------------------------------------------------
  function applyZoom() {
    var w = world(), sizer = document.getElementById("canvas-sizer");
    if (!w || !sizer) return;
    var width = +w.dataset.width, height = +w.dataset.height;
    w.style.transform = "scale(" + zoom + ")";
    sizer.style.width = Math.ceil(width * zoom) + "px";
    sizer.style.height = Math.ceil(height * zoom) + "px";
    // A journey narrower than the frame sits in its middle, not against its left edge.
    var f = frame();
    sizer.style.marginLeft = f ? Math.max(0, Math.floor((f.clientWidth - width * zoom) / 2)) + "px" : "0";
    var out = document.getElementById("zoom-level");
    if (out) out.textContent = Math.round(zoom * 100) + "%";
  }
  function fitZoom() {
    var f = frame(), w = world();
    if (!f || !w) return 1;
    var z = Math.min(f.clientWidth / +w.dataset.width, f.clientHeight / +w.dataset.height, 1);
    return Math.max(MIN_ZOOM, Math.floor(z * 100) / 100);
  }
  function setZoom(z, cx, cy) {
    var f = frame();
    z = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z));
    if (!f) { zoom = z; return; }
    // Keep the point under (cx, cy) (frame coordinates) where it is.
    cx = cx === undefined ? f.clientWidth / 2 : cx;
    cy = cy === undefined ? f.clientHeight / 2 : cy;
    var sizer = document.getElementById("canvas-sizer");
    var margin = function () { return sizer ? parseFloat(sizer.style.marginLeft) || 0 : 0; };
    var wx = (f.scrollLeft + cx - margin()) / zoom, wy = (f.scrollTop + cy) / zoom;
    zoom = z;
    zoomChosen = true;
    applyZoom();
    f.scrollLeft = wx * zoom - cx + margin();
    f.scrollTop = wy * zoom - cy;
  }
  function fit() {
    zoom = fitZoom();
    zoomChosen = true;
    applyZoom();
    var f = frame();
    if (f) { f.scrollLeft = 0; f.scrollTop = 0; }
  }
  function zoomCommand(what) {
    if (what === "in") setZoom(zoom * STEP);
    else if (what === "out") setZoom(zoom / STEP);
    else fit();
    announce("Zoom " + Math.round(zoom * 100) + "%");
  }

  // --- moving a card (mouse drag or keyboard) ------------------------------------------------
  function cardAt(card, x, y) {
    card.style.left = x + "px";
    card.style.top = y + "px";
    redrawEdges(card, x, y);
  }
  // The edges of a card being moved follow it (the same cubic the server draws).
  function edgePath(sx, sy, tx, ty) {
    var bend = ty > sy ? Math.max(30, Math.floor((ty - sy) / 2)) : 90 + Math.min(200, Math.floor((sy - ty) / 3));
    return "M" + sx + "," + sy + " C" + sx + "," + (sy + bend) + " " + tx + "," + (ty - bend) + " " + tx + "," + (ty - 6);
  }
  function cardBox(key) {
    var c = document.getElementById("node-" + key);
    return c ? { x: parseFloat(c.style.left), y: parseFloat(c.style.top), w: c.offsetWidth, h: c.offsetHeight, el: c } : null;
  }
  function portAnchor(key, port) {
    var box = cardBox(key);
    if (!box) return null;
    var p = box.el.querySelector('.port[data-port="' + port + '"]');
    var ox = p ? +p.dataset.ox : box.w / 2;
    return { x: box.x + ox, y: box.y + box.h };
  }
  function redrawEdges(card) {
    var key = card.dataset.key, w = world();
    if (!w) return;
    w.querySelectorAll('path.edge[data-source="' + key + '"], path.edge[data-target="' + key + '"]').forEach(function (path) {
      var from = portAnchor(path.dataset.source, path.dataset.port), to = cardBox(path.dataset.target);
      if (from && to) path.setAttribute("d", edgePath(from.x, from.y, to.x + to.w / 2, to.y));
    });
  }
  function startMove(card) {
    if (!card.dataset.moveUrl) return;
    moving = { card: card, x: +card.dataset.x, y: +card.dataset.y, x0: +card.dataset.x, y0: +card.dataset.y };
    card.classList.add("is-moving");
    announce("Moving " + card.dataset.title + ". Arrow keys move it, Shift for bigger steps. Enter puts it down, Escape cancels.");
  }
  function endMove(save) {
    if (!moving) return;
    var m = moving;
    moving = null;
    m.card.classList.remove("is-moving");
    if (save && (m.x !== m.x0 || m.y !== m.y0)) {
      focusAfterSwap = m.card.id;
      post(m.card.dataset.moveUrl, { x: m.x, y: m.y }, m.card);
      announce("Moved " + m.card.dataset.title + ".");
    } else {
      cardAt(m.card, m.x0, m.y0);
      if (!save) announce("Move cancelled.");
    }
  }

  // --- the keyboard --------------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    var f = frame();
    if (!f) return;
    var target = event.target;
    var card = target.classList && target.classList.contains("node-card") ? target : null;
    var onCanvas = target === f || card;
    if (moving && card === moving.card) {
      var step = event.shiftKey ? NUDGE * 5 : NUDGE;
      var d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[event.key];
      if (d) {
        moving.x = Math.max(0, moving.x + d[0]);
        moving.y = Math.max(0, moving.y + d[1]);
        cardAt(card, moving.x, moving.y);
        card.scrollIntoView({ block: "nearest", inline: "nearest" });
        event.preventDefault();
      } else if (event.key === "Enter" || event.key === "m" || event.key === "M") {
        endMove(true);
        event.preventDefault();
      } else if (event.key === "Escape") {
        endMove(false);
        event.preventDefault();
      }
      return;
    }
    if (!onCanvas || event.altKey || event.ctrlKey || event.metaKey) return;
    if (card && event.key === "Enter") {
      var open = card.querySelector("[data-open-settings]");
      if (open) { open.click(); event.preventDefault(); }
      return;
    }
    if (card && (event.key === "Delete" || event.key === "Backspace")) {
      event.preventDefault();
      if (!card.dataset.deleteUrl) {
        announce(card.dataset.moveUrl ? "The trigger can't be deleted." : "This journey can't be changed here.");
        return;
      }
      if (window.confirm("Delete the step “" + card.dataset.title + "”? Its paths join up where they can.")) {
        post(card.dataset.deleteUrl, {}, card);
        announce("Deleted " + card.dataset.title + ".");
        focusAfterSwap = "canvas-frame";
      }
      return;
    }
    if (card && (event.key === "m" || event.key === "M")) {
      startMove(card);
      event.preventDefault();
      return;
    }
    var pan = { ArrowLeft: [-PAN, 0], ArrowRight: [PAN, 0], ArrowUp: [0, -PAN], ArrowDown: [0, PAN] }[event.key];
    if (pan) { f.scrollBy(pan[0], pan[1]); event.preventDefault(); return; }
    if (event.key === "+" || event.key === "=") { zoomCommand("in"); event.preventDefault(); }
    else if (event.key === "-" || event.key === "_") { zoomCommand("out"); event.preventDefault(); }
    else if (event.key === "0") { zoomCommand("fit"); event.preventDefault(); }
  });

  // --- the mouse: drag cards, drag from ports, pan the background, zoom with the wheel ---------
  var drag = null;
  document.addEventListener("pointerdown", function (event) {
    var f = frame();
    if (!f || event.button !== 0 || !f.contains(event.target)) return;
    var handle = event.target.closest("[data-port-handle]");
    var card = event.target.closest(".node-card");
    if (handle && card && card.dataset.connectUrl) {
      drag = { kind: "connect", card: card, port: handle.dataset.port, x: event.clientX, y: event.clientY, started: false, handle: handle };
    } else if (card && card.dataset.moveUrl && !event.target.closest("button")) {
      drag = { kind: "card", card: card, x: event.clientX, y: event.clientY, started: false,
               left: +card.dataset.x, top: +card.dataset.y };
    } else if (!card) {
      drag = { kind: "pan", x: event.clientX, y: event.clientY, sl: f.scrollLeft, st: f.scrollTop, started: false };
    }
  });
  document.addEventListener("pointermove", function (event) {
    if (!drag) return;
    var dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!drag.started && Math.abs(dx) + Math.abs(dy) < DRAG_SLOP) return;
    if (!drag.started) {
      drag.started = true;
      document.body.classList.add("is-dragging");
      if (drag.kind === "card") drag.card.classList.add("is-moving");
      if (drag.kind === "connect") drag.line = connectLine();
    }
    if (drag.kind === "pan") {
      var f = frame();
      f.scrollLeft = drag.sl - dx;
      f.scrollTop = drag.st - dy;
    } else if (drag.kind === "card") {
      drag.nx = Math.max(0, Math.round(drag.left + dx / zoom));
      drag.ny = Math.max(0, Math.round(drag.top + dy / zoom));
      cardAt(drag.card, drag.nx, drag.ny);
    } else if (drag.kind === "connect" && drag.line) {
      var from = portAnchor(drag.card.dataset.key, drag.port), rect = world().getBoundingClientRect();
      var tx = (event.clientX - rect.left) / zoom, ty = (event.clientY - rect.top) / zoom;
      drag.line.setAttribute("d", "M" + from.x + "," + from.y + " L" + tx + "," + ty);
      highlightDrop(event);
    }
    event.preventDefault();
  });
  document.addEventListener("pointerup", function (event) {
    if (!drag) return;
    var d = drag;
    drag = null;
    document.body.classList.remove("is-dragging");
    if (!d.started) return;  // a click: let it through
    suppressClick();
    if (d.kind === "card") {
      d.card.classList.remove("is-moving");
      if (d.nx !== undefined) post(d.card.dataset.moveUrl, { x: d.nx, y: d.ny }, d.card);
    } else if (d.kind === "connect") {
      if (d.line) d.line.remove();
      var over = dropTarget(event);
      clearDrop();
      if (over && over !== d.card) {
        post(d.card.dataset.connectUrl, { port: d.port, target: over.dataset.key, from: "canvas" }, d.card);
        announce("Connected to " + over.dataset.title + ".");
      }
    }
  });
  function suppressClick() {
    var stop = function (e) { e.stopPropagation(); e.preventDefault(); };
    document.addEventListener("click", stop, { capture: true, once: true });
    window.setTimeout(function () { document.removeEventListener("click", stop, { capture: true }); }, 0);
  }
  function connectLine() {
    var svg = world() && world().querySelector("svg.canvas-edges");
    if (!svg) return null;
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("class", "edge edge-drawing");
    svg.appendChild(path);
    return path;
  }
  function dropTarget(event) {
    var el = document.elementFromPoint(event.clientX, event.clientY);
    return el && el.closest(".node-card");
  }
  function highlightDrop(event) {
    clearDrop();
    var over = dropTarget(event);
    if (over && drag && over !== drag.card) over.classList.add("is-drop-target");
  }
  function clearDrop() {
    document.querySelectorAll(".is-drop-target").forEach(function (el) { el.classList.remove("is-drop-target"); });
  }
  document.addEventListener("wheel", function (event) {
    var f = frame();
    if (!f || !f.contains(event.target) || !event.ctrlKey) return;  // plain wheel scrolls (pans)
    event.preventDefault();  // ctrl+wheel, and a trackpad pinch, zoom around the pointer
    var rect = f.getBoundingClientRect();
    setZoom(zoom * Math.exp(-event.deltaY / 300), event.clientX - rect.left, event.clientY - rect.top);
  }, { passive: false });

  // --- buttons, the palette, dialogs ---------------------------------------------------------
  document.addEventListener("click", function (event) {
    var zoomButton = event.target.closest("[data-zoom]");
    if (zoomButton) { zoomCommand(zoomButton.dataset.zoom); return; }
    var add = event.target.closest("[data-palette]");
    if (add) {
      var palette = document.getElementById("palette");
      $("#palette-source").value = add.dataset.source;
      $("#palette-port").value = add.dataset.port;
      $("#palette-after").textContent = "after “" + add.dataset.after + "”";
      palette.returnFocus = add.closest(".node-card");
      palette.showModal();
      var first = palette.querySelector(".palette-kind");
      if (first) first.focus();
      return;
    }
    var handle = event.target.closest(".port-handle");
    if (handle) {  // a connected port: choose where it goes in the side panel
      var card = handle.closest(".node-card");
      focusAfterSwap = "connect-" + handle.dataset.port;
      window.htmx.ajax("GET", card.dataset.settingsUrl, { target: "#panel", swap: "outerHTML", source: card });
      return;
    }
    var close = event.target.closest("[data-close-dialog]");
    if (close) { var dialog = close.closest("dialog"); if (dialog) dialog.close(); return; }
    var focusNode = event.target.closest("[data-focus-node]");
    if (focusNode) {
      document.querySelectorAll("dialog[open]").forEach(function (d) { d.close(); });
      var target = document.getElementById("node-" + focusNode.dataset.focusNode);
      if (target) {
        target.scrollIntoView({ block: "center", inline: "center" });
        target.focus();
        if (!focusNode.hasAttribute("hx-get")) {  // the test run's links open the settings too
          event.preventDefault();
          var open = target.querySelector("[data-open-settings]");
          if (open) open.click();
        }
      }
    }
    var back = event.target.closest("[data-return-focus]");
    if (back) focusAfterSwap = "node-" + back.dataset.returnFocus;
  });
  // Choosing a kind closes the palette (the htmx request carries the choice).
  document.addEventListener("submit", function (event) {
    var dialog = event.target.closest && event.target.closest("dialog#palette");
    if (dialog) window.setTimeout(function () { dialog.close(); }, 0);
  });
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog.id === "palette" && dialog.returnFocus && document.activeElement === document.body) {
      dialog.returnFocus.focus();
    }
  }, true);

  // --- htmx: keep focus and zoom across swaps; open dialogs their content arrived in -----------
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    if (!focusAfterSwap && active && active.id && event.detail.target && event.detail.target.contains(active)) {
      focusAfterSwap = active.id;
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    applyZoom();
    var target = event.detail.target;
    var dialog = target && target.closest && target.closest("dialog");
    if (dialog && !dialog.open) {
      dialog.showModal();
      var first = dialog.querySelector("input:not([type=hidden]):not([disabled]), button.primary, a[data-focus-node]");
      if (first) first.focus();
    }
    var panel = document.getElementById("panel");
    var auto = panel && panel.querySelector("[data-autofocus]");
    if (auto && target && (target.id === "canvas" || target.id === "panel" || target === panel)) {
      auto.focus();
      auto.removeAttribute("data-autofocus");
      focusAfterSwap = null;
      return;
    }
    if (focusAfterSwap) {
      var el = document.getElementById(focusAfterSwap);
      focusAfterSwap = null;
      if (el) el.focus({ preventScroll: true });
    }
  });
  // A panel opened from a card marks that card as selected.
  document.addEventListener("htmx:afterSwap", function (event) {
    var t = event.detail.target;
    if (!t || t.id !== "panel") return;
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    var card = source && source.closest && source.closest(".node-card");
    if (card) {
      document.querySelectorAll(".node-card.is-selected").forEach(function (c) { c.classList.remove("is-selected"); });
      card.classList.add("is-selected");
    }
  });

  // The frame reaches down to the window's bottom edge, so that "Fit" shows the whole journey
  // without the page scrolling (the header above it varies: versions, messages).
  function sizeFrame() {
    var f = frame();
    if (!f || window.innerWidth <= 760) return;  // phones: the stylesheet's fixed height
    var top = f.getBoundingClientRect().top + window.scrollY;
    f.style.height = Math.max(420, window.innerHeight - top - 16) + "px";
  }
  window.addEventListener("resize", function () { sizeFrame(); applyZoom(); });

  function init() {
    if (!world()) return;
    sizeFrame();
    if (!zoomChosen) {
      var f = frame(), w = world();
      // Start at 100%, or narrower so that the journey's width fits (down to 60%; then
      // scroll). A long journey scrolls down, as a page does.
      zoom = f ? Math.min(1, Math.max(0.6, Math.floor(f.clientWidth / +w.dataset.width * 100) / 100)) : 1;
    }
    applyZoom();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
