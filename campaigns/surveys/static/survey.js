// The survey page works without this script. With it: a question that depends on a score (show_if)
// appears as soon as a low score is chosen, and the answers so far are kept as a draft.
(function () {
  "use strict";
  var form = document.querySelector("form.survey");
  if (!form) { return; }

  function scoreOf(key) {
    var checked = form.querySelector('input[name="q_' + key + '"]:checked');
    return checked ? parseInt(checked.value, 10) : null;
  }

  function branch() {
    form.querySelectorAll("[data-show-if]").forEach(function (block) {
      var score = scoreOf(block.getAttribute("data-show-if"));
      var show = score !== null && score <= parseInt(block.getAttribute("data-show-max"), 10);
      block.hidden = !show;
      block.querySelectorAll("input, textarea, select").forEach(function (field) { field.disabled = !show; });
    });
  }

  var timer = null;
  var status = document.getElementById("draft-status");
  var draftUrl = form.getAttribute("data-draft");
  function keepDraft() {
    if (!draftUrl || !window.fetch) { return; }
    clearTimeout(timer);
    timer = setTimeout(function () {
      var data = new URLSearchParams(new FormData(form));
      fetch(draftUrl, { method: "POST", body: data, credentials: "omit" }).then(function (answer) {
        if (status && answer.status === 204) { status.textContent = status.getAttribute("data-saved") || ""; }
      }).catch(function () { /* the answers are still on the page; sending them saves them */ });
    }, 800);
  }

  // An answer given clears its "please answer": the error was about the question as it was sent.
  function answered(field) {
    var question = field.closest ? field.closest(".question") : null;
    if (!question) { return; }
    var error = question.querySelector(".field-error");
    if (error) { error.parentNode.removeChild(error); }
    question.querySelectorAll("[aria-invalid]").forEach(function (node) {
      node.removeAttribute("aria-invalid");
      node.removeAttribute("aria-describedby");
    });
    var summary = document.getElementById("error-summary");
    var entry = summary ? summary.querySelector('a[href="#' + question.id + '"]') : null;
    if (entry) { entry.parentNode.parentNode.removeChild(entry.parentNode); }
    if (summary && !summary.querySelector("li")) { summary.parentNode.removeChild(summary); }
  }

  form.addEventListener("change", function (event) { answered(event.target); branch(); keepDraft(); });
  form.addEventListener("input", function (event) { if (event.target.tagName === "TEXTAREA") { keepDraft(); } });
  branch();
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
}());
