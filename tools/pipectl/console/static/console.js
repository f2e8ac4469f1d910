// The pipeline console page. Every value from the server is put on the page with textContent
// (never innerHTML), so nothing in a tag, a note or an audit entry can become markup.
"use strict";

(function () {
  const REFRESH_MS = 15000;
  const state = {
    csrf: null,
    status: null,
    fetchedAt: 0, // performance.now() when status arrived
    bg: null, // {stage, tag, approval, card}
  };

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  // Same rounding as pipectl.timeutil.humanize_seconds: two units, rounded up.
  function humanize(seconds) {
    let rest = Math.max(0, Math.ceil(seconds));
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      const count = Math.floor(rest / size);
      rest -= count * size;
      if (count || parts.length) parts.push(count + unit);
      if (parts.length === 2) break;
    }
    const shown = parts.filter((p) => !p.startsWith("0"));
    return shown.length ? shown.join(" ") : "0s";
  }

  function formatInstant(iso, timeZone) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const fmt = new Intl.DateTimeFormat("en-US", {
      timeZone, weekday: "short", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
    });
    return fmt.format(d);
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = state.csrf || "";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = { error: "HTTP " + res.status };
    }
    return { status: res.status, data };
  }

  // ---- market ---------------------------------------------------------------------------

  function marketText(m, elapsed) {
    if (!m) return { state: "unknown", text: "Market: unknown" };
    if (m.error) return { state: "unknown", text: "Market: " + m.error };
    const tz = m.timezone;
    if (m.open) {
      const left = Math.max(0, m.seconds_to_close - elapsed);
      if (left <= 0) return { state: "closed", text: "CLOSED — promotions allowed (refreshing…)" };
      let text = "OPEN — promotions blocked, closes in " + humanize(left);
      if (m.half_day) text += " (half day, closes " + formatInstant(m.next_close, tz) + ")";
      return { state: "open", text };
    }
    const untilOpen = m.seconds_to_open - elapsed;
    let text = "CLOSED — promotions allowed, next open " + formatInstant(m.next_open, tz);
    if (untilOpen > 0) text += " (in " + humanize(untilOpen) + ")";
    if (m.next_half_day) text += ", a half day";
    return { state: "closed", text };
  }

  let refreshQueued = false;
  function tick() {
    const s = state.status;
    if (!s) return;
    const elapsed = (performance.now() - state.fetchedAt) / 1000;
    const shown = marketText(s.market, elapsed);
    const banner = $("#market");
    banner.dataset.state = shown.state;
    banner.textContent = shown.text;
    for (const card of $$(".stage")) {
      const box = $(".stage-market", card);
      if (box.hidden) continue;
      box.dataset.state = shown.state;
      box.textContent = shown.text;
    }
    const m = s.market || {};
    const flips = m.open ? m.seconds_to_close : m.seconds_to_open;
    if (!refreshQueued && typeof flips === "number" && elapsed >= flips) {
      refreshQueued = true; // the market just opened or closed: ask the server, not the clock
      refresh().finally(() => { refreshQueued = false; });
    }
  }

  // ---- stages ---------------------------------------------------------------------------

  function shortTime(iso) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso || "");
    return m ? m[1] + " " + m[2] + " UTC" : iso || "";
  }

  function describeInttest(view) {
    if (!view) return "no result recorded";
    return view.result + " · " + view.tag + " · by " + view.by + " · " + shortTime(view.time);
  }

  function describeLast(lp) {
    if (!lp) return "none recorded";
    const parts = [lp.tag ? lp.tag : "?", "by " + (lp.actor || "?"), shortTime(lp.time)];
    let text = parts.filter(Boolean).join(" · ");
    if (lp.notes) text += " — “" + lp.notes + "”";
    text += " · break-glass: " + (lp.break_glass || "none");
    if (lp.commit) text += " · commit " + String(lp.commit).slice(0, 12);
    return text;
  }

  function gatesText(g) {
    const on = [];
    if (g.market_hours) on.push("market hours");
    if (g.approval) on.push("approval with notes");
    if (g.integration_test) on.push("integration test");
    return on.length ? on.join(", ") : "none";
  }

  function cardFor(stage) {
    let card = $('.stage[data-stage="' + CSS.escape(stage.name) + '"]');
    if (card) return card;
    card = $("#stage-template").content.firstElementChild.cloneNode(true);
    card.dataset.stage = stage.name;
    card.id = "stage-" + stage.name;
    $(".stage-name", card).textContent = stage.name;
    $(".toggle", card).addEventListener("click", () => toggleStage(card));
    $("form.promote", card).addEventListener("submit", (ev) => {
      ev.preventDefault();
      promote(card);
    });
    $(".history", card).id = "stage-" + stage.name + "-history";
    $(".history", card).addEventListener("toggle", () => {
      if ($(".history", card).open) loadHistory(card);
    });
    $("#stages").appendChild(card);
    return card;
  }

  function renderStages(s) {
    for (const stage of s.stages) {
      const card = cardFor(stage);
      card.dataset.enabled = String(stage.enabled);
      const badge = $(".enabled-badge", card);
      badge.textContent = stage.enabled ? "enabled" : "disabled";
      badge.dataset.on = String(stage.enabled);
      const toggle = $(".toggle", card);
      toggle.textContent = stage.enabled ? "Disable" : "Enable";
      toggle.dataset.enabled = String(stage.enabled);
      $(".tag", card).textContent = stage.tag || (stage.deploys ? "none" : "—");
      $(".from-stage", card).textContent = stage.from_stage || "—";
      $(".gates", card).textContent = gatesText(stage.gates || {});
      $(".last-dt", card).textContent = stage.deploys ? "Last promotion" : "Last test result";
      $(".last", card).textContent = stage.deploys
        ? describeLast(stage.last_promotion)
        : describeInttest(stage.inttest);
      const argo = stage.argocd;
      $(".argo", card).textContent = argo ? (argo.sync || "?") + " / " + (argo.health || "?") : "—";
      $(".argo", card).hidden = $(".argo-dt", card).hidden = !argo;
      $(".stage-market", card).hidden = !(stage.gates && stage.gates.market_hours);
      const form = $("form.promote", card);
      form.hidden = !stage.deploys;
      const tagInput = $(".tag-input", card);
      if (!tagInput.value && stage.candidate_tag) tagInput.value = stage.candidate_tag;
      tagInput.placeholder = stage.candidate_tag || "git sha";
      const notes = $("textarea[name=notes]", card);
      notes.required = !!(stage.gates && stage.gates.approval);
      notes.placeholder = notes.required ? "required: recorded as the approval" : "optional";
      $(".promote-button", card).disabled = !stage.enabled;
      if ($(".history", card).open) loadHistory(card);
    }
  }

  function renderVerify(v) {
    const box = $("#verify");
    if (!v) return;
    box.dataset.ok = String(!!v.ok);
    if (v.ok) {
      box.textContent = "Audit log verified: " + v.entries + " entries, chain intact";
    } else {
      box.textContent = "Audit log FAILED verification at line " + (v.bad_line || "?") +
        (v.bad_id ? " (entry " + v.bad_id + ")" : "") + ": " + (v.reason || "unknown");
    }
  }

  async function refresh() {
    const { status, data } = await api("GET", "/api/v1/status");
    const err = $("#load-error");
    if (status !== 200) {
      err.hidden = false;
      err.textContent = "Could not load the pipeline status: " + (data.error || status);
      return;
    }
    err.hidden = true;
    state.status = data;
    state.fetchedAt = performance.now();
    renderStages(data);
    renderVerify(data.audit_verify);
    const warn = $("#cluster-warning");
    const problems = [data.pull_error && "git pull failed (the view may be behind): " +
      data.pull_error, data.cluster_error && "cluster: " + data.cluster_error].filter(Boolean);
    warn.hidden = !problems.length;
    warn.textContent = problems.join(" · ");
    $("#refreshed").textContent = "updated " + new Date().toLocaleTimeString();
    tick();
  }

  // ---- actions --------------------------------------------------------------------------

  function showResult(card, kind, title, reasons, extra) {
    const box = $(".result", card);
    box.hidden = false;
    box.dataset.kind = kind;
    box.replaceChildren(el("strong", title));
    if (reasons && reasons.length) {
      const ul = el("ul");
      for (const r of reasons) ul.appendChild(el("li", r));
      box.appendChild(ul);
    }
    if (extra) box.appendChild(extra);
  }

  async function promote(card) {
    const stage = card.dataset.stage;
    const tag = $(".tag-input", card).value.trim();
    const notes = $("textarea[name=notes]", card).value;
    const button = $(".promote-button", card);
    button.disabled = true;
    try {
      const { status, data } = await api("POST", "/api/v1/promote", { stage, tag, notes });
      handleOutcome(card, stage, tag, status, data);
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  function handleOutcome(card, stage, tag, status, data) {
    if (status === 200 || status === 202) {
      showResult(card, "ok", data.message || "Promoted.");
      $("textarea[name=notes]", card).value = "";
      return;
    }
    if (status === 409 && data.blocked) {
      let extra = null;
      if (data.break_glass_possible) {
        extra = el("button", "Break-glass…", "danger break-glass-open");
        extra.type = "button";
        extra.addEventListener("click", () =>
          openBreakGlass(card, stage, tag, data.reasons || [], $("textarea[name=notes]", card).value));
      }
      showResult(card, "blocked", "Blocked: " + stage + " ← " + tag, data.reasons || [data.error], extra);
      return;
    }
    showResult(card, "error", data.error || "Request failed (HTTP " + status + ")");
  }

  async function toggleStage(card) {
    const stage = card.dataset.stage;
    const enable = $(".toggle", card).dataset.enabled !== "true";
    const { status, data } = await api("POST", "/api/v1/stages/" + encodeURIComponent(stage), { enabled: enable });
    if (status === 200) showResult(card, "ok", data.message || "Saved.");
    else showResult(card, "error", data.error || "HTTP " + status);
    refresh();
  }

  // ---- break-glass ----------------------------------------------------------------------

  function openBreakGlass(card, stage, tag, reasons, notes) {
    const stageInfo = (state.status.stages || []).find((s) => s.name === stage) || {};
    const approval = !!(stageInfo.gates && stageInfo.gates.approval);
    state.bg = { stage, tag, card, approval };
    const dlg = $("#break-glass");
    for (const node of $$(".bg-stage", dlg)) node.textContent = stage;
    $(".bg-tag", dlg).textContent = tag;
    $(".bg-why", dlg).textContent = "Blocked because: " + reasons.join("; ");
    $("#bg-confirm").value = "";
    $("#bg-justification").value = "";
    $("#bg-notes").value = notes || "";
    $(".bg-notes-label", dlg).hidden = !approval;
    $(".bg-error", dlg).hidden = true;
    dlg.showModal();
    $("#bg-confirm").focus();
  }

  function bgError(text) {
    const box = $("#break-glass .bg-error");
    box.hidden = false;
    box.textContent = text;
  }

  async function submitBreakGlass(ev) {
    ev.preventDefault();
    const bg = state.bg;
    if (!bg) return;
    const confirm = $("#bg-confirm").value;
    const justification = $("#bg-justification").value.trim();
    if (confirm !== bg.stage) {
      bgError("Type the stage name “" + bg.stage + "” exactly to confirm.");
      return;
    }
    if (!justification) {
      bgError("Write a justification: why this promotion cannot wait.");
      return;
    }
    const body = { stage: bg.stage, tag: bg.tag, justification, confirm };
    if (bg.approval) body.notes = $("#bg-notes").value;
    const button = $("#bg-submit");
    button.disabled = true;
    try {
      const { status, data } = await api("POST", "/api/v1/break-glass", body);
      if (status === 200 || status === 202) {
        $("#break-glass").close();
        showResult(bg.card, "ok", data.message || "Promoted with break-glass.");
        state.bg = null;
      } else {
        bgError(data.error || "HTTP " + status);
      }
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  // ---- audit history --------------------------------------------------------------------

  const COLUMNS = ["time", "actor", "action", "from_stage", "tag", "notes", "justification",
    "details", "id", "prev", "hash"];

  async function loadHistory(card) {
    const stage = card.dataset.stage;
    const body = $(".history-body", card);
    const { status, data } = await api("GET", "/api/v1/audit?stage=" + encodeURIComponent(stage));
    if (status !== 200) {
      body.replaceChildren(el("p", data.error || "HTTP " + status, "error"));
      return;
    }
    const entries = (data.entries || []).slice().reverse(); // newest first
    if (!entries.length) {
      body.replaceChildren(el("p", "No audit entries for " + stage + " yet."));
      return;
    }
    const table = el("table", null, "audit");
    const head = el("tr");
    for (const c of COLUMNS) head.appendChild(el("th", c));
    table.appendChild(el("thead")).appendChild(head);
    const tbody = el("tbody");
    for (const e of entries) {
      const tr = el("tr");
      tr.dataset.action = e.action;
      for (const c of COLUMNS) {
        const td = el("td");
        if (c === "details") td.appendChild(el("pre", JSON.stringify(e.details, null, 1)));
        else td.textContent = e[c] === null || e[c] === undefined ? "" : String(e[c]);
        if (c === "id" || c === "prev" || c === "hash") td.className = "mono hash";
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    table.appendChild(tbody);
    body.replaceChildren(table);
  }

  // ---- links from Kargo (the gate's `links`) --------------------------------------------

  function followLink() {
    const m = /^#stage-([a-z-]+?)(-history)?$/.exec(window.location.hash);
    if (!m) return;
    const card = $('.stage[data-stage="' + CSS.escape(m[1]) + '"]');
    if (!card) return;
    const tag = new URLSearchParams(window.location.search).get("break-glass");
    if (tag && /^[0-9a-f]{7,40}$/.test(tag)) {
      $(".tag-input", card).value = tag;
      showResult(card, "blocked", "Kargo's promotion of " + tag + " was blocked by the gate. " +
        "Press Promote to see why; Break-glass is offered when only the market blocks it.");
    }
    if (m[2]) $(".history", card).open = true;
    card.scrollIntoView();
  }

  // ---- start ----------------------------------------------------------------------------

  async function start() {
    const { status, data } = await api("GET", "/api/v1/session");
    if (status === 200) {
      state.csrf = data.csrf;
      $("#user").textContent = data.user;
    }
    $("#break-glass-form").addEventListener("submit", submitBreakGlass);
    $("#bg-cancel").addEventListener("click", () => $("#break-glass").close());
    $("#logout").addEventListener("click", async () => {
      await api("POST", "/logout", {});
      window.location.reload();
    });
    await refresh();
    followLink();
    setInterval(refresh, REFRESH_MS);
    setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
