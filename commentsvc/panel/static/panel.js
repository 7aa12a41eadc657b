// commentsvc moderation panel: keyboard shortcuts, select all, and in-place actions.
// Everything works without this script (plain forms); it only makes moderation faster.
(function () {
  "use strict";

  const list = document.querySelector("#bulk-form");
  const selectAll = document.querySelector("#select-all");
  const flashes = document.querySelector("#flashes");
  const PAST = { approve: "approved", reject: "rejected", spam: "spam", "not-spam": "pending" };

  if (selectAll) {
    selectAll.addEventListener("change", function () {
      for (const box of document.querySelectorAll("input.select")) box.checked = selectAll.checked;
    });
  }

  // Confirm deletes, with or without the keyboard.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[value=delete], button.act-delete");
    if (button && !window.confirm("Delete for good? This cannot be undone.")) {
      event.preventDefault();
    }
  });

  function items() {
    return Array.from(document.querySelectorAll("article.comment"));
  }

  function current() {
    return document.querySelector("article.comment.is-current");
  }

  function setCurrent(item) {
    const previous = current();
    if (previous) previous.classList.remove("is-current");
    if (!item) return;
    item.classList.add("is-current");
    item.focus({ preventScroll: true });
    item.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const all = items();
    if (!all.length) return;
    const index = all.indexOf(current());
    const next = index < 0 ? 0 : Math.min(all.length - 1, Math.max(0, index + step));
    setCurrent(all[next]);
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function showFlash(message, undo, isError) {
    if (!flashes) return;
    flashes.textContent = "";
    const box = document.createElement("div");
    box.className = "flash " + (isError ? "flash-error" : "flash-success");
    box.setAttribute("role", "status");
    const text = document.createElement("span");
    text.className = "flash-message";
    text.textContent = message;
    box.appendChild(text);
    if (undo) {
      const form = document.createElement("form");
      form.className = "undo";
      form.method = "post";
      form.action = list ? list.dataset.undo || "/moderation/undo" : "/moderation/undo";
      const token = document.createElement("input");
      token.type = "hidden";
      token.name = "csrf_token";
      token.value = csrfToken();
      const button = document.createElement("button");
      button.type = "submit";
      button.textContent = "Undo";
      form.append(token, button);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        post(form.action, new URLSearchParams({ csrf_token: csrfToken() })).then(function (data) {
          showFlash(data.message, false, false);
          updateCounts(data.counts);
          for (const id of data.restored) {
            const item = document.getElementById("comment-" + id);
            if (item) { item.classList.remove("is-done"); item.hidden = false; }
          }
        }).catch(function () { form.submit(); });
      });
      box.appendChild(form);
    }
    flashes.appendChild(box);
  }

  function updateCounts(counts) {
    if (!counts) return;
    for (const [status, count] of Object.entries(counts)) {
      const badge = document.querySelector('.status-tabs a[data-status="' + status + '"] .count');
      if (badge) badge.textContent = String(count);
    }
  }

  function post(url, body) {
    // Tell the server which queue we are on, so the tab counts it returns match our filters.
    body.set("next", window.location.pathname + window.location.search);
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function shownStatus() {
    const tab = document.querySelector('.status-tabs a[aria-current="page"]');
    return tab ? tab.dataset.status : null;
  }

  function act(item, action) {
    if (!item) return;
    if (action === "delete" && !window.confirm("Delete for good? This cannot be undone.")) return;
    const button = item.querySelector('button.act[data-action="' + action + '"]');
    if (!button) return;
    const body = new URLSearchParams({ csrf_token: csrfToken() });
    post(button.getAttribute("formaction"), body).then(function (data) {
      showFlash(data.message, data.undo, false);
      updateCounts(data.counts);
      const status = PAST[action];
      const all = items();
      const next = all[all.indexOf(item) + 1] || all[all.indexOf(item) - 1];
      if (action === "delete" || (shownStatus() && status !== shownStatus())) {
        item.remove();
        setCurrent(next && next.isConnected ? next : null);
      } else {
        item.dataset.status = status;
      }
    }).catch(function () {
      // Fall back to the plain form so the action is never lost.
      item.closest("form").requestSubmit(button);
    });
  }

  // Per-item buttons: in place when the script runs.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.act");
    if (!button || event.defaultPrevented || !list) return;
    event.preventDefault();
    const item = button.closest("article.comment");
    const action = button.dataset.action;
    if (action === "delete") {
      // Already confirmed by the click handler above.
      const body = new URLSearchParams({ csrf_token: csrfToken() });
      post(button.getAttribute("formaction"), body).then(function (data) {
        showFlash(data.message, false, false);
        updateCounts(data.counts);
        item.remove();
      }).catch(function () { list.requestSubmit(button); });
      return;
    }
    act(item, action);
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "x": {
        const item = current();
        const box = item && item.querySelector("input.select");
        if (box) box.checked = !box.checked;
        break;
      }
      case "a": act(current(), "approve"); break;
      case "r": act(current(), "reject"); break;
      case "s": act(current(), "spam"); break;
      case "n": act(current(), "not-spam"); break;
      case "d": act(current(), "delete"); break;
      default: return;
    }
    event.preventDefault();
  });
})();
