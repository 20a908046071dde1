/* The inbox: live list refresh, keyboard moves, and the canned-response picker for compose boxes. */
(function () {
  "use strict";
  if (window.__hubInbox) return;
  window.__hubInbox = true;
  const body = document.body;

  /* Live: every conversation change refreshes the list (debounced); the stream is the inbox topic. */
  let timer = null;
  function changed() {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => window.htmx && htmx.trigger(body, "inbox-changed"), 250);
  }
  if (document.getElementById("inbox-list") && window.EventSource) {
    const source = new EventSource("/inbox/live");
    source.addEventListener("ready", () => { body.dataset.inboxLive = "true"; });
    source.addEventListener("conversation", changed);
    source.addEventListener("signed-out", () => { source.close(); window.location.reload(); });
  }

  /* Keyboard: j/k move between rows, Enter opens, a assigns to me, r refreshes. */
  function rows() { return Array.from(document.querySelectorAll(".conv-row")); }
  function typing(target) { return target.closest("input, textarea, select, [contenteditable]"); }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey && (event.key === "/" || event.code === "Slash")) {
      event.preventDefault();
      openPicker(document.activeElement && document.activeElement.tagName === "TEXTAREA" ? document.activeElement : null);
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey || !rows().length) return;
    const list = rows();
    const current = list.indexOf(document.activeElement.closest(".conv-row"));
    if (event.key === "j" || event.key === "k") {
      const next = event.key === "j" ? Math.min(current + 1, list.length - 1) : Math.max(current - 1, 0);
      list[next].focus();
      event.preventDefault();
    } else if (event.key === "Enter" && current >= 0) {
      window.location.href = list[current].querySelector(".conv-contact").href;
    } else if (event.key === "a" && current >= 0) {
      const take = list[current].querySelector(".conv-take");
      if (take) take.click();
    } else if (event.key === "r") {
      changed();
    }
  });
  body.addEventListener("htmx:afterSwap", () => {
    const first = document.querySelector(".conv-row");
    if (first && !document.activeElement.closest(".conv-row, form, select")) first.setAttribute("tabindex", "0");
  });

  /* Canned responses: Ctrl+/ (or the panel's button) searches them and inserts the chosen one,
     its variables filled in for this contact, at the caret of the compose box. */
  let lastBox = null;
  document.addEventListener("focusin", (event) => {
    if (event.target.tagName === "TEXTAREA" && event.target.closest(".composer")) lastBox = event.target;
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-canned-open]");
    if (button) { event.preventDefault(); openPicker(lastBox); }
  });

  function composeBox(box) {
    if (box) return box;
    return lastBox || Array.from(document.querySelectorAll(".composer textarea")).find((t) => t.offsetParent) || null;
  }

  function insert(box, text) {
    const start = box.selectionStart || 0, end = box.selectionEnd || 0;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.selectionStart = box.selectionEnd = start + text.length;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.focus();
  }

  function openPicker(box) {
    box = composeBox(box);
    const contact = body.dataset.contact || "";
    let dialog = document.getElementById("canned-picker");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "canned-picker";
      dialog.className = "canned-picker";
      dialog.setAttribute("aria-label", body.dataset.locale === "ru" ? "Шаблоны ответов" : "Canned responses");
      dialog.innerHTML = '<input type="search" class="canned-search" autocomplete="off" aria-label="' +
        (body.dataset.locale === "ru" ? "Найти шаблон" : "Find a response") + '"><ul class="canned-results" role="listbox"></ul>';
      document.body.appendChild(dialog);
    }
    const search = dialog.querySelector(".canned-search");
    const results = dialog.querySelector(".canned-results");
    let items = [], chosen = 0;
    function draw() {
      results.innerHTML = "";
      items.forEach((item, i) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", String(i === chosen));
        li.dataset.shortcut = item.shortcut;
        li.textContent = "/" + item.shortcut + " · " + item.title;
        li.addEventListener("click", () => pick(i));
        results.appendChild(li);
      });
    }
    function load() {
      fetch("/inbox/canned?q=" + encodeURIComponent(search.value) + "&contact=" + encodeURIComponent(contact),
            { credentials: "same-origin" })
        .then((r) => r.json()).then((data) => { items = data.items || []; chosen = 0; draw(); });
    }
    function pick(i) {
      const item = items[i];
      dialog.close();
      if (item && box) insert(box, item.text);
    }
    search.oninput = load;
    search.onkeydown = (event) => {
      if (event.key === "ArrowDown") { chosen = Math.min(chosen + 1, items.length - 1); draw(); event.preventDefault(); }
      else if (event.key === "ArrowUp") { chosen = Math.max(chosen - 1, 0); draw(); event.preventDefault(); }
      else if (event.key === "Enter") { event.preventDefault(); pick(chosen); }
    };
    search.value = "";
    load();
    dialog.showModal();
    search.focus();
  }
})();
