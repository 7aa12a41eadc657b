/*! commentsvc: a page's comments and its comment form */
(function () {
  "use strict";

  var script = document.currentScript;
  // Filled in by the server: its limits, the languages it has files for, and their version.
  var CONFIG = "__WIDGET_CONFIG__";
  // English (i18n/en.json), written in by the server; other languages are fetched when needed.
  var EN = "__WIDGET_EN__";
  var LIMITS = CONFIG.limits;
  var MAX_DEPTH = 3;
  var STORE = "commentsvc:author";
  // The reader's choice of order, per site (+ its API base).
  var SORT = "commentsvc:sort ";
  // The reader's own comments, by API base + page: kept and shown by own.js.
  var OWN = "commentsvc:own";
  var NEWEST = "newest";
  var REL = "nofollow ugc noopener";
  var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  var CSS = "__WIDGET_CSS__";
  var uid = 0;
  var warned = false;

  function attr(name, container) {
    return (container && container.getAttribute("data-" + name)) || (script && script.getAttribute("data-" + name)) || "";
  }

  // The service: data-api, else the origin widget.js came from.
  function origin(container) {
    return (attr("api", container) || (script && script.src ? new URL(script.src).origin : location.origin)).replace(/\/+$/, "");
  }

  function apiBase(container) {
    return origin(container) + "/api/v1/sites/";
  }

  // The tag of data-lang, else of the page (<html lang>), else of the browser; the language
  // the widget speaks that is its longest prefix (pt-BR: pt, zh-Hans-CN: zh-Hans), else English.
  // Chinese without a script is taken as Simplified, except Traditional Chinese (zh-Hant;
  // Taiwan, Hong Kong, Macau), which is not Simplified in other letters: it gets English, as
  // CLDR does not derive it from Simplified either, until it has a file of its own.
  function language(container) {
    var tag = (attr("lang", container) || document.documentElement.lang || navigator.language || "").toLowerCase()
      .replace(/_/g, "-").replace(/^zh-(hant|tw|hk|mo)\b.*/, "en").replace(/^zh\b(?!-hans)/, "zh-hans") + "-";
    var found = "";
    CONFIG.languages.forEach(function (code) {
      if (!tag.indexOf(code.toLowerCase() + "-") && code.length > found.length) found = code;
    });
    return found || "en";
  }

  // A language's words, and its counts: the plural form its rules choose, in its digits.
  function wordsIn(lang, t) {
    var plural = new Intl.PluralRules(lang);
    var number = new Intl.NumberFormat(lang).format;
    return {
      lang: lang, t: t, number: number,
      count: function (n) { return fmt(t.count[plural.select(n)] || t.count.other, { n: number(n) }); },
    };
  }

  var fetched = {};

  // English at once; another language from its file, fetched once per page (and kept by the
  // browser: its URL changes with its content), or English if that fails.
  function translation(lang, container) {
    if (lang === "en") return Promise.resolve(wordsIn(lang, EN));
    var url = origin(container) + "/widget/i18n/" + lang + "." + CONFIG.languageVersion + ".json";
    fetched[url] = fetched[url] || request(url).then(function (result) {
      if (result.status !== 200) throw result;
      // The file lists the texts of English's keys in their order: no keys to download.
      var t = {};
      Object.keys(EN).forEach(function (key, i) { t[key] = result.data[i] || EN[key]; });
      return wordsIn(lang, t);
    }).catch(function () {
      return wordsIn("en", EN);
    });
    return fetched[url];
  }

  function fmt(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }

  function el(tag, props, children) {
    var node = document.createElement(tag);
    for (var key in props || {}) {
      if (key === "text") node.textContent = props[key];
      else if (key === "class") node.className = props[key];
      else if (props[key] != null && props[key] !== false) node.setAttribute(key, props[key] === true ? "" : props[key]);
    }
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // A 403 or 404 problem is the site's setup (an origin not added, a wrong data-site),
  // not the reader's: its detail says what to fix, once per page load, to the console.
  function refused(result) {
    var detail = (result.status === 403 || result.status === 404) && result.data.detail;
    if (detail && !warned) {
      warned = true;
      console.warn("commentsvc: " + detail);
    }
    return !!detail;
  }

  function request(url, options) {
    return fetch(url, options || { headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, headers: response.headers, data: data };
      });
    });
  }

  // body_html is safe, yet rebuilt from an allow-list (p, br, Markdown's few tags, http(s)
  // links) in case it was tampered with; parsed in an inert document, where nothing runs.
  // A comment's body in the page (a server-rendered thread) is copied the same way.
  var parser = new DOMParser();
  function safeBody(html) {
    var parsed = html && html.nodeType ? html : parser.parseFromString("<body>" + (html || ""), "text/html").body;
    var out = document.createDocumentFragment();
    (function copy(from, to) {
      from.childNodes.forEach(function (node) {
        var tag = node.nodeName;
        var href = tag === "A" && node.getAttribute("href");
        var next = tag === "#text" ? document.createTextNode(node.nodeValue)
          : /^(P|BR|EM|STRONG|CODE|PRE|BLOCKQUOTE|UL|OL|LI)$/.test(tag) ? el(tag)
          : /^https?:\/\//i.test(href) ? el("a", { href: href, rel: REL, target: "_blank" })
          : document.createDocumentFragment();  // anything else: only its text
        copy(node, next);
        to.appendChild(next);
      });
    })(parsed, out);
    return out;
  }

  function stored(key) {
    try { return JSON.parse(localStorage.getItem(key)); } catch (e) { return null; }
  }

  // `value` as JSON (only its `fields`, when given); nothing: removed.
  function store(key, value, fields) {
    try {
      if (value) localStorage.setItem(key, JSON.stringify(value, fields));
      else localStorage.removeItem(key);
    } catch (e) { /* storage may be disabled */ }
  }

  function focusOn(node) {
    node.setAttribute("tabindex", "-1");
    node.focus();
  }

  // A part of the widget only some readers need (own.js: the reader's own comments;
  // markdown.js: Write / Preview), fetched once per page when needed, kept by the browser
  // (its URL changes with its content). It hands its installer over in an event (no global
  // name), which adds its methods to the widget's; should it not load, the widget works
  // without them.
  function part(service, name) {
    var url = service + "/widget/" + name + "." + CONFIG.parts[name] + ".js";
    return fetched[url] = fetched[url] || new Promise(function (resolve) {
      document.addEventListener("commentsvc-" + name, function (event) {
        event.detail(Widget.prototype, { el: el, request: request, safeBody: safeBody, fmt: fmt, setBusy: setBusy, focusOn: focusOn, stored: stored, store: store });
        resolve();
      }, { once: true });
      var tag = el("script", { src: url });
      tag.onerror = resolve;
      document.head.appendChild(tag);
    });
  }

  // The first comments as the page already holds them (thread.html included server-side,
  // DESIGN §10): read from its markup, not fetched, so they show at once.
  function rendered(section) {
    return {
      total: +section.getAttribute("data-total"),
      markup: section.getAttribute("data-markup"),
      next_cursor: section.getAttribute("data-next-cursor"),
      comments: [].map.call(section.querySelectorAll(".csv-comment"), function (node) {
        // Its own article's, not its replies'.
        var find = function (selector) { return node.querySelector(":scope>article " + selector); };
        var website = find(".csv-author a");
        return {
          id: +node.getAttribute("data-id"), parent_id: +node.getAttribute("data-parent-id") || null,
          author_name: find("[itemprop=name]").textContent, author_url: website && website.getAttribute("href"),
          created_at: find("time").getAttribute("datetime"), body_html: find(".csv-body"),
        };
      }),
    };
  }

  function Widget(container) {
    this.page = attr("page", container) || location.pathname;
    // No query string (it may hold a reader's tokens) unless the site asks.
    this.fullUrl = attr("page-url", container) === "full";
    this.base = apiBase(container) + encodeURIComponent(attr("site", container));
    this.byId = {};
    var self = this;
    // Drawn once its words are here (a translated page never flashes English) and, for a
    // reader with comments of their own here, own.js (they have a place in the thread): a
    // thread the page holds stays in sight until then.
    var own = (stored(OWN) || {})[this.base + " " + this.page] && part(origin(container), "own");
    Promise.all([translation(language(container), container), own]).then(function (both) { self.draw(both[0], container); });
  }

  Widget.prototype.draw = function (words, container) {
    var adopted = container.querySelector("[data-rendered]");
    this.origin = origin(container);
    this.root = container.attachShadow ? container.attachShadow({ mode: "open" }) : container;
    this.style(CSS);
    this.words = words;
    this.lang = words.lang;
    this.t = words.t;
    this.rtf = Intl.RelativeTimeFormat && new Intl.RelativeTimeFormat(this.lang, { numeric: "auto" });
    this.gen = 0;
    var self = this;
    this.sort = stored(SORT + this.base) || "oldest";
    this.app = el("section", { class: "csv", lang: this.lang, "aria-label": this.t.comments });
    this.heading = el("h2", { text: this.t.comments });
    // Oldest / newest first: two toggle buttons, shown once there is something to order.
    this.sorter = el("div", { class: "csv-sort", role: "group", "aria-label": this.t.sort, hidden: true }, ["oldest", NEWEST].map(function (order) {
      return el("button", { type: "button", "data-sort": order, "aria-pressed": "" + (order === self.sort), text: self.t[order] });
    }));
    // Under the heading (under "Load more" when that failed), not below the form.
    this.loadError = el("p", { class: "csv-load-error", role: "alert" });
    this.list = el("ol");
    this.more = el("button", { type: "button", class: "csv-more", hidden: true, text: this.t.more });
    this.status = el("p", { class: "csv-status", role: "status", "aria-live": "polite" });
    this.form = this.buildForm();
    this.app.append(this.heading, this.sorter, this.loadError, this.list, this.more, this.form, this.status);
    this.root.appendChild(this.app);
    this.sorter.addEventListener("click", function (event) { self.order(event.target); });
    this.more.addEventListener("click", function () { if (!self.more.busy) self.load(self.cursor); });
    // One listener for every button of the thread: its data-do names the method to call.
    this.list.addEventListener("click", function (event) {
      var button = event.target.closest && event.target.closest("[data-do]");
      var item = button && self.byId[button.closest(".csv-comment").getAttribute("data-id")];
      if (item) self[button.getAttribute("data-do")](item);
    });
    // The host page's #comment-{id} does not reach into the shadow root: followed here.
    window.addEventListener("hashchange", function () { self.seek(); });
    this.seek();
    // The page's own copy of the thread is taken in the order it is in, and revalidated.
    this.load(null, this.sort === NEWEST ? null : adopted);
  };

  // `css` in the widget's root: a constructed sheet where the browser has them (no inline
  // style for a host page's CSP to refuse), else a <style>.
  Widget.prototype.style = function (css) {
    if (window.CSSStyleSheet && "adoptedStyleSheets" in document) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      this.root.adoptedStyleSheets = this.root.adoptedStyleSheets.concat(sheet);
    } else {
      this.root.appendChild(el("style", { text: css }));
    }
  };

  // The thread again, in the order of `button`, which the reader's next visit keeps.
  Widget.prototype.order = function (button) {
    var order = button.getAttribute("data-sort");
    if (!order || order === this.sort) return;
    this.sorter.childNodes.forEach(function (other) { other.setAttribute("aria-pressed", other === button); });
    store(SORT + this.base, this.sort = order);
    this.clear();
    this.load(null);
  };

  Widget.prototype.clear = function () {
    if (this.parentId) this.replyTo(null);
    this.list.textContent = "";
    this.byId = {};
    this.gen++;  // an answer for the thread as it was, late, is dropped
  };

  // No `type`: a textarea.
  Widget.prototype.field = function (name, label, type, required, autocomplete) {
    var id = "csv-" + name + "-" + (++uid);
    var input = el(type ? "input" : "textarea", {
      id: id, name: name, type: type, rows: !type && 6, required: required, autocomplete: autocomplete,
      maxlength: LIMITS[name], "aria-describedby": id + "-error",
    });
    var error = el("span", { id: id + "-error", class: "csv-error", hidden: true });
    return {
      wrap: el("p", { class: "csv-field" }, [
        el("label", { for: id }, [document.createTextNode(label), required && el("span", { class: "csv-required", "aria-hidden": "true", text: " *" })]),
        input, error,
      ]),
      input: input, error: error, label: label,
    };
  };

  Widget.prototype.buildForm = function () {
    var t = this.t;
    var self = this;
    this.fields = {
      body: this.field("body", t.comment, null, true),
      author_name: this.field("author_name", t.name, "text", true, "name"),
      author_email: this.field("author_email", t.email, "email", true, "email"),
      author_url: this.field("author_url", t.website, "url", false, "url"),
    };
    // The honeypot (DESIGN §7): off-screen (bots skip display:none), out of reach of
    // keyboards, screen readers and autofill.
    this.trap = el("input", { name: "subject", tabindex: "-1", autocomplete: "off" });
    this.remember = el("input", { type: "checkbox", id: "csv-save-" + (++uid), name: "save" });
    this.notify = el("input", { type: "checkbox", id: "csv-notify-" + (++uid), name: "notify_replies" });
    this.formTitle = el("h3", { text: t.heading });
    this.cancel = el("button", { type: "button", hidden: true, text: t.cancel });
    this.submit = el("button", { type: "submit", class: "csv-submit", text: t.post });
    var parts = [this.formTitle, el("p", { class: "csv-note", text: t.note })];
    var saved = stored(STORE);
    for (var name in this.fields) {
      parts.push(this.fields[name].wrap);
      if (saved && name !== "body") this.fields[name].input.value = saved[name] || "";
    }
    this.remember.checked = !!saved;
    var form = el("form", { class: "csv-form", novalidate: true }, parts.concat(
      el("p", { class: "csv-hp", "aria-hidden": "true", inert: true }, [this.trap]),
      el("p", { class: "csv-save" }, [this.remember, el("label", { for: this.remember.id, text: t.save })]),
      el("p", { class: "csv-save" }, [this.notify, el("label", { for: this.notify.id, text: t.notify })]),
      el("p", { class: "csv-actions" }, [this.submit, this.cancel])
    ));
    this.shown = performance.now();
    form.addEventListener("submit", function (event) { event.preventDefault(); self.post(); });
    this.cancel.addEventListener("click", function () { self.replyTo(null); });
    return form;
  };

  Widget.prototype.check = function (values) {
    var t = this.t;
    var errors = {};
    if (values.author_email && !EMAIL.test(values.author_email)) errors.author_email = t.invalidEmail;
    if (values.author_url && !/^https?:\/\/\S+$/i.test(values.author_url)) errors.author_url = t.invalidUrl;
    for (var name in values) {
      if (!values[name] && this.fields[name].input.required) errors[name] = t.required;
      if (values[name].length > LIMITS[name]) errors[name] = fmt(t.tooLong, { n: this.words.number(LIMITS[name]) });
    }
    return errors;
  };

  // The labels of the fields in error, in the form's order ("" when none is).
  Widget.prototype.showErrors = function (errors) {
    var first = null;
    var labels = [];
    for (var name in this.fields) {
      var field = this.fields[name];
      var message = errors[name] ? [].concat(errors[name])[0] : "";
      field.error.textContent = message;
      field.error.hidden = !message;
      field.input.setAttribute("aria-invalid", !!message);
      first = first || (message && field.input);
      if (message) labels.push(field.label);
    }
    if (first) first.focus();
    return labels.join(", ");
  };

  Widget.prototype.post = function () {
    var self = this;
    var t = this.t;
    var values = {};
    for (var name in this.fields) values[name] = this.fields[name].input.value.trim();
    if (this.submit.busy) return;
    if (this.pick) this.pick(0);  // errors show (and focus) in the Write tab
    this.status.textContent = "";
    if (this.showErrors(this.check(values))) return;
    var payload = { page: this.page, page_url: this.fullUrl ? location.href.split("#")[0] : location.origin + location.pathname, page_title: document.title, parent_id: this.parentId || null };
    for (name in values) payload[name] = values[name] || null;
    payload.notify_replies = this.notify.checked;
    // The same comment sent again (after a network failure) keeps its Idempotency-Key.
    var content = JSON.stringify(payload);
    if (content !== this.sent) {
      this.sent = content;
      this.key = crypto.getRandomValues(new Uint32Array(4)).join("-");  // randomUUID needs https
    }
    payload.subject = this.trap.value;
    payload.fill_ms = Math.round(performance.now() - this.shown);
    setBusy(this.submit, true);
    this.submit.textContent = t.posting;
    request(this.base + "/comments", {
      method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": this.key }, body: JSON.stringify(payload),
    }).then(function (result) {
      var data = result.data || {};
      var wait = +result.headers.get("Retry-After");
      if (result.status === 201) {
        self.sent = null;
        store(STORE, self.remember.checked && values, ["author_name", "author_email", "author_url"]);
        // Shown to the reader, with Edit and Delete (own.js).
        if (data.edit_token) part(self.origin, "own").then(function () { if (self.added) self.added(data); });
        self.fields.body.input.value = "";
        var moved = self.parentId;
        self.replyTo(null);
        if (moved) self.submit.focus();  // the form moved back below the thread
        return data.status === "approved" ? "" : t.awaiting;
      }
      if (result.status === 409) return t.duplicate;
      if (result.status === 429 && wait > 0 && self.rtf) {
        return fmt(t.tooOften, { when: self.rtf.format(Math.ceil(wait < 60 ? wait : wait / 60), wait < 60 ? "second" : "minute") });
      }
      // The reader's words: the form's labels, not the API's field names.
      var wrong = self.showErrors(data.errors || {});
      if (wrong) return fmt(t.invalid, { fields: wrong });
      // Closed comments are the reader's news; a refused origin or site is the site's.
      return refused(result) && data.title !== "Comments closed" ? t.failed : data.detail || t.failed;
    }, function () {
      return t.failed;
    }).then(function (message) {
      self.status.textContent = message;
      setBusy(self.submit, false);
      self.submit.textContent = t.post;
    });
  };

  // Not `disabled`: that would take the keyboard focus away from the button.
  function setBusy(button, busy) {
    button.busy = busy;
    button.setAttribute("aria-disabled", busy);
  }

  // The form shown anew: its fill time (DESIGN §7) starts again.
  Widget.prototype.replyTo = function (item) {
    var comment = item && item.comment;
    this.shown = performance.now();
    this.parentId = comment ? comment.id : null;
    this.formTitle.textContent = comment ? fmt(this.t.replyTo, { name: comment.author_name }) : this.t.heading;
    this.cancel.hidden = !comment;
    // Move the form only when it must move: moving a focused element drops the focus.
    if (comment) {
      item.node.appendChild(this.form);
      this.fields.body.input.focus();
    } else if (this.form.nextSibling !== this.status) {
      this.app.insertBefore(this.form, this.status);
    }
  };

  var UNITS = [["minute", 60, 3600], ["hour", 3600, 86400], ["day", 86400, 2592000], ["month", 2592000, 31536000]];

  // "3 hours ago" in the widget's language; older than a year: the date.
  Widget.prototype.relativeTime = function (date) {
    var seconds = Math.round((Date.now() - date) / 1000);
    if (seconds < 45) return this.t.justNow;
    for (var i = 0; i < UNITS.length && this.rtf; i++) {
      if (seconds < UNITS[i][2]) return this.rtf.format(-Math.max(1, Math.round(seconds / UNITS[i][1])), UNITS[i][0]);
    }
    return date.toLocaleDateString(this.lang);
  };

  // A top-level comment goes into `batch`. Cloning a skeleton is far cheaper than building.
  Widget.prototype.renderComment = function (comment, batch) {
    var t = this.t;
    if (!this.skeleton) {
      this.skeleton = el("li", { class: "csv-comment" }, [
        el("article", {}, [
          el("header", { class: "csv-meta" }, [el("a", { class: "csv-link", rel: REL }, [el("time")])]),
          el("div", { class: "csv-body" }),
          el("p", { class: "csv-reply-row" }, [el("button", { type: "button", class: "csv-reply", "data-do": "replyTo", text: t.reply })]),
        ]),
        el("ol", { class: "csv-replies" }),
      ]);
      // One formatter per widget: toLocaleString() builds a new one on every call.
      this.exact = new Intl.DateTimeFormat(this.lang, { dateStyle: "medium", timeStyle: "short" });
    }
    var node = this.skeleton.cloneNode(true);
    // By class, not by position: the skeleton may gain elements.
    var header = node.querySelector(".csv-meta");
    var link = header.firstChild;
    var time = link.firstChild;
    var replies = node.querySelector(".csv-replies");
    var old = this.byId[comment.id];
    if (old) old.node.remove();  // the reader's own, shown before, now in the thread
    node.id = "comment-" + comment.id;
    node.setAttribute("data-id", comment.id);
    // A permalink on the host page's address (DESIGN §10).
    link.href = location.href.split("#")[0] + "#" + node.id;
    header.insertBefore(comment.author_url && /^https?:\/\//i.test(comment.author_url)
      ? el("a", { class: "csv-author", href: comment.author_url, rel: REL, target: "_blank", text: comment.author_name })
      : el("span", { class: "csv-author", text: comment.author_name }), link);
    var exact = new Date(comment.created_at);
    time.setAttribute("datetime", comment.created_at);
    time.title = this.exact.format(exact);
    time.textContent = this.relativeTime(exact);
    node.querySelector(".csv-reply").setAttribute("aria-label", fmt(t.replyTo, { name: comment.author_name }));
    var body = node.querySelector(".csv-body");
    body.appendChild(safeBody(comment.body_html));
    var parent = comment.parent_id && this.byId[comment.parent_id];
    var depth = parent ? parent.depth + 1 : 0;
    var item = this.byId[comment.id] = { comment: comment, node: node, body: body, replies: replies, depth: Math.min(depth, MAX_DEPTH) };
    // Replies nest under their parent up to MAX_DEPTH, then stay at that depth.
    var target = parent ? (parent.depth >= MAX_DEPTH ? parent.node.parentNode : parent.replies) : batch;
    target.appendChild(node);
    if (this.ownShown) this.ownShown(item);
    return item;
  };

  // The comment of the address's #comment-{id}, once the thread is here.
  Widget.prototype.seek = function () {
    this.target = /^#comment-\d+$/.test(location.hash) && location.hash.slice(9);
    if (this.cursor !== undefined) this.find();
  };

  // Slices load until the target is shown (then scrolled to, highlighted and focused) or the
  // thread ends (then it is not visible to this reader).
  Widget.prototype.find = function () {
    var item = this.byId[this.target];
    if (!this.target || this.more.busy) return;
    if (!item && this.cursor) return this.load(this.cursor);
    this.target = null;
    if (!item) return void (this.loadError.textContent = this.t.notVisible);
    if (this.lit) this.lit.classList.remove("csv-target");
    (this.lit = item.node).classList.add("csv-target");
    focusOn(item.node);
    item.node.scrollIntoView({ block: "center" });
  };

  // A slice of the thread, after `cursor`; with `adopted` (the page's copy of the first
  // slice, DESIGN §10), that copy shown at once and fetched only if it changed since.
  Widget.prototype.load = function (cursor, adopted) {
    var self = this;
    var gen = this.gen;
    var url = this.base + "/comments?sort=" + this.sort + "&page=" + encodeURIComponent(this.page) + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    if (adopted) {
      this.show(rendered(adopted), cursor);
      url += "&limit=" + adopted.getAttribute("data-limit");
    } else {
      setBusy(this.more, true);
    }
    request(url, adopted && { headers: { Accept: "application/json", "If-None-Match": adopted.getAttribute("data-etag") } }).then(function (result) {
      if (gen !== self.gen || result.status === 304) return;
      if (result.status !== 200) {
        refused(result);
        throw result;
      }
      if (adopted) self.clear();
      self.show(result.data, cursor);
    }).catch(function () {
      setBusy(self.more, false);
      (cursor ? self.more : self.heading).after(self.loadError);
      if (!adopted) self.loadError.textContent = self.t.loadFailed;
    });
  };

  Widget.prototype.show = function (data, cursor) {
    var self = this;
    var batch = document.createDocumentFragment();
    var first = null;
    data.comments.forEach(function (comment) {
      var node = self.renderComment(comment, batch).node;
      first = first || node;
    });
    // Oldest first, the reader's own pending comments end the thread: slices come before them.
    this.list.insertBefore(batch, this.sort === NEWEST ? null : this.list.querySelector(":scope>.csv-mine"));
    this.cursor = data.next_cursor;
    setBusy(this.more, false);
    // The button goes away: hand its focus to the first comment it loaded.
    if (!data.next_cursor && cursor && first && (this.root.activeElement || document.activeElement) === this.more) focusOn(first);
    this.more.hidden = !data.next_cursor;
    this.loadError.textContent = "";
    var n = data.total;
    this.heading.textContent = n === 0 ? this.t.none : this.words.count(n);
    this.sorter.hidden = n < 2;
    if (data.markup === "markdown" && !this.tabs) this.tabs = part(this.origin, "markdown").then(function () { if (self.markdown) self.markdown(); });
    if (this.placeOwn) this.placeOwn(!data.next_cursor, !cursor);
    this.find();
  };

  function fillCounts() {
    var nodes = document.querySelectorAll("[data-comment-count]");
    if (!nodes.length) return;
    var site = attr("site", nodes[0].closest("[data-site]"));
    var ready = translation(language(null), null);
    var keys = [];
    nodes.forEach(function (node) {
      var key = node.getAttribute("data-comment-count");
      if (keys.indexOf(key) < 0) keys.push(key);
    });
    for (var start = 0; start < keys.length; start += CONFIG.countsChunk) {
      var chunk = keys.slice(start, start + CONFIG.countsChunk);
      var url = apiBase(null) + encodeURIComponent(site) + "/counts?" + chunk.map(function (key) { return "page=" + encodeURIComponent(key); }).join("&");
      Promise.all([ready, request(url)]).then(function (both) {
        var result = both[1];
        refused(result);
        var counts = (result.data && result.data.counts) || {};
        nodes.forEach(function (node) {
          var n = counts[node.getAttribute("data-comment-count")];
          if (typeof n === "number") node.textContent = both[0].count(n);
        });
      });
    }
  }

  function mountAll() {
    document.querySelectorAll("#comments, [data-commentsvc]").forEach(function (container) {
      if (!container.__commentsvc && attr("site", container)) container.__commentsvc = new Widget(container);
    });
    fillCounts();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
