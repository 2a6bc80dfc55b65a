/* Goldpath: small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  // One submission per form: a double click must not start two runs (the server also
  // deduplicates by the form's request key).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.submitted) { event.preventDefault(); return; }
    form.dataset.submitted = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  });

  // Live progress: poll the run's progress fragment until it says the run is done,
  // then reload once for the full report.
  function follow(box) {
    var url = box.dataset.progressUrl;
    function poll() {
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) {
          box.innerHTML = html;
          var state = box.querySelector("[data-run-done]");
          if (state && state.dataset.runDone === "1") { window.location.reload(); }
          else { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 500);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-progress-url]").forEach(follow);
  });
})();
