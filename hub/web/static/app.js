/* The workspace's own behaviour: live updates (server-sent events), the incoming-call screen pop,
   keyboard shortcuts and tabs. No framework; htmx does the fetching and swapping of fragments. */
(function () {
  "use strict";

  const body = document.body;
  const contactId = body.dataset.contact || null;

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function announce(text) {
    const status = document.getElementById("live-status");
    if (status) { status.textContent = ""; window.setTimeout(() => { status.textContent = text; }, 50); }
  }

  async function fragment(url) {
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (response.status === 401) { window.location.reload(); return null; }
    if (response.status !== 200) return null;
    return response.text();
  }

  function parse(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  /* ---- search: "/" focuses it, arrows move through results, Enter opens, Escape closes ---- */
  const search = document.getElementById("global-search");
  const results = document.getElementById("search-results");

  function resultLinks() { return results ? Array.from(results.querySelectorAll("[data-result]")) : []; }

  function closeResults() { if (results) results.innerHTML = ""; }

  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && !typing(event.target) && search && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      search.focus();
      search.select();
      return;
    }
    if (!results || !search) return;
    const links = resultLinks();
    const index = links.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && (event.target === search || index >= 0) && links.length) {
      event.preventDefault();
      links[Math.min(index + 1, links.length - 1)].focus();
    } else if (event.key === "ArrowUp" && index >= 0) {
      event.preventDefault();
      if (index === 0) search.focus(); else links[index - 1].focus();
    } else if (event.key === "Escape" && (event.target === search || index >= 0)) {
      closeResults();
      search.focus();
    }
  });

  document.addEventListener("click", (event) => {
    if (results && search && !results.contains(event.target) && event.target !== search) closeResults();
  });

  if (search) {
    search.addEventListener("input", () => { if (!search.value.trim()) closeResults(); });
  }

  /* A newer search's results can arrive after the agent moved into the older ones with the arrows:
     the swap would drop the focus to the page. Keep it on the same contact, or at the same place. */
  if (results) {
    let focused = null;
    results.addEventListener("htmx:beforeSwap", () => {
      const links = resultLinks();
      const index = links.indexOf(document.activeElement);
      focused = index >= 0 ? { href: links[index].getAttribute("href"), index } : null;
    });
    results.addEventListener("htmx:afterSwap", () => {
      if (!focused) return;
      const links = resultLinks();
      const same = links.find((link) => link.getAttribute("href") === focused.href);
      const target = same || links[Math.min(focused.index, links.length - 1)];
      if (target) target.focus(); else if (search) search.focus();
      focused = null;
    });
  }

  /* ---- on a phone the card's secondary sections start folded, so the timeline is near ---- */
  if (window.matchMedia && window.matchMedia("(max-width: 800px)").matches) {
    document.querySelectorAll("details[data-collapse-on-phone]").forEach((d) => { d.open = false; });
  }

  /* ---- tabs on the contact page (WAI-ARIA tabs: arrows move, the panel follows) ---- */
  function selectTab(tab) {
    const list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach((other) => {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
  }

  document.querySelectorAll("[role=tablist]").forEach((list) => {
    const tabs = Array.from(list.querySelectorAll("[role=tab]"));
    list.addEventListener("click", (event) => {
      const tab = event.target.closest("[role=tab]");
      if (tab) selectTab(tab);
    });
    list.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(document.activeElement);
      if (at < 0) return;
      let next = null;
      if (event.key === "ArrowRight") next = tabs[(at + 1) % tabs.length];
      if (event.key === "ArrowLeft") next = tabs[(at - 1 + tabs.length) % tabs.length];
      if (event.key === "Home") next = tabs[0];
      if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) { event.preventDefault(); next.focus(); selectTab(next); }
    });
  });

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* ---- forms that saved: clear them (with a fresh id for the next one), keep the confirmation a moment ---- */
  function resetAfterSave(formId, resultId) {
    const form = document.getElementById(formId);
    if (!form) return;
    form.reset();
    const clientId = form.querySelector("input[name=client_id]");
    if (clientId) clientId.value = newId();
    window.setTimeout(() => {
      const result = document.getElementById(resultId);
      if (result) result.innerHTML = "";
    }, 4000);
  }
  body.addEventListener("note-saved", () => resetAfterSave("note-form", "note-result"));
  body.addEventListener("task-saved", () => resetAfterSave("task-form", "task-result"));

  /* ---- an answer's events when the button that asked is gone ----
     htmx fires a response's HX-Trigger events on the element that made the request. If a refresh
     replaced that element while its request was out (Resolve clicked as the conversations panel
     re-rendered), they fire on a detached element, never reach body, and the page goes on showing
     the state from before the change it just made. So each request is watched from when it is sent
     (the element is still in the page then): once it is over, if its element has left the page, the
     answer's events are fired on body (by name: JSON details, which no listener here reads, are not
     passed on). */
  body.addEventListener("htmx:beforeSend", (event) => {
    const { elt, xhr } = event.detail;
    if (!elt || !xhr) return;
    xhr.addEventListener("loadend", () => {
      if (elt.isConnected || xhr.status < 200 || xhr.status >= 300) return;
      const header = xhr.getResponseHeader("HX-Trigger");
      if (!header) return;
      let names = header.split(",");
      if (header.trim().startsWith("{")) {
        try { names = Object.keys(JSON.parse(header)); } catch (error) { return; }
      }
      names.map((name) => name.trim()).filter(Boolean).forEach((name) => htmx.trigger(body, name));
    });
  });

  /* ---- live updates ---- */
  function filterQuery() {
    const form = document.getElementById("timeline-filters");
    return form ? new URLSearchParams(new FormData(form)).toString() : "";
  }

  let cardTimer = null;
  function refreshCardSoon() {
    window.clearTimeout(cardTimer);
    cardTimer = window.setTimeout(() => htmx.trigger(body, "card-refresh"), 400);
  }

  async function insertEvent(eventId) {
    const list = document.getElementById("timeline-items");
    if (!list || document.getElementById("event-" + eventId)) return;
    const html = await fragment(`/contacts/${contactId}/events/${eventId}?${filterQuery()}`);
    if (!html || document.getElementById("event-" + eventId)) return;
    const content = parse(html);
    const heading = content.querySelector(".day-heading");
    const first = list.firstElementChild;
    let anchor = null;
    if (heading && first && first.classList.contains("day-heading") && first.dataset.day === heading.dataset.day) {
      heading.remove();
      anchor = first.nextSibling;
    } else {
      anchor = first;
    }
    const inserted = Array.from(content.children);
    inserted.forEach((node) => list.insertBefore(node, anchor));
    inserted.forEach((node) => htmx.process(node));
    const empty = document.querySelector("#timeline .empty-state");
    if (empty) empty.remove();
    announce(body.dataset.locale === "ru" ? "Новое событие на ленте" : "New event on the timeline");
  }

  async function updateEvent(eventId) {
    const current = document.getElementById("event-" + eventId);
    if (!current) return;
    const html = await fragment(`/contacts/${contactId}/events/${eventId}`);
    const fresh = html && parse(html).querySelector("li.event");
    if (!fresh) return;
    fresh.classList.remove("is-new");
    current.replaceWith(fresh);
    htmx.process(fresh);
  }

  const pop = document.getElementById("screen-pop");

  async function screenPop(data) {
    if (!pop || !data.contact_id) return;
    const html = await fragment(`/pop/${data.contact_id}?event=${data.event_id || ""}`);
    if (!html) return;
    pop.innerHTML = html;
    htmx.process(pop);
    if (!pop.open) pop.showModal();
    const open = pop.querySelector("[autofocus]");
    if (open) open.focus();
  }

  if (pop) {
    pop.addEventListener("click", (event) => {
      if (event.target.closest("[data-close-pop]") || event.target === pop) pop.close();
    });
  }

  function connect() {
    if (!body.dataset.live || !window.EventSource) return;
    const source = new EventSource(body.dataset.live);
    source.addEventListener("ready", () => { body.dataset.liveReady = "true"; });
    source.addEventListener("timeline", (message) => {
      const data = JSON.parse(message.data);
      if (contactId && String(data.contact_id) === contactId) {
        if (data.type === "event.updated") updateEvent(data.event_id);  /* a delivery status moved on */
        else insertEvent(data.event_id);
        refreshCardSoon();
      }
    });
    source.addEventListener("pop", (message) => screenPop(JSON.parse(message.data)));
    source.addEventListener("signed-out", () => { source.close(); window.location.reload(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", connect);
  else connect();
})();
