/*! commentsvc: the reader's own comments, for widget.js */
(function () {
  "use strict";

  // The reader's own comments still in their edit window (DESIGN §10), kept in this browser
  // only: by "API base + page key", then by id, each the 201 answer to its submission (its
  // `editable_until`, `body`, `body_html`…) with the edit `token`. widget.js fetches this
  // file only for a reader who has such comments on the page or has just posted one.
  var OWN = "commentsvc:own";
  // widget.js's "Save my name…" (DESIGN §2): who wrote a comment is kept only there.
  var AUTHOR = "commentsvc:author";
  // own.css, written in by the server.
  var CSS = "__WIDGET_CSS__";

  // widget.js calls this with its Widget's prototype and the helpers it shares.
  function install(proto, h) {
    var el = h.el;

    // Every entry, the expired ones gone; with a key, that entry set (or removed: null).
    function own(group, id, entry) {
      var all = h.stored(OWN) || {};
      for (var name in all) {
        for (var key in all[name]) if (!(Date.parse(all[name][key].editable_until) > Date.now())) delete all[name][key];
        if (!Object.keys(all[name]).length) delete all[name];
      }
      if (id) {
        all[group] = all[group] || {};
        if (entry) all[group][id] = Object.assign({}, entry, { author_name: null, author_url: null });
        else delete all[group][id];
        if (!Object.keys(all[group]).length) delete all[group];  // no reason to fetch own.js here
      }
      h.store(OWN, Object.keys(all).length && all);
      return all[group] || {};
    }

    function action(method, text, name) {
      return el("button", { type: "button", class: name || "csv-act", "data-do": method, text: text });
    }

    // The reader's own comments of this page, read once per widget (with the styles).
    proto.mine = function () {
      if (!this.owned) {
        this.style(CSS);
        this.owned = own(this.base + " " + this.page);
      }
      return this.owned;
    };

    // A comment just posted: kept, and shown where it belongs.
    proto.added = function (comment) {
      comment.token = comment.edit_token;
      delete comment.edit_token;
      this.mine()[comment.id] = comment;
      own(this.base + " " + this.page, comment.id, comment);
      this.placeOwn(true, true, comment.id);
    };

    // The reader's own comments the thread lacks (pending), shown to them alone: top-level
    // ones at the end (oldest first) or the start (newest first), replies under their parent
    // once it is shown. `ended`: no slice follows; `first`: the first slice is shown.
    proto.placeOwn = function (ended, first, only) {
      var newest = this.sort === "newest";
      var mine = this.mine();
      for (var id in mine) {
        var comment = mine[id];
        var parent = comment.parent_id;
        if (!this.byId[id] && (!only || only == id) && (parent ? this.byId[parent] && (ended || newest) : ended || newest && first)) {
          var batch = document.createDocumentFragment();
          // By the name this page was given, else the saved one, if any.
          var item = this.renderComment(comment.author_name ? comment : Object.assign({}, comment, h.stored(AUTHOR)), batch);
          // Approved at once (a site that trusts its author): it is in the thread for all.
          if (comment.status !== "approved") {
            item.node.classList.add("csv-mine");
            item.node.querySelector(".csv-reply-row").replaceWith(el("p", { class: "csv-yours", text: this.t.awaiting + " " + this.t.yours }));
          }
          // Newest first: at the start; oldest first: at the end, before any of the reader's
          // own that is newer (one just posted, before the thread's last slice came).
          this.list.insertBefore(batch, newest ? this.list.firstChild : [].find.call(this.list.children, function (node) {
            return node.classList.contains("csv-mine") && +node.getAttribute("data-id") > id;
          }) || null);
        }
      }
    };

    // Edit and Delete on the reader's own comment, until its window closes (then a timer
    // takes them away). A pending one shown before is replaced by the thread's.
    proto.ownShown = function (item) {
      var t = this.t;
      var entry = this.mine()[item.comment.id];
      if (!entry) return;
      var until = new Date(entry.editable_until);
      var row = item.own = el("p", { class: "csv-own" }, [
        document.createTextNode(h.fmt(t.editWindow, { time: new Intl.DateTimeFormat(this.lang, { timeStyle: "short" }).format(until) })),
        action("edit", t.edit), action("remove", t.delete),
      ]);
      item.node.querySelector("article").appendChild(row);
      setTimeout(function () { row.remove(); }, until - Date.now());
    };

    // The edit token's request on the comment: PATCH with a body, or DELETE.
    proto.ask = function (item, method, body) {
      return h.request(this.base + "/comments/" + item.comment.id, {
        method: method, body: body,
        headers: { Authorization: "Bearer " + this.mine()[item.comment.id].token, "Content-Type": "application/json" },
      });
    };

    // The kept comment as edited (its token kept), or forgotten (`comment` omitted).
    proto.keep = function (item, comment) {
      var id = item.comment.id;
      var mine = this.mine();
      if (comment) item.comment = Object.assign(mine[id], comment);
      else delete mine[id];
      own(this.base + " " + this.page, id, comment && item.comment);
    };

    proto.edit = function (item) {
      var t = this.t;
      item.field = this.field("body", t.comment);
      // The text as written (a comment read from the page's HTML has only its rendering).
      item.field.input.value = this.mine()[item.comment.id].body;
      item.editor = el("div", {}, [item.field.wrap, el("p", { class: "csv-actions" }, [
        action("save", t.saveEdit, "csv-submit"), action("stopEdit", t.cancelEdit),
      ])]);
      item.body.hidden = item.own.hidden = true;
      item.body.after(item.editor);
      item.field.input.focus();
    };

    proto.stopEdit = function (item) {
      item.editor.remove();
      item.body.hidden = item.own.hidden = false;
      item.own.querySelector("button").focus();
    };

    proto.save = function (item) {
      var self = this;
      var t = this.t;
      var field = item.field;
      var button = item.editor.querySelector(".csv-submit");
      if (button.busy) return;
      h.setBusy(button, true);
      this.ask(item, "PATCH", JSON.stringify({ body: field.input.value })).then(function (result) {
        var data = result.data;
        if (self.refuse(item, result)) return;
        if (result.status !== 200) throw data;
        self.keep(item, data);
        item.body.textContent = "";
        item.body.appendChild(h.safeBody(data.body_html));
        self.stopEdit(item);
        self.status.textContent = data.status === "approved" ? t.edited : t.awaiting;
      }).catch(function (data) {
        // The server's words for the text (422), else ours.
        field.error.textContent = [].concat((data.errors || {}).body || t.editFailed)[0];
        field.error.hidden = false;
        field.input.setAttribute("aria-invalid", true);
        field.input.focus();
      }).then(function () {
        h.setBusy(button, false);
      });
    };

    // 403 (the window is over, the token wrong) and 409 (an approved reply): no more
    // editing, and the problem's detail says why.
    proto.refuse = function (item, result) {
      if (result.status !== 403 && result.status !== 409) return false;
      this.keep(item);
      if (item.editor) item.editor.remove();
      item.own.remove();
      item.body.hidden = false;
      h.focusOn(item.node);
      this.status.textContent = result.data.detail || this.t.editFailed;
      return true;
    };

    proto.remove = function (item) {
      var self = this;
      if (confirm(this.t.confirmDelete)) this.ask(item, "DELETE").then(function (result) {
        if (self.refuse(item, result)) return;
        if (result.status !== 204) throw result;
        self.keep(item);
        item.node.remove();
        delete self.byId[item.comment.id];
        h.focusOn(self.heading);
        self.status.textContent = self.t.deleted;
      }).catch(function () {
        self.status.textContent = self.t.editFailed;
      });
    };
  }

  // Handed over in an event, so that neither file needs a global name.
  document.dispatchEvent(new CustomEvent("commentsvc-own", { detail: install }));
})();
