// keyplane console: dialogs, copy buttons, the permission grid. No dependencies.
"use strict";

function openDialog(dialog) {
  if (dialog && !dialog.open) dialog.showModal();
}

document.addEventListener("DOMContentLoaded", () => {
  // Buttons that open a confirmation dialog.
  document.querySelectorAll("[data-open-dialog]").forEach((button) => {
    button.addEventListener("click", () => openDialog(document.getElementById(button.dataset.openDialog)));
  });
  document.querySelectorAll("dialog [data-dismiss]").forEach((button) => {
    button.addEventListener("click", () => button.closest("dialog").close());
  });

  // Dialogs rendered open by the server (the show-once secret).
  document.querySelectorAll("dialog[data-open]").forEach(openDialog);

  // The secret leaves the page for good when its dialog closes (button or Escape).
  document.querySelectorAll("dialog[data-secret]").forEach((dialog) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      // A reload must not re-post the creation (or rotation) form: it shows this page instead.
      const after = dialog.dataset.after || window.location.pathname;
      if (window.history.replaceState) window.history.replaceState(null, "", after);
    });
  });

  // Copy buttons.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      const status = button.closest("dialog")?.querySelector(".copied");
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (_) {
        input.select();
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      const what = button.dataset.copyLabel || (button.dataset.copy === "client-id" ? "Client ID" : "Secret");
      if (status) status.textContent = `${what} copied to the clipboard.`;
    });
  });

  // Permission grid: "All" checks (and locks) a row's actions; the hint says what no choice means.
  const grid = document.getElementById("permissions");
  if (grid) {
    const hint = document.getElementById("scopes-hint");
    const explicit = hint && hint.dataset.explicit === "yes";
    const noun = (hint && hint.dataset.noun) || "key";
    const article = /^[aeiou]/.test(noun) ? "an" : "a";
    const apps = document.querySelector("select[data-app-scopes]");
    const update = () => {
      grid.querySelectorAll("tr[data-resource]").forEach((row) => {
        const all = row.querySelector("[data-all]");
        row.querySelectorAll("[data-action]").forEach((box) => {
          if (all && all.checked && !box.disabled) box.checked = true;
        });
      });
      const any = grid.querySelectorAll("input[name=scope]:checked").length > 0;
      // A key in an app holds the app's permissions (narrowed by any checked here); an app
      // without scopes grants everything, so its keys are held to the same policy.
      const app = apps && apps.value ? apps.selectedOptions[0] : null;
      const openApp = app !== null && app.dataset.fullAccess === "yes";
      if (hint) {
        hint.classList.toggle("alert", !any && (app === null || openApp));
        if (any && app && !openApp) hint.textContent = `The ${noun} gets the permissions checked above that the app ${app.text} also has.`;
        else if (any) hint.textContent = `The ${noun} gets exactly the permissions checked above.`;
        else if (app && !openApp) hint.textContent = `The ${noun} gets the permissions of the app ${app.text}.`;
        else if (explicit && hint.dataset.required) hint.textContent = hint.dataset.required;
        else if (explicit) hint.textContent = openApp
          ? `Select at least one permission: the app ${app.text} has none, and this organization requires explicit permissions.`
          : "Select at least one permission: this organization requires explicit permissions.";
        else hint.innerHTML = `Selecting no permission creates ${article} ${noun} with <strong>full access</strong> to everything.`;
      }
    };
    if (apps) apps.addEventListener("change", update);
    grid.addEventListener("change", update);
    update();

    // "Start from a preset" fills the grid with the preset's scopes (the server copies them
    // into the key or app). Once the grid is changed by hand it is no longer the preset, so
    // the select goes back to "No preset" and the grid alone counts.
    const presets = document.querySelector("select[data-preset]");
    if (presets) {
      const wanted = () => {
        const option = presets.selectedOptions[0];
        return new Set(option && option.value ? (option.dataset.scopes || "").split(" ").filter(Boolean) : []);
      };
      // A resource's "All" stands for its actions: compare what a set grants, not its words.
      const grants = (scopes) => {
        const all = new Set([...scopes].filter((s) => s.endsWith(":*")).map((s) => s.split(":")[0]));
        return [...scopes].filter((s) => s.endsWith(":*") || !all.has(s.split(":")[0])).sort().join(" ");
      };
      const ticked = () => new Set([...grid.querySelectorAll("input[name=scope]:checked")].map((box) => box.value));
      presets.addEventListener("change", () => {
        const scopes = wanted();
        if (scopes.size === 0) return; // "No preset" leaves the grid as it is
        grid.querySelectorAll("input[name=scope]").forEach((box) => {
          if (!box.disabled) box.checked = scopes.has(box.value);
        });
        update();
      });
      grid.addEventListener("change", () => {
        if (presets.value && grants(ticked()) !== grants(wanted())) presets.value = "";
      });
    }
  }
});
