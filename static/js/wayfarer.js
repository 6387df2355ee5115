// The UI's own script, loaded by base.html. The Content-Security-Policy allows no inline handlers
// (onsubmit="…"), so behaviour that a page needs is declared with data- attributes and wired here.
(function () {
  "use strict";
  // <form data-confirm="Delete this?">: ask before a destructive plain (non-htmx) submit.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
