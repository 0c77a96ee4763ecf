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
 *   conversation ended). Responses to requests on another cid change
 *   nothing, nor does an error response without the header (busy, store
 *   down).
 * - htmx ignores the response to a request on a conversation that this page
 *   has since seen end (a poll sent just before the nested conversation it
 *   named ended): whatever it says, the page has moved on, and the server
 *   can only answer it as an unknown cid.
 * - A boosted htmx request loads a new page: its response sets the cid.
 * - Once htmx got HX-Redirect or HX-Refresh, the page is being replaced: its
 *   htmx requests from then on (a poll) are not sent, so that none names a
 *   conversation the new page has already used up.
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
  // The cids this page was on before the current one, outermost first: the
  // stack above it, as far as this page saw it begin.
  let trail = [];
  // The cids this page saw end.
  const ended = new Set();
  // An htmx response told the browser to load another page.
  let leaving = false;

  // htmx's requests in flight, by its request object: what each was on.
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

  function moveTo(next) {
    if (next === current) return;
    const back = next === null ? 0 : trail.lastIndexOf(next);
    if (next === null || back >= 0) {
      // Back out to an outer conversation, or out of all of them: what
      // was inside has ended.
      trail.slice(next === null ? 0 : back + 1).forEach((cid) => ended.add(cid));
      if (current !== null) ended.add(current);
      trail = next === null ? [] : trail.slice(0, back);
    } else if (current !== null) {
      trail.push(current);
    }
    current = next;
  }

  // A record of what a request was on: {cid} or {navigation: true}, and
  // whether htmx sent it. Says whether the response is stale: on a
  // conversation that had ended.
  function learn(record, status, value, headers) {
    if (!record || record.learned) return record ? record.stale : false;
    record.learned = true;
    record.stale = !record.navigation && record.cid !== null && ended.has(record.cid);
    if (record.stale) return true;
    if (record.htmx && status < 300 && (headers("HX-Redirect") || headers("HX-Refresh") === "true")) {
      leaving = true;
    }
    if (record.navigation) {
      trail = [];
      current = blank(value) ? (status < 400 ? null : current) : value;
    } else if (record.cid === current) {
      if (!blank(value)) moveTo(value);
      else if (status < 400) moveTo(null);
    }
    return record.stale;
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
    if (boosted) return { navigation: true, htmx: true };
    return { cid: own === null ? current : own, htmx: true };
  }

  function remember(key, record) {
    if (record) pending.set(key, record);
  }

  // An htmx response: learn from it (unless fetch() already did) and keep
  // htmx from acting on a stale one.
  function htmxResponse(event, key, status, headers) {
    const record = pending.get(key);
    pending.delete(key);
    if (learn(record, status, headers(HEADER), headers)) event.preventDefault();
  }

  // A same-document HX-Redirect (a new #fragment) leaves the page in place.
  window.addEventListener("hashchange", () => {
    leaving = false;
  });

  // htmx 2
  document.addEventListener("htmx:configRequest", (event) => {
    if (leaving) return event.preventDefault();
    const d = event.detail;
    const boosted = !!d.boosted || d.headers["HX-Boosted"] === "true";
    remember(d, htmxRequest(d.path, d.formData, d.headers, boosted));
  });
  document.addEventListener("htmx:beforeRequest", (event) => {
    // htmx 2 announces a response on the element that made the request,
    // and an element taken out of the page meanwhile tells no one: learn
    // from the request itself then.
    const d = event.detail;
    const record = d.requestConfig && pending.get(d.requestConfig);
    if (record && d.xhr) {
      const xhr = d.xhr;
      xhr.addEventListener("load", () => {
        const headers = (name) => xhr.getResponseHeader(name);
        learn(record, xhr.status, headers(HEADER), headers);
      });
    }
  });
  document.addEventListener("htmx:beforeOnLoad", (event) => {
    const d = event.detail;
    if (d.requestConfig && d.xhr) {
      htmxResponse(event, d.requestConfig, d.xhr.status, (name) => d.xhr.getResponseHeader(name));
    }
  });

  // htmx 4: its requests go through fetch() below, which learns from them
  // first; the response event covers a request sent with a fetch of its own.
  document.addEventListener("htmx:config:request", (event) => {
    if (leaving) return event.preventDefault();
    const request = event.detail.ctx.request;
    const boosted = request.headers["HX-Boosted"] === "true";
    remember(request, htmxRequest(request.action, request.body, request.headers, boosted));
  });
  document.addEventListener("htmx:before:response", (event) => {
    const ctx = event.detail.ctx;
    htmxResponse(event, ctx.request, ctx.response.status, (name) => ctx.response.headers.get(name));
  });

  // fetch(): the page's own requests (and htmx 4's).
  const nativeFetch = window.fetch;
  if (typeof nativeFetch === "function") {
    window.fetch = function (input, init) {
      let record = init ? pending.get(init) : undefined;
      if (record === undefined) {
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
        record = { cid: cid === null ? current : cid };
      }
      return nativeFetch.call(window, input, init).then((response) => {
        const headers = (name) => response.headers.get(name);
        learn(record, response.status, headers(HEADER), headers);
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
