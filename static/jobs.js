// A job's progress page: polls the job's JSON status and updates the page in place until
// the job ends, then shows its result link. Without JavaScript the page's "Refresh" link
// does the same by hand. Loaded from a file: the Content-Security-Policy allows no inline
// scripts.
(function () {
  "use strict";

  function part(box, name) {
    return box.querySelector('[data-job="' + name + '"]');
  }

  function show(box, status) {
    part(box, "state_label").textContent = status.state_label;
    part(box, "message").textContent = status.message;
    part(box, "count").textContent = status.count;
    var bar = part(box, "bar");
    if (status.total) {
      bar.max = status.total;
      bar.value = status.done;
      bar.textContent = status.percent + "%";
    } else if (status.finished) {
      bar.max = 1;
      bar.value = 1;
    } else {
      bar.removeAttribute("value"); // indeterminate: the amount of work is not known yet
    }
    var error = part(box, "error");
    part(box, "error_text").textContent = status.error;
    error.hidden = !status.error;
    var result = part(box, "result");
    if (status.result_url) {
      var link = part(box, "result_link");
      link.href = status.result_url;
      link.textContent = status.result_label;
    }
    result.hidden = !status.result_url;
    part(box, "refresh").hidden = status.finished;
    if (status.finished) {
      var cancel = document.querySelector('[data-job="cancel"]');
      if (cancel) {
        cancel.remove(); // nothing left to cancel
      }
    }
  }

  function watch(box) {
    var url = box.getAttribute("data-job-status");
    var wait = 1000;

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(response.status);
          }
          return response.json();
        })
        .then(function (status) {
          show(box, status);
          if (!status.finished) {
            wait = Math.min(wait * 1.2, 5000); // long jobs: poll less often as time goes on
            window.setTimeout(poll, wait);
          }
        })
        .catch(function () {
          window.setTimeout(poll, 10000); // the server or the network is away: try again later
        });
    }

    window.setTimeout(poll, wait);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("[data-job-status]");
    for (var i = 0; i < boxes.length; i += 1) {
      watch(boxes[i]);
    }
  });
})();
