/* Inline submission for the hub's embedded forms (optional: without this script the form posts as is).
 * Finds every <form data-hub-form>, fetches a fresh render stamp (so the minimum fill time applies),
 * and submits as JSON to the form's /json endpoint with fetch: the thank-you message replaces the form,
 * or the browser goes to the allow-listed redirect; validation errors appear beside their fields in
 * the visitor's language. If the hub cannot be reached the form falls back to a plain post. */
(function () {
  "use strict";

  function newId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function hidden(form, name, value) {
    var input = form.elements[name];
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }

  function errorBox(form, name) {
    var boxes = form.querySelectorAll("[data-error-for]");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].getAttribute("data-error-for") === name) return boxes[i];
    }
    return null;
  }

  function clearErrors(form) {
    var boxes = form.querySelectorAll("[data-error-for]");
    for (var i = 0; i < boxes.length; i++) { boxes[i].textContent = ""; boxes[i].hidden = true; }
    var invalid = form.querySelectorAll("[aria-invalid]");
    for (var j = 0; j < invalid.length; j++) invalid[j].removeAttribute("aria-invalid");
  }

  function status(form, text) {
    var box = form.querySelector("[data-hub-form-status]");
    if (box) { box.textContent = text; box.hidden = !text; }
  }

  function collect(form) {
    var data = {};
    for (var i = 0; i < form.elements.length; i++) {
      var el = form.elements[i];
      if (!el.name || el.disabled || el.type === "submit" || el.type === "button") continue;
      data[el.name] = el.type === "checkbox" ? el.checked : el.value;
    }
    return data;
  }

  function showErrors(form, errors, fallback) {
    var first = null;
    (errors || []).forEach(function (err) {
      var box = errorBox(form, err.field);
      var input = form.elements[err.field];
      if (box) { box.textContent = err.message; box.hidden = false; }
      if (input && input.setAttribute) {
        input.setAttribute("aria-invalid", "true");
        if (!first) first = input;
      }
    });
    status(form, fallback || "");
    if (first && first.focus) first.focus();
  }

  function init(form) {
    if (form.getAttribute("data-hub-ready")) return;
    form.setAttribute("data-hub-ready", "1");
    var action = form.getAttribute("action");
    hidden(form, "_client_id", newId());
    hidden(form, "_source", window.location.href);
    fetch(action + "/token", { mode: "cors", credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.token) {
          hidden(form, "_token", body.token);
          form.setAttribute("data-hub-stamped", "1");
        }
      })
      .catch(function () { /* the snippet's own stamp still works */ });

    var sending = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) return;
      sending = true;
      clearErrors(form);
      var button = form.querySelector("button[type=submit], button:not([type])");
      if (button) button.disabled = true;
      fetch(action + "/json", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(collect(form))
      }).then(function (response) {
        return response.json().then(function (body) { return { code: response.status, body: body }; });
      }).then(function (answer) {
        sending = false;
        if (button) button.disabled = false;
        if (answer.code === 200 || answer.code === 201) {
          if (answer.body.redirect) { window.location.assign(answer.body.redirect); return; }
          var done = document.createElement("p");
          done.setAttribute("role", "status");
          done.setAttribute("data-hub-form-done", "");
          done.textContent = answer.body.message;
          done.tabIndex = -1;
          form.parentNode.replaceChild(done, form);
          done.focus();
        } else if (answer.code === 422) {
          showErrors(form, answer.body.errors, answer.body.detail);
        } else {
          status(form, answer.body.detail || String(answer.code));
        }
      }).catch(function () {
        // The hub is unreachable or refused this site: let the browser post the form itself.
        sending = false;
        form.removeAttribute("data-hub-form");
        HTMLFormElement.prototype.submit.call(form);
      });
    });
  }

  function start() {
    var forms = document.querySelectorAll("form[data-hub-form]");
    for (var i = 0; i < forms.length; i++) init(forms[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
