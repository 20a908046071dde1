/* The campaign editor, enhanced: only the fields of the chosen "When" show, and in the repeat
   picker only what the chosen repeat needs. Without this script every group shows, titled, and
   the server reads whichever fields belong to the chosen kind. Loaded as a file: the CSP allows
   no inline script or handler. */
(function () {
  "use strict";

  const form = document.getElementById("campaign-form");
  if (!form) return;

  function chosen(name) {
    const field = form.querySelector(`[name="${name}"]:checked`) || form.querySelector(`select[name="${name}"]`);
    return field ? field.value : "";
  }

  function showMatching(selector, attribute, value) {
    form.querySelectorAll(selector).forEach((element) => {
      const shown = element.getAttribute(attribute).split(" ").includes(value);
      element.hidden = !shown;  // still posted: the server reads only what the chosen kind needs
    });
  }

  function update() {
    showMatching(".cp-when-group", "data-when", chosen("schedule_kind"));
    if (chosen("schedule_kind") === "cron") showMatching(".cp-repeat-part", "data-repeat", chosen("repeat_every"));
    form.querySelectorAll(".cp-when-title").forEach((title) => { title.hidden = true; });
    const words = document.getElementById("f-cron-words");
    if (words) words.hidden = form.dataset.cron !== undefined && form.dataset.cron !== currentCron();
  }

  function currentCron() {
    const every = chosen("repeat_every");
    const at = (form.querySelector('[name="repeat_at"]') || {}).value || "";
    const [hour, minute] = at.split(":").map((part) => parseInt(part, 10));
    if (every === "custom" || Number.isNaN(hour) || Number.isNaN(minute)) {
      return (form.querySelector('[name="cron"]') || {}).value || "";
    }
    if (every === "daily") return `${minute} ${hour} * * *`;
    if (every === "weekly") return `${minute} ${hour} * * ${form.querySelector('[name="repeat_weekday"]').value}`;
    return `${minute} ${hour} ${form.querySelector('[name="repeat_monthday"]').value} * *`;
  }

  // The A/B fieldset: its fields only when the test is on; variants C and D only when in use, with
  // "Add variant" and "Remove variant" (which clears the row: a blank row is left out on save).
  const abToggle = document.getElementById("f-ab-enabled");
  const abBody = document.getElementById("cp-ab-body");
  const addVariant = document.getElementById("cp-ab-add");
  const optional = Array.from(form.querySelectorAll('.cp-ab-variant[data-variant="C"], .cp-ab-variant[data-variant="D"]'));

  function filled(row) {
    return Array.from(row.querySelectorAll("input, select")).some((field) => field.value !== "");
  }

  function updateVariants() {
    if (abBody && abToggle) abBody.hidden = !abToggle.checked;
    if (addVariant) addVariant.hidden = optional.every((row) => !row.hidden);
  }

  optional.forEach((row) => {
    row.hidden = !filled(row);
    const remove = row.querySelector(".cp-ab-remove");
    if (!remove) return;
    remove.hidden = false;
    remove.addEventListener("click", () => {
      row.querySelectorAll("input, select").forEach((field) => { field.value = ""; });
      row.hidden = true;
      updateVariants();
      if (addVariant) addVariant.focus();
    });
  });
  if (addVariant) {
    addVariant.addEventListener("click", () => {
      const next = optional.find((row) => row.hidden);
      if (next) {
        next.hidden = false;
        next.querySelector("select").focus();
      }
      updateVariants();
    });
  }
  if (abToggle) abToggle.addEventListener("change", updateVariants);
  updateVariants();

  form.dataset.cron = currentCron();  // the saved schedule, which the words under the picker describe
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
})();
