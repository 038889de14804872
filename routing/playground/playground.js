// The playground's behaviour: plain JavaScript, no build step, nothing loaded from elsewhere.
//
// It calls the service's own API: GET playground/settings (models, prices, routers), GET
// v1/models (the routers on offer) and POST v1/chat/completions, whose x-route-* headers make
// each answer's badge. Text from the service goes into the page with textContent only.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ROUTER_PREFIX = "router-";

  const state = {
    settings: null, // GET playground/settings
    history: [], // this conversation's messages, sent whole with every question
    session: sessionId(), // this conversation's x-session-id, when its model is held
    totals: { answers: 0, strong: 0, priced: 0, usd: 0, allStrongUsd: 0 },
  };

  // ------------------------------------------------------------------ the API

  function headers(extra = {}) {
    const key = $("key").value.trim();
    return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
  }

  // The parsed JSON body and the headers of a successful answer; otherwise throws an Error
  // whose message says what went wrong (the OpenAI error's message when there is one).
  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      throw new Error(`the service did not answer (${error.message})`);
    }
    const text = await response.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error && body.error.message;
      throw new Error(`${response.status} ${response.statusText}: ${message || text.trim() || "no details"}`);
    }
    if (body === null) {
      throw new Error(`${response.status}: the answer is not JSON`);
    }
    return { body, headers: response.headers };
  }

  // ------------------------------------------------------------------ formatting

  function usd(value) {
    if (value === 0) return "$0";
    return "$" + (value >= 0.01 ? value.toFixed(2) : value.toPrecision(3));
  }

  function perMillion(price) {
    if (!price) return "no price";
    return `${usd(price.input_per_million)} in / ${usd(price.output_per_million)} out per M tokens`;
  }

  function percent(part, whole) {
    return whole ? `${Math.round((100 * part) / whole)}%` : "–";
  }

  function showStatus(message) {
    const status = $("status");
    status.textContent = message || "";
    status.className = message ? "status error" : "status";
    status.hidden = !message;
  }

  // ------------------------------------------------------------------ settings and routers

  async function loadSettings() {
    const { body } = await api("playground/settings");
    state.settings = body;
    const { strong, weak } = body;
    $("models").textContent =
      `strong model: ${strong.model} (${perMillion(strong.price)}) · ` +
      `weak model: ${weak.model} (${perMillion(weak.price)})` +
      (body.auth_required ? " · this service wants an API key" : "");
  }

  async function loadRouters() {
    try {
      const { body } = await api("v1/models", { headers: headers() });
      const names = body.data.map((m) => m.id).filter((id) => id.startsWith(ROUTER_PREFIX));
      const select = $("router");
      const previous = select.value;
      select.replaceChildren(
        ...names.map((id) => {
          const option = document.createElement("option");
          option.value = id.slice(ROUTER_PREFIX.length);
          option.textContent = option.value;
          return option;
        }),
      );
      if (names.includes(ROUTER_PREFIX + previous)) select.value = previous;
      showStatus(names.length ? "" : "The service offers no router.");
      routerChanged();
    } catch (error) {
      showStatus(`Could not list the routers: ${error.message}`);
    }
  }

  function currentRouter() {
    return state.settings && state.settings.routers[$("router").value];
  }

  // A strong share or a budget needs the router's calibration table; the value box follows the mode.
  function routerChanged() {
    const router = currentRouter();
    for (const mode of ["percent", "budget"]) {
      const option = $("mode").querySelector(`option[value="${mode}"]`);
      option.disabled = !(router && router.calibrated);
      option.title = option.disabled ? "this router has no calibration table" : "";
      if (option.disabled && $("mode").value === mode) $("mode").value = "threshold";
    }
    modeChanged();
  }

  function modeChanged() {
    const router = currentRouter();
    const value = $("value");
    if ($("mode").value === "percent") {
      $("value-label").textContent = "Strong share (%)";
      Object.assign(value, { min: 0, max: 100, step: 1 });
      value.value = router && router.default_strong_percent !== null ? router.default_strong_percent : 50;
    } else if ($("mode").value === "budget") {
      $("value-label").textContent = "Budget (USD per request)";
      Object.assign(value, { min: 0, max: "", step: 0.0001 });
      value.value = 0.001;
    } else {
      $("value-label").textContent = "Threshold";
      Object.assign(value, { min: 0, max: 1, step: 0.01 });
      value.value = router && router.default_threshold !== null ? router.default_threshold : 0.5;
    }
  }

  // router-<name>-<threshold>, router-<name>-<percent>%, router-<name>-$<usd>, or router-<name>
  // (its default) when empty.
  function modelAlias() {
    const value = $("value").value.trim();
    const base = ROUTER_PREFIX + $("router").value;
    if (!value) return base;
    const mode = $("mode").value;
    return mode === "percent" ? `${base}-${value}%` : mode === "budget" ? `${base}-$${value}` : `${base}-${value}`;
  }

  // ------------------------------------------------------------------ the chat

  function addTurn(classes, text) {
    const turn = document.createElement("div");
    turn.className = `turn ${classes}`;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    turn.append(body);
    $("chat").append(turn);
    turn.scrollIntoView({ block: "end" });
    return turn;
  }

  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function priceOf(model) {
    const { strong, weak } = state.settings;
    if (model === strong.model) return strong.price;
    if (model === weak.model) return weak.price;
    return null;
  }

  // The candidates an answer was chosen among, cheapest first, the most capable last: its
  // router's (the x-route-candidates header), or for a model asked by name the default ones.
  function candidatesOf(responseHeaders) {
    const listed = responseHeaders.get("x-route-candidates");
    const { strong, weak } = state.settings;
    return listed ? listed.split(",").map((item) => item.split("=")[0]) : [weak.model, strong.model];
  }

  function cost(price, usage) {
    return (usage.prompt_tokens * price.input_per_million + usage.completion_tokens * price.output_per_million) / 1e6;
  }

  // Which model answered, the router's candidates (each with its predicted chance of answering as
  // well as the most capable one; the one that answered marked), score and threshold, the
  // fallback if any, tokens and cost.
  function badge(body, responseHeaders) {
    const model = body.model;
    const candidates = candidatesOf(responseHeaders);
    const role = model === candidates[candidates.length - 1] ? "strong" : model === candidates[0] ? "weak" : "";
    const element = document.createElement("div");
    element.className = `badge ${role}`;
    element.dataset.model = model;
    element.dataset.role = role;
    element.append(span("answered-by", role ? `${model} (${role})` : model));
    const route = (name) => responseHeaders.get(`x-route-${name}`);
    if (route("router")) element.append(span("router", `router ${route("router")}`));
    if (route("score")) element.append(span("score", `score ${route("score")}`));
    if (route("threshold")) element.append(span("threshold", `threshold ${route("threshold")}`));
    if (route("candidates")) {
      const listed = route("candidates")
        .split(",")
        .map((item) => {
          const [name, chance] = item.split("=");
          return `${name === model ? "▸" : ""}${name} ${Number(chance).toFixed(2)}`;
        });
      element.append(span("candidates", `candidates ${listed.join(" · ")}`));
    }
    if (route("strong-percent")) element.append(span("strong-percent", `strong share ${route("strong-percent")}%`));
    if (route("decided")) element.append(span("decided", `decided ${route("decided")}`));
    if (route("budget")) element.append(span("budget", `budget $${route("budget")} per request`));
    if (route("fallback")) {
      const chosen = route("target") && route("target") !== model ? ` (${route("target")} was chosen)` : "";
      element.append(span("fallback", `fallback: ${route("fallback")}${chosen}`));
    }
    const usage = body.usage;
    if (usage) {
      const price = priceOf(model);
      const priced = price ? ` · ${usd(cost(price, usage))}` : "";
      element.append(span("usage", `${usage.prompt_tokens} + ${usage.completion_tokens} tokens${priced}`));
    }
    return { element, role, usage, candidates };
  }

  // Cost against sending the answer to the most capable candidate it was chosen among, as the
  // service's cost metrics count it (an answer whose models the page has no price for is left out).
  function count(role, model, usage, candidates) {
    const totals = state.totals;
    totals.answers += 1;
    if (role === "strong") totals.strong += 1;
    const price = priceOf(model);
    const strongPrice = priceOf(candidates[candidates.length - 1]);
    if (usage && price && strongPrice) {
      totals.priced += 1;
      totals.usd += cost(price, usage);
      totals.allStrongUsd += cost(strongPrice, usage);
    }
    showTotals();
  }

  function showTotals() {
    const { answers, strong, priced, usd: spent, allStrongUsd } = state.totals;
    const { settings } = state;
    $("total-answers").textContent = `${answers} answer${answers === 1 ? "" : "s"}`;
    $("total-strong").textContent = `strong share: ${percent(strong, answers)} (${strong} of ${answers})`;
    let text;
    if (!settings.strong.price && !settings.weak.price) {
      text = "cost: no prices configured";
    } else if (!priced) {
      text = "cost: –";
    } else {
      const saved = percent(allStrongUsd - spent, allStrongUsd);
      text = `cost: ${usd(spent)} against ${usd(allStrongUsd)} all-strong (${saved} saved)`;
      if (priced < answers) text += `; ${answers - priced} answer(s) without usage or prices not counted`;
    }
    $("total-cost").textContent = text;
  }

  async function send(event) {
    event.preventDefault();
    const text = $("message").value.trim();
    if (!text) return;
    if (!state.settings || !$("router").value) {
      showStatus("No router to ask yet: see the message above (an API key may be needed).");
      return;
    }
    const messages = [...state.history, { role: "user", content: text }];
    const question = addTurn("user", text);
    const answer = addTurn("assistant pending", "…");
    $("message").value = "";
    $("send").disabled = true;
    try {
      const { body, headers: responseHeaders } = await api("v1/chat/completions", {
        method: "POST",
        // Unless the conversation's model is held, each question is decided afresh at the
        // setting chosen for it: the playground then shows what each setting does.
        headers: headers({
          "content-type": "application/json",
          ...($("hold").checked ? { "x-session-id": state.session } : { "x-route-stickiness": "off" }),
        }),
        body: JSON.stringify({ model: modelAlias(), messages }),
      });
      const choice = body.choices && body.choices[0];
      const content = (choice && choice.message && choice.message.content) || "";
      state.history = [...messages, { role: "assistant", content }];
      answer.classList.remove("pending");
      answer.firstChild.textContent = content || "(an empty answer)";
      const { element, role, usage, candidates } = badge(body, responseHeaders);
      answer.append(element);
      count(role, body.model, usage, candidates);
    } catch (error) {
      // The question stays out of the history and back in the box, to send again.
      answer.className = "turn error";
      answer.firstChild.textContent = `Error: ${error.message}`;
      question.classList.add("unsent");
      $("message").value = text;
    } finally {
      $("send").disabled = false;
      answer.scrollIntoView({ block: "end" });
    }
  }

  function sessionId() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return `playground-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  function newConversation() {
    state.history = [];
    state.session = sessionId();
    $("chat").replaceChildren();
    $("message").focus();
  }

  // ------------------------------------------------------------------ start

  async function start() {
    $("composer").addEventListener("submit", send);
    $("message").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("controls").addEventListener("submit", (event) => event.preventDefault());
    $("router").addEventListener("change", routerChanged);
    $("mode").addEventListener("change", modeChanged);
    $("key").addEventListener("change", loadRouters);
    $("new").addEventListener("click", newConversation);
    try {
      await loadSettings();
    } catch (error) {
      $("models").textContent = "";
      showStatus(`Could not read the playground's settings: ${error.message}`);
      return;
    }
    showTotals();
    await loadRouters();
  }

  start();
})();
