// Autosaved oral forms (form.autosave) show the server's answer for refused saves too: 400, 401 (the
// login expired), 403 (no longer allowed, or a stale security token), 404 (no longer in the round)
// and 409 (someone else saved first). htmx does not swap error responses by default; this lets it,
// for these forms only. The answer goes into the form's status line, so the text being typed is
// never replaced. All the markup lives in the templates: this file only decides whether to swap, and
// saves what was changed before it ran.
(function () {
  "use strict";
  var SHOWN = [400, 401, 403, 404, 409];

  function refused(evt) {
    var elt = evt.detail.elt;
    var form = elt && elt.closest ? elt.closest("form.autosave") : null;
    return form && SHOWN.indexOf(evt.detail.xhr.status) >= 0 ? form : null;
  }

  // django-htmx's debug helper (DEBUG only) would replace the whole page with a 400/403/404 response:
  // keep these from reaching it, so a typed note survives.
  document.body.addEventListener("htmx:beforeOnLoad", function (evt) {
    if (refused(evt)) evt.stopPropagation();
  });

  // A change made before the scripts ran is saved as soon as they have: over a slow connection the page
  // shows (and takes clicks and typing) before htmx is listening, and a browser that restores typed text
  // on reload does so before it too. Without this such an outcome would sit checked on screen, unsaved.
  function changedBeforeScripts(form) {
    return Array.prototype.some.call(form.elements, function (field) {
      if (field.type === "radio" || field.type === "checkbox") return field.checked !== field.defaultChecked;
      if (field.tagName === "TEXTAREA") return field.value !== field.defaultValue;
      return false;
    });
  }

  htmx.onLoad(function (elt) {
    if (elt !== document.body) return;
    document.querySelectorAll("form.autosave").forEach(function (form) {
      if (changedBeforeScripts(form)) htmx.trigger(form, "change");
    });
  });

  document.body.addEventListener("htmx:beforeSwap", function (evt) {
    if (!refused(evt)) return;
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
    if (evt.detail.serverResponse.indexOf("data-save-status") < 0) {
      // Not one of our status fragments (e.g. Django's CSRF failure page): the page's own message.
      evt.detail.serverResponse = document.getElementById("save-refused").innerHTML;
    }
  });
})();
