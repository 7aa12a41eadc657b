/*! commentsvc: Write / Preview on Markdown sites, for widget.js */
(function () {
  "use strict";

  // widget.js calls this with its Widget's prototype and the helpers it shares.
  function install(proto, h) {
    // Markdown sites: Write / Preview tabs over the comment's text, and a hint of the syntax.
    proto.markdown = function () {
      var self = this;
      var t = this.t;
      var input = this.fields.body.input;
      var wrap = this.fields.body.wrap;
      var view = h.el("div", { class: "csv-body", tabindex: 0, id: input.id + "p" });
      var tabs = this.tabs = ["write", "preview"].map(function (name) {
        return h.el("button", { type: "button", role: "tab", id: input.id + name, text: t[name] });
      });
      wrap.id = input.id + "w";
      [wrap, view].forEach(function (panel, i) {
        panel.setAttribute("role", "tabpanel");
        panel.setAttribute("aria-labelledby", tabs[i].id);
        tabs[i].setAttribute("aria-controls", panel.id);
        tabs[i].addEventListener("click", function () { self.pick(i); });
        // The arrow keys move to the other tab, focused, then selected (APG's tabs).
        tabs[i].addEventListener("keydown", function (event) {
          if (/^Arrow(Lef|Righ)t$/.test(event.key)) tabs[1 - i].click(tabs[1 - i].focus());
        });
      });
      // The selected tab's panel shown; the preview is rendered and sanitized by the server,
      // and rebuilt by safeBody here.
      this.pick = function (i) {
        tabs.forEach(function (tab, j) { tab.setAttribute("aria-selected", i === j); });
        wrap.hidden = i;
        view.hidden = !i;
        view.textContent = input.value.trim() ? "" : t.previewEmpty;
        if (i && !view.textContent) h.request(self.base + "/preview", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ body: input.value }),
        }).then(function (result) {
          view.textContent = "";
          view.append(result.status === 200 ? h.safeBody(result.data.body_html) : [].concat((result.data.errors || {}).body || result.data.detail || t.previewEmpty)[0]);
        });
      };
      wrap.before(h.el("div", { role: "tablist" }, tabs));
      wrap.after(view, h.el("p", { class: "csv-note", text: t.markdownHint }));
      this.pick(0);
    };
  }

  // Handed over in an event, so that neither file needs a global name.
  document.dispatchEvent(new CustomEvent("commentsvc-markdown", { detail: install }));
})();
