// The blog example's script, served by squall's StaticFiles under /static/. The pages work
// without it; it only makes two things quicker.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Switch language as soon as one is picked; the OK button stays for no-script browsers.
  const select = document.getElementById("locale");
  const button = document.getElementById("language-submit");
  if (select && button) {
    button.hidden = true;
    select.addEventListener("change", () => select.form.submit());
  }
  // A live character count under text areas that ask for one.
  for (const counter of document.querySelectorAll("[data-counts]")) {
    const field = document.getElementById(counter.dataset.counts);
    const update = () => { counter.textContent = String(field.value.length); };
    field.addEventListener("input", update);
    update();
  }
});
