/*
 * Flask-Conversation: this tab's conversation id for the htmx and fetch()
 * requests of the page.
 *
 * Included by conversation_script(), whose <script> tag names the header
 * (data-header), the parameter (data-param) and the cid the page was
 * rendered with (data-cid). The cid lives in this page only: every tab has
 * its own, and nothing is stored in the browser.
 *
 * - A request to this origin gets the current cid in the header, unless it
 *   names one itself (in its URL or form data, or for fetch() the header)
 *   or sets the header to "" (leave this request alone).
 * - A response to a request that was on the current cid tells what comes
 *   next: the cid in its header (a conversation begun, nested, or ended back
 *   to its parent), or, on a successful response without it, none (the
 *   conversation ended). Responses to requests on another cid, or that
 *   were on a cid this page has since left, change nothing. An error
 *   response without the header (busy, store down) changes nothing either.
 * - A boosted htmx request loads a new page: its response sets the cid.
 *
 * Works with htmx 2 (XMLHttpRequest, htmx:configRequest/htmx:beforeOnLoad)
 * and htmx 4 (fetch, htmx:config:request/htmx:before:response).
 */
(function () {
  "use strict";

  if (window.flaskConversation) return; // included twice: the first one works

  const tag = document.currentScript;
  const data = (tag && tag.dataset) || {};
  const HEADER = data.header || "X-Conversation-Id";
  const PARAM = data.param || "cid";
  let current = blank(data.cid) ? null : data.cid;

  // In-flight requests of htmx, by its request object: what each was on.
  const pending = new WeakMap();

  function blank(value) {
    return value === undefined || value === null || String(value).trim() === "";
  }

  function resolve(url) {
    try {
      return new URL(url, document.baseURI);
    } catch (e) {
      return null;
    }
  }

  function sameOrigin(url) {
    const resolved = resolve(url);
    return resolved !== null && resolved.origin === location.origin;
  }

  // The cid a request names by itself, in the order the server reads them.
  function ownCid(url, body) {
    const resolved = resolve(url);
    const inUrl = resolved && resolved.searchParams.get(PARAM);
    if (!blank(inUrl)) return inUrl;
    if (body instanceof FormData || body instanceof URLSearchParams) {
      const inForm = body.get(PARAM);
      if (typeof inForm === "string" && !blank(inForm)) return inForm;
    }
    return null;
  }

  // A record of what a request was on: {cid} or {navigation: true}.
  function learn(record, status, value) {
    if (!record) return;
    if (!record.navigation && record.cid !== current) return;
    if (!blank(value)) current = value;
    else if (status < 400) current = null;
  }

  // htmx: this script decides the header of every request to this origin
  // (stale hx-headers included), except for requests that name a cid in
  // their URL or form data, or set the header to "".
  function htmxRequest(url, body, headers, boosted) {
    if (!sameOrigin(url)) return null;
    const keys = Object.keys(headers).filter(
      (key) => key.toLowerCase() === HEADER.toLowerCase()
    );
    if (keys.some((key) => headers[key] === "")) return null;
    const own = ownCid(url, body);
    if (own === null) {
      keys.forEach((key) => delete headers[key]);
      if (current !== null) headers[HEADER] = current;
    }
    if (boosted) return { navigation: true };
    return { cid: own === null ? current : own };
  }

  function remember(key, record) {
    if (record) pending.set(key, record);
  }

  function settle(key, status, value) {
    const record = pending.get(key);
    pending.delete(key);
    learn(record, status, value);
  }

  // htmx 2
  document.addEventListener("htmx:configRequest", (event) => {
    const d = event.detail;
    const boosted = !!d.boosted || d.headers["HX-Boosted"] === "true";
    remember(d, htmxRequest(d.path, d.formData, d.headers, boosted));
  });
  document.addEventListener("htmx:beforeOnLoad", (event) => {
    const d = event.detail;
    if (d.requestConfig && d.xhr) {
      settle(d.requestConfig, d.xhr.status, d.xhr.getResponseHeader(HEADER));
    }
  });

  // htmx 4: its requests go through fetch() below, which settles them; the
  // response event covers a request sent with a fetch of its own.
  document.addEventListener("htmx:config:request", (event) => {
    const request = event.detail.ctx.request;
    const boosted = request.headers["HX-Boosted"] === "true";
    remember(request, htmxRequest(request.action, request.body, request.headers, boosted));
  });
  document.addEventListener("htmx:before:response", (event) => {
    const ctx = event.detail.ctx;
    settle(ctx.request, ctx.response.status, ctx.response.headers.get(HEADER));
  });

  // fetch(): the page's own requests (and htmx 4's).
  const nativeFetch = window.fetch;
  if (typeof nativeFetch === "function") {
    window.fetch = function (input, init) {
      if (init && pending.has(init)) {
        return nativeFetch.call(window, input, init).then((response) => {
          settle(init, response.status, response.headers.get(HEADER));
          return response;
        });
      }
      const url = input instanceof Request ? input.url : String(input);
      if (!sameOrigin(url)) return nativeFetch.call(window, input, init);
      const given =
        init && init.headers !== undefined
          ? init.headers
          : input instanceof Request
            ? input.headers
            : undefined;
      const headers = new Headers(given);
      const explicit = headers.get(HEADER);
      if (explicit === "") return nativeFetch.call(window, input, init);
      let cid = ownCid(url, init && init.body);
      if (cid === null && !blank(explicit)) cid = explicit;
      if (cid === null && current !== null) {
        headers.set(HEADER, current);
        init = Object.assign({}, init, { headers: headers });
      }
      const record = { cid: cid === null ? current : cid };
      return nativeFetch.call(window, input, init).then((response) => {
        learn(record, response.status, response.headers.get(HEADER));
        return response;
      });
    };
  }

  window.flaskConversation = Object.freeze({
    /** The cid this tab's requests carry now, or null. */
    get cid() {
      return current;
    },
    header: HEADER,
    param: PARAM,
  });
})();
