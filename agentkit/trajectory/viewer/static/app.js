"use strict";
const PAGE = 50;
const state = { offset: 0, total: 0, selected: null, filters: {}, loads: 0 };
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function fmtReward(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(3).replace(/\.?0+$/, "");
}

async function loadFacets() {
  const facets = await getJSON("/api/facets");
  const select = $("#f-status");
  for (const [status, count] of Object.entries(facets.statuses).sort()) {
    select.append(el("option", { value: status, text: `${status} (${count})` }));
  }
  const rewards = facets.reward_min === null ? "no rewards" :
    `reward ${fmtReward(facets.reward_min)}…${fmtReward(facets.reward_max)}`;
  $("#store-info").textContent =
    `${facets.episodes} episodes · ${facets.tasks} tasks · ${facets.groups} groups · ${rewards}` +
    (facets.bad_lines ? ` · ${facets.bad_lines} unreadable lines` : "");
}

function readFilters() {
  const data = new FormData($("#filters"));
  const filters = {};
  for (const [key, value] of data.entries()) if (String(value).trim()) filters[key] = value;
  return filters;
}

async function loadPage() {
  const params = new URLSearchParams({ ...state.filters, offset: state.offset, limit: PAGE });
  const page = await getJSON(`/api/episodes?${params}`);
  state.total = page.total;
  const body = $("#episodes tbody");
  body.replaceChildren();
  for (const item of page.items) {
    const row = el("tr", { "data-id": item.episode_id },
      el("td", { text: String(item.ordinal + 1) }),
      el("td", { text: item.episode_id, title: item.preview }),
      el("td", { text: item.task_id ?? "" }),
      el("td", { text: item.group_id ?? "" }),
      el("td", { class: `status ${item.status}`, text: item.status }),
      el("td", { class: "reward", text: fmtReward(item.reward) }),
      el("td", { text: String(item.model_calls) }),
      el("td", { text: String(item.prompt_tokens + item.completion_tokens) }));
    if (item.episode_id === state.selected) row.classList.add("selected");
    row.addEventListener("click", () => selectEpisode(item.episode_id));
    body.append(row);
  }
  const last = Math.min(state.offset + PAGE, page.total);
  $("#page-info").textContent = page.total ?
    `${state.offset + 1}–${last} of ${page.total}` : "no episodes match";
  $("#prev").disabled = state.offset === 0;
  $("#next").disabled = last >= page.total;
  state.loads += 1;
  $("#episodes").dataset.loads = String(state.loads);  // lets tests wait for a rendered page
}

function entryView(entry) {
  const node = el("div", { class: `entry ${entry.kind}`, "data-kind": entry.kind });
  if (entry.kind === "tool_result" && entry.status !== "ok") node.classList.add("error");
  let label = entry.kind.replace("_", " ");
  if (entry.kind === "prompt") label = entry.role;
  if (entry.name) label += ` · ${entry.name}`;
  if (entry.status) label += ` · ${entry.status}`;
  const head = el("div", {}, el("span", { class: "label", text: label }));
  const meta = [];
  if (entry.turn !== null && entry.turn !== undefined) meta.push(`turn ${entry.turn}`);
  const m = entry.meta || {};
  if (m.prompt_tokens !== undefined && m.prompt_tokens !== null) meta.push(`in ${m.prompt_tokens} tok`);
  if (m.completion_tokens !== undefined && m.completion_tokens !== null) meta.push(`out ${m.completion_tokens} tok`);
  if (m.cached_tokens) meta.push(`cached ${m.cached_tokens}`);
  if (m.finish_reason) meta.push(`finish ${m.finish_reason}`);
  if (m.attempts > 1) meta.push(`${m.attempts} attempts`);
  if (m.latency_s !== undefined) meta.push(`${m.latency_s}s`);
  if (m.error_type) meta.push(m.error_type);
  if (entry.call_id) meta.push(entry.call_id);
  if (meta.length) head.append(el("span", { class: "meta", text: meta.join(" · ") }));
  node.append(head);
  let body = entry.text;
  if (entry.kind === "tool_call") body = JSON.stringify(entry.arguments, null, 2);
  if (entry.error && !body) body = entry.error;
  if (body) node.append(el("pre", { text: body }));
  return node;
}

function headerView(view) {
  const s = view.summary;
  const end = view.end;
  const header = el("div", {},
    el("h2", { text: s.episode_id }),
    el("div", { class: "kv" },
      ...[["status", s.status], ["reward", fmtReward(s.reward)], ["task", s.task_id ?? "–"],
          ["group", s.group_id ?? "–"], ["sample", s.sample_index ?? "–"], ["model", s.model],
          ["mode", s.mode], ["model calls", s.model_calls], ["tool calls", s.tool_steps],
          ["tool errors", s.tool_errors], ["prompt tokens", s.prompt_tokens],
          ["completion tokens", s.completion_tokens],
          ["elapsed", s.elapsed_s === null ? "–" : `${s.elapsed_s.toFixed(2)}s`]]
        .map(([k, v]) => el("span", { "data-field": k }, el("b", { text: k }), String(v)))));
  if (end && (end.error || end.failure || (end.status !== "completed"))) {
    const cause = [`${end.status}${end.failure ? ` (${end.failure})` : ""}`,
      end.termination_reason ? `reason: ${end.termination_reason}` : "",
      end.error ?? ""].filter(Boolean).join("\n");
    header.append(el("div", { class: "failure", id: "failure", text: cause }));
  } else if (!end) {
    header.append(el("div", { class: "failure", id: "failure", text: "unfinished: no episode end in the store" }));
  }
  const components = end ? Object.entries(end.reward_components || {}) : [];
  if (components.length) {
    const table = el("table", { class: "components", id: "reward-components" },
      el("tr", {}, el("th", { text: "reward component" }), el("th", { text: "value" })));
    for (const [name, value] of components) {
      table.append(el("tr", {}, el("td", { text: name }),
        el("td", { text: typeof value === "object" ? JSON.stringify(value) : String(value) })));
    }
    header.append(table);
  }
  return header;
}

function tokensView(view) {
  const box = el("div", {});
  box.append(el("div", { class: "legend" },
    ...["model", "prompt", "tool", "user", "template"].map(
      (s) => el("span", { class: `piece ${s}`, text: s === "model" ? "model (loss mask 1)" : s }))));
  if (view.token_note) box.append(el("div", { class: "note", id: "token-note", text: view.token_note }));
  for (const row of view.token_rows) {
    box.append(el("div", { class: "row-head",
      text: `row ${row.row_index}: ${row.tokens} tokens, prompt ${row.prompt_len}, trained ${row.trained_tokens}` +
        (row.flags.length ? ` · ${row.flags.join(", ")}` : "") }));
    const text = el("div", { class: "tokens" });
    for (const piece of row.pieces) {
      const shown = piece.text ?? piece.ids.join(" ") + " ";
      text.append(el("span", {
        class: `piece ${piece.source}${piece.trained ? " trained" : ""}`,
        "data-source": piece.source, "data-mask": piece.trained ? "1" : "0",
        title: `${piece.source}: ${piece.ids.length} tokens, loss mask ${piece.trained ? 1 : 0}`,
        text: shown }));
    }
    box.append(text);
  }
  return box;
}

async function selectEpisode(id) {
  state.selected = id;
  for (const row of document.querySelectorAll("#episodes tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  const view = await getJSON(`/api/episodes/${encodeURIComponent(id)}`);
  $("#detail-empty").hidden = true;
  $("#detail").hidden = false;
  $("#detail").dataset.episode = id;
  $("#detail-header").replaceChildren(headerView(view));
  $("#timeline").replaceChildren(...view.timeline.map(entryView));
  $("#tokens").replaceChildren(tokensView(view));
}

function showTab(name) {
  $("#timeline").hidden = name !== "timeline";
  $("#tokens").hidden = name !== "tokens";
  $("#tab-timeline").classList.toggle("active", name === "timeline");
  $("#tab-tokens").classList.toggle("active", name === "tokens");
}

$("#filters").addEventListener("submit", (event) => {
  event.preventDefault();
  state.filters = readFilters();
  state.offset = 0;
  loadPage();
});
$("#clear").addEventListener("click", () => {
  $("#filters").reset();
  state.filters = {};
  state.offset = 0;
  loadPage();
});
$("#f-status").addEventListener("change", () => $("#apply").click());
$("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadPage(); });
$("#next").addEventListener("click", () => { state.offset += PAGE; loadPage(); });
$("#tab-timeline").addEventListener("click", () => showTab("timeline"));
$("#tab-tokens").addEventListener("click", () => showTab("tokens"));

loadFacets().then(loadPage);
