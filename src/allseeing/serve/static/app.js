// The demo page: images and sessions, regions, streamed answers and their views. Talks to serve/demo.py's API.
// No framework and nothing fetched from elsewhere: the page is this file, index.html and style.css.
"use strict";

const $ = (id) => document.getElementById(id);
const REGION_COLOURS = ["#ff2d55", "#ff8a00", "#7c4dff", "#00a3a3", "#d4a000"];
const MARKER = /\[region (\d+)\]/g;
const REFERENCE = /<ref>([\s\S]*?)<\/ref>\s*<box>([\s\S]*?)<\/box>/g;

const state = {
  session: null,
  size: null, // [width, height] of the image the server keeps (region boxes are in its pixels)
  maxUpload: 0,
  busy: false,
  starting: false,
  abort: null, // aborts the answer in flight when another image is opened
  regions: [], // {number, box, text, colour}
  nextRegion: 1,
  draft: null, // the region being drawn: [x1, y1, x2, y2]
  dragStart: null,
  keyboardDraft: false,
  answer: null, // the last answer: its objects are drawn on the image
  highlight: null, // {answer, ids} while a phrase or relation is pointed at
};

// ---------------------------------------------------------------------------------------------- messages

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

function announce(message) {
  $("announce").textContent = message;
}

$("error-close").onclick = clearError;

const sized = (bytes) => (bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 2 ** 10).toFixed(1)} KiB`);
const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

// ---------------------------------------------------------------------------------------------- the API

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  return data;
}

function postJson(path, value) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) });
}

function setEnabled() {
  const ready = state.session !== null && !state.busy && !state.starting;
  for (const id of ["message", "send"]) $(id).disabled = !ready;
  $("message").placeholder = state.session === null
    ? "Open an image first"
    : "Ask about the image (Enter sends, Shift+Enter starts a new line)";
  $("new-chat").disabled = state.session === null || state.busy || state.starting;
  for (const button of document.querySelectorAll(".sample")) button.disabled = state.starting;
  $("upload").disabled = state.starting;
}

async function init() {
  try {
    const config = await api("/api/config");
    state.maxUpload = config.max_upload_bytes;
    $("formats").textContent = `PNG, JPEG, WebP, GIF or BMP, up to ${sized(config.max_upload_bytes)}.`;
    for (const name of config.samples) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sample";
      button.dataset.sample = name;
      button.setAttribute("aria-pressed", "false");
      button.title = `Open the sample ${name}`;
      const thumbnail = document.createElement("img");
      const caption = document.createElement("span");
      caption.textContent = name;
      if (config.thumbnails?.[name]) {
        const thumbnail = document.createElement("img");
        thumbnail.src = config.thumbnails[name];
        thumbnail.alt = "";
        button.append(thumbnail);
      }
      button.append(caption);
      button.onclick = () => openSample(name);
      $("samples").append(button);
    }
  } catch (error) {
    showError(`Cannot reach the demo server: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------------------------- images

function openSample(name) {
  startSession(() => api(`/api/session?sample=${encodeURIComponent(name)}`, { method: "POST" }), { sample: name });
}

function openFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/") && file.type !== "") {
    showError(`Could not open ${file.name}. This file is not an image: choose a PNG, JPEG, WebP, GIF or BMP image.`);
    return;
  }
  if (state.maxUpload && file.size > state.maxUpload) {
    showError(`Could not open ${file.name}. It is ${sized(file.size)}; the demo takes uploads of up to ${sized(state.maxUpload)}.`);
    return;
  }
  startSession(() => api("/api/session", { method: "POST", body: file }), { file: file.name });
}

$("upload").onchange = () => {
  const file = $("upload").files[0];
  $("upload").value = ""; // the same file can be chosen again
  openFile(file);
};

// Drop an image file anywhere on the stage.
const stage = $("stage");
stage.addEventListener("dragover", (event) => {
  if (![...event.dataTransfer.types].includes("Files")) return;
  event.preventDefault();
  stage.classList.add("dropping");
});
stage.addEventListener("dragleave", () => stage.classList.remove("dropping"));
stage.addEventListener("drop", (event) => {
  event.preventDefault();
  stage.classList.remove("dropping");
  openFile(event.dataTransfer.files[0]);
});

// A failed start (a bad upload) shows the error and keeps the current image and chat.
async function startSession(request, source) {
  if (state.starting) return;
  clearError();
  state.starting = true;
  $("loading-text").textContent = source.file ? `Opening ${source.file}…` : "Opening the image…";
  $("loading").hidden = false;
  setEnabled();
  try {
    const data = await request();
    if (state.abort) state.abort.abort(); // an answer about the previous image is no longer wanted
    state.session = data.session;
    state.size = [data.width, data.height];
    await showPicture(data.image);
    stage.dataset.state = "ready";
    for (const button of document.querySelectorAll(".sample")) {
      button.setAttribute("aria-pressed", String(button.dataset.sample === source.sample));
    }
    const name = source.sample ? `Sample ${source.sample}` : `Your upload ${source.file}`;
    let size = `${data.original_width ?? data.width} × ${data.original_height ?? data.height} px`;
    if (data.original_width && data.original_width !== data.width) size += `, kept at ${data.width} × ${data.height}`;
    $("stage-help").textContent =
      `${name} (${size}). Drag on the image to mark a region, or focus it and press Enter to draw one with the arrow keys.`;
    $("picture").alt = source.sample ? `The sample image ${source.sample}` : `Your upload ${source.file}`;
    state.regions = [];
    state.nextRegion = 1;
    clearConversation();
    announce(`${name} is open.`);
  } catch (error) {
    showError(source.file ? `Could not open ${source.file}. ${error.message}` : error.message);
  } finally {
    state.starting = false;
    $("loading").hidden = true;
    setEnabled();
  }
}

function showPicture(url) {
  return new Promise((resolve) => {
    const picture = $("picture");
    picture.onload = picture.onerror = () => resolve();
    picture.src = url;
    $("placeholder").hidden = true;
    $("frame").hidden = false;
    // Tall images: at most 70% of the window's height.
    $("frame").style.maxWidth = `calc(70vh * ${state.size[0] / state.size[1]})`;
  });
}

// ---------------------------------------------------------------------------------------------- drawing on the image

const canvas = $("drawing");

function imagePoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * state.size[0],
    ((event.clientY - rect.top) / rect.height) * state.size[1],
  ];
}

function ordered([x1, y1, x2, y2]) {
  return [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
}

// Why a box cannot be a region (null when it can): the same rules as the server's /api/region.
function regionProblem(box, size) {
  const [x1, y1, x2, y2] = ordered(box);
  const [width, height] = size;
  if (x2 <= 0 || y2 <= 0 || x1 >= width || y1 >= height) {
    return "That region lies outside the image: drag across the picture itself.";
  }
  if (Math.min(x2, width) - Math.max(x1, 0) < 1 || Math.min(y2, height) - Math.max(y1, 0) < 1) {
    return "That region is too thin to point at anything: drag across the part of the picture you mean.";
  }
  return null;
}

function clipped(box, size) {
  const [x1, y1, x2, y2] = ordered(box);
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  return [clamp(x1, size[0]), clamp(y1, size[1]), clamp(x2, size[0]), clamp(y2, size[1])];
}

function paint() {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  if (!state.size || !width) return;
  const sx = width / state.size[0], sy = height / state.size[1];
  const rect = ([x1, y1, x2, y2]) => [x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy];
  context.font = "600 12px system-ui, sans-serif";

  const labels = []; // drawn last, over every outline
  const shown = state.highlight?.answer ?? ($("show-boxes").checked ? state.answer : null);
  for (const object of shown?.objects ?? []) {
    const lit = state.highlight?.ids.has(object.id);
    const alpha = state.highlight && !lit ? 0.25 : 1;
    const [x, y, w, h] = rect(object.box);
    context.globalAlpha = alpha;
    context.fillStyle = `${object.color}${lit ? "40" : "22"}`;
    context.fillRect(x, y, w, h);
    context.lineWidth = lit ? 3.5 : 2;
    context.strokeStyle = object.color;
    context.setLineDash([]);
    context.strokeRect(x, y, w, h);
    labels.push([object.label, x, y, object.color, false, alpha]);
  }
  context.globalAlpha = 1;
  const regions = state.regions.map((r) => [r.box, r.colour, `region ${r.number}`]);
  if (state.draft) {
    const colour = REGION_COLOURS[(state.nextRegion - 1) % REGION_COLOURS.length];
    regions.push([clipped(state.draft, state.size), colour, `region ${state.nextRegion}`]);
  }
  for (const [box, colour, label] of regions) {
    const [x, y, w, h] = rect(box);
    outline(context, [x, y, w, h], colour);
    labels.push([label, x, y + h, colour, true, 1]);
  }
  for (const [text, x, y, colour, under, alpha] of labels) {
    context.globalAlpha = alpha;
    tag(context, text, x, y, colour, width, height, under);
  }
  context.globalAlpha = 1;
}

function outline(context, [x, y, w, h], colour) {
  context.setLineDash([]);
  context.lineWidth = 4;
  context.strokeStyle = "rgba(255, 255, 255, 0.9)";
  context.strokeRect(x, y, w, h);
  context.setLineDash([7, 4]);
  context.lineWidth = 2.5;
  context.strokeStyle = colour;
  context.strokeRect(x, y, w, h);
  context.setLineDash([]);
}

// A label on a solid tag of ``colour``, above the point (below it when ``under``), kept inside the canvas.
function tag(context, text, x, y, colour, right, bottom, under) {
  const width = context.measureText(text).width + 8, height = 17;
  const left = Math.max(0, Math.min(x, right - width));
  const top = Math.max(0, Math.min(under ? y : y - height, bottom - height));
  context.fillStyle = colour;
  context.fillRect(left, top, width, height);
  context.fillStyle = "#fff";
  context.fillText(text, left + 4, top + 13);
}

canvas.addEventListener("pointerdown", (event) => {
  if (!state.session || event.button !== 0) return;
  state.keyboardDraft = false;
  state.dragStart = imagePoint(event);
  state.draft = [...state.dragStart, ...state.dragStart];
  canvas.setPointerCapture(event.pointerId);
});
canvas.addEventListener("pointermove", (event) => {
  if (!state.dragStart) return;
  state.draft = [...state.dragStart, ...imagePoint(event)];
  paint();
});
canvas.addEventListener("pointerup", (event) => {
  if (!state.dragStart) return;
  const box = [...state.dragStart, ...imagePoint(event)];
  const moved = Math.hypot(box[2] - box[0], box[3] - box[1]) * (canvas.clientWidth / state.size[0]);
  state.dragStart = null;
  state.draft = null;
  if (moved < 3) {
    paint(); // a click, not a drag
    $("stage-help").textContent = "To mark a region, press on the image, drag across it and release.";
    return;
  }
  addRegion(box);
});
canvas.addEventListener("pointercancel", () => {
  state.dragStart = null;
  state.draft = null;
  paint();
});

// The keyboard: Enter starts a region in the middle, arrows move it, Shift+arrows resize it, Enter keeps it.
canvas.addEventListener("keydown", (event) => {
  if (!state.session) return;
  const [width, height] = state.size;
  if (!state.keyboardDraft) {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    state.keyboardDraft = true;
    state.draft = [width * 0.375, height * 0.375, width * 0.625, height * 0.625];
    announce("Drawing a region: arrows move it, Shift and arrows resize it, Enter keeps it, Escape cancels.");
    paint();
    return;
  }
  const step = Math.max(1, Math.round(Math.max(width, height) / 40));
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  let [x1, y1, x2, y2] = ordered(state.draft);
  if (event.key in moves) {
    const [dx, dy] = moves[event.key];
    if (event.shiftKey) {
      x2 = Math.min(width, Math.max(x1 + step, x2 + dx));
      y2 = Math.min(height, Math.max(y1 + step, y2 + dy));
    } else {
      const mx = Math.min(Math.max(dx, -x1), width - x2), my = Math.min(Math.max(dy, -y1), height - y2);
      x1 += mx, x2 += mx, y1 += my, y2 += my;
    }
    state.draft = [x1, y1, x2, y2];
  } else if (event.key === "Enter" || event.key === " ") {
    state.keyboardDraft = false;
    state.draft = null;
    addRegion([x1, y1, x2, y2]);
  } else if (event.key === "Escape") {
    state.keyboardDraft = false;
    state.draft = null;
    announce("No region drawn.");
  } else {
    return;
  }
  event.preventDefault();
  paint();
});
canvas.addEventListener("blur", () => {
  if (!state.keyboardDraft) return;
  state.keyboardDraft = false;
  state.draft = null;
  paint();
});

// A drawn box becomes a numbered region: the server writes its ReC reference (square999), the question gets a
// marker [region N] that is replaced by that reference when it is sent; the region stays drawn until removed.
async function addRegion(box) {
  const problem = regionProblem(box, state.size);
  if (problem) {
    showError(problem);
    paint();
    return;
  }
  const drawn = clipped(box, state.size);
  try {
    const { text } = await postJson("/api/region", { session: state.session, box: drawn });
    clearError();
    const number = state.nextRegion++;
    const region = { number, box: drawn, text, colour: REGION_COLOURS[(number - 1) % REGION_COLOURS.length] };
    state.regions.push(region);
    renderRegions();
    insertIntoMessage(`[region ${number}]`);
    announce(`Region ${number} marked and added to the question.`);
  } catch (error) {
    showError(error.message);
  }
  paint();
}

function renderRegions() {
  $("regions").textContent = "";
  for (const region of state.regions) {
    const item = regionChip(region);
    const insert = document.createElement("button");
    insert.type = "button";
    insert.className = "region-chip";
    insert.title = `Put [region ${region.number}] into the question`;
    insert.append(...item.childNodes);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove region ${region.number}`);
    remove.onclick = () => {
      state.regions = state.regions.filter((r) => r !== region);
      renderRegions();
      paint();
    };
    insert.onclick = () => insertIntoMessage(`[region ${region.number}]`);
    item.append(insert, remove);
    $("regions").append(item);
  }
}

function regionChip(region) {
  const [x1, y1, x2, y2] = region.box.map(Math.round);
  return chip(`region ${region.number}`, region.colour, `region ${region.number}: pixels ${x1},${y1} to ${x2},${y2}`);
}

function chip(label, colour, title) {
  const element = document.createElement("span");
  element.className = "chip";
  element.style.setProperty("--c", colour);
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  element.append(swatch, label);
  element.title = title;
  return element;
}

function insertIntoMessage(marker) {
  const box = $("message");
  if (!box.value.trim()) {
    box.value = `What is in this ${marker}?`;
  } else {
    const start = box.selectionStart ?? box.value.length, end = box.selectionEnd ?? start;
    const before = box.value.slice(0, start), after = box.value.slice(end);
    const spaced = (before && !/\s$/.test(before) ? " " : "") + marker + (after && !/^\s/.test(after) ? " " : "");
    box.value = before + spaced + after;
    box.selectionStart = box.selectionEnd = before.length + spaced.length;
  }
  if (!box.disabled) box.focus({ preventScroll: true });
}

// The question as sent: each [region N] marker replaced by the region's ReC reference.
function expandRegions(text) {
  return text.replace(MARKER, (marker, number) => {
    const region = state.regions.find((r) => r.number === Number(number));
    if (!region) throw new Error(`There is no region ${number} any more: draw it again, or take ${marker} out of the question.`);
    return region.text;
  });
}

// ---------------------------------------------------------------------------------------------- the conversation

function addTurn(kind) {
  $("log-empty").hidden = true;
  const turn = document.createElement("div");
  turn.className = `turn ${kind}`;
  $("log").append(turn);
  return turn;
}

function scrollLog() {
  $("log").scrollTop = $("log").scrollHeight;
}

// A question as the user reads it: region references as chips, not ReC tags.
function addQuestion(message, mode) {
  const turn = addTurn("user");
  const badge = document.createElement("span");
  badge.className = "mode";
  badge.textContent = { plain: "plain", grounded: "grounded", scene_graph: "scene graph" }[mode];
  turn.append(badge);
  let cursor = 0;
  for (const match of message.matchAll(REFERENCE)) {
    turn.append(message.slice(cursor, match.index));
    const region = state.regions.find((r) => r.text === match[0]);
    turn.append(
      region ? regionChip(region) : chip(match[1], "#6b7280", `${match[1]}: box ${match[2]} (0..999 on the padded square)`),
    );
    cursor = match.index + match[0].length;
  }
  turn.append(message.slice(cursor));
  scrollLog();
  return turn;
}

function setStatus(bubble, kind, text) {
  bubble.dataset.state = kind;
  bubble.textContent = "";
  const status = document.createElement("div");
  status.className = "status";
  const spinner = document.createElement("span");
  spinner.className = "spinner";
  spinner.setAttribute("aria-hidden", "true");
  const words = document.createElement("span");
  words.textContent = text;
  status.append(spinner, words);
  bubble.append(status);
}

// The streamed ReC text made readable while it is incomplete: tags dropped, boxes hidden, a cut tag left out.
function readable(raw) {
  return raw
    .replace(/<box>[\s\S]*?(<\/box>|$)/g, "")
    .replace(/<\/?(ref|pred)>/g, "")
    .replace(/<[^>]*$/, "")
    .replace(/ {2,}/g, " ");
}

$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  ask();
});
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ask();
  }
});
for (const suggestion of document.querySelectorAll(".suggestion")) {
  suggestion.onclick = () => {
    $("message").value = suggestion.textContent;
    document.querySelector(`input[name=mode][value=${suggestion.dataset.mode}]`).checked = true;
    if (!$("message").disabled) $("message").focus();
    else showError("Pick a sample or upload an image first.");
  };
}

async function ask() {
  const typed = $("message").value.trim();
  if (!typed || !state.session || state.busy || state.starting) return;
  let message;
  try {
    message = expandRegions(typed);
  } catch (error) {
    showError(error.message);
    return;
  }
  clearError();
  const mode = document.querySelector("input[name=mode]:checked").value;
  const session = state.session;
  const controller = new AbortController();
  const refocus = document.activeElement === $("message");
  state.busy = true;
  state.abort = controller;
  setEnabled();
  $("message").value = "";
  const question = addQuestion(message, mode);
  const bubble = addTurn("assistant");
  setStatus(bubble, "sending", "Sending the question…");
  scrollLog();
  let outcome = null;
  try {
    const response = await fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session, message, mode }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.error || `the server answered ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", raw = "", body = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const event = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        if (event.event === "queued") {
          const ahead = plural(event.ahead, "question");
          setStatus(bubble, "queued", `Waiting for the model: ${ahead} from other chats ahead of this one.`);
        } else if (event.event === "started") {
          setStatus(bubble, "thinking", "Looking at the image…");
        } else if (event.event === "text") {
          if (!body) {
            bubble.textContent = "";
            bubble.dataset.state = "streaming";
            body = document.createElement("div");
            body.className = "body";
            bubble.append(body);
          }
          raw += event.text;
          body.textContent = readable(raw);
        } else {
          outcome = event;
        }
        scrollLog();
      }
    }
    if (!outcome) throw new Error("The answer stopped before it was complete; ask again.");
    if (outcome.event === "error") throw new Error(outcome.message);
    showAnswer(bubble, outcome);
    scrollLog();
  } catch (error) {
    // The server keeps no half turn: the question goes back into the box to ask again.
    question.remove();
    bubble.remove();
    if (!controller.signal.aborted) {
      if (!$("message").value.trim()) $("message").value = typed;
      showError(error.message);
    }
    if (!$("log").querySelector(".turn")) $("log-empty").hidden = false;
  } finally {
    if (state.abort === controller) state.abort = null;
    state.busy = false;
    setEnabled();
    if (refocus && (document.activeElement === document.body || !document.activeElement)) $("message").focus();
  }
}

function showAnswer(bubble, answer) {
  bubble.dataset.state = "done";
  bubble.textContent = "";
  const body = document.createElement("div");
  body.className = "body";
  for (const segment of answer.segments) {
    if (segment.object === undefined) {
      body.append(segment.text);
    } else {
      const phrase = document.createElement("span");
      phrase.className = "phrase";
      phrase.tabIndex = 0;
      phrase.style.setProperty("--c", segment.color);
      phrase.title = `object #${segment.object}: point at it to see its box`;
      phrase.textContent = segment.text;
      pointsAt(phrase, answer, [segment.object]);
      body.append(phrase);
    }
  }
  if (!answer.segments.length) body.textContent = answer.answer || "(an empty answer)";
  bubble.append(body);
  if (answer.errors.length) {
    const issues = document.createElement("div");
    issues.className = "issues";
    const listed = answer.errors.map((e) => `${e.message} (at character ${e.offset})`).join("; ");
    issues.textContent = `The answer's ReC markup has ${plural(answer.errors.length, "problem")}, shown as plain text: ${listed}`;
    bubble.append(issues);
  }
  const source = document.createElement("details");
  source.className = "source";
  const summary = document.createElement("summary");
  summary.textContent = "ReC source";
  const code = document.createElement("pre");
  code.textContent = answer.answer;
  source.append(summary, code);
  bubble.append(source);

  state.answer = answer;
  state.highlight = null;
  $("boxes-toggle").hidden = !answer.objects.length;
  paint();
  $("views-pane").hidden = false;
  showRelations(answer);
  showGraph(answer);
}

// Pointing at an element (mouse or keyboard focus) highlights objects of its answer on the image.
function pointsAt(element, answer, ids) {
  const on = () => {
    state.highlight = { answer, ids: new Set(ids) };
    paint();
  };
  const off = () => {
    state.highlight = null;
    paint();
  };
  element.addEventListener("mouseenter", on);
  element.addEventListener("focus", on);
  element.addEventListener("mouseleave", off);
  element.addEventListener("blur", off);
}

function showRelations(answer) {
  const pane = $("relations");
  pane.textContent = answer.relations.length ? "" : "The last answer states no relations.";
  pane.classList.toggle("muted", !answer.relations.length);
  for (const relation of answer.relations) {
    const figure = document.createElement("figure");
    figure.className = "relation";
    figure.tabIndex = 0;
    const picture = document.createElement("img");
    picture.src = relation.image;
    picture.alt = relation.label;
    const caption = document.createElement("figcaption");
    caption.textContent = relation.label;
    figure.append(picture, caption);
    pointsAt(figure, answer, [relation.subject, relation.object]);
    pane.append(figure);
  }
}

// The server's drawing of the graph (built and escaped by the server), cropped to what it draws: one node is
// a small picture, not a large empty frame.
function showGraph(answer) {
  const pane = $("graph");
  pane.classList.toggle("muted", !answer.scene_graph_svg);
  if (!answer.scene_graph_svg) {
    pane.textContent = "The last answer names no objects.";
    return;
  }
  pane.innerHTML = answer.scene_graph_svg;
  const svg = pane.querySelector("svg");
  const box = svg.getBBox();
  if (box.width > 0 && box.height > 0) {
    const pad = 14;
    const [x, y, w, h] = [box.x - pad, box.y - pad, box.width + 2 * pad, box.height + 2 * pad];
    const scale = Math.min(1, 360 / h); // a tall graph is shown at most 360 pixels high
    svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
    svg.setAttribute("width", Math.round(w * scale));
    svg.setAttribute("height", Math.round(h * scale));
  }
  svg.setAttribute("role", "img");
  const names = answer.scene_graph.objects.length;
  svg.setAttribute("aria-label", `Scene graph: ${plural(names, "object")}, ${plural(answer.relations.length, "relation")}`);
}

function clearConversation() {
  for (const turn of $("log").querySelectorAll(".turn")) turn.remove();
  $("log-empty").hidden = false;
  $("views-pane").hidden = true;
  $("boxes-toggle").hidden = true;
  $("relations").textContent = "";
  $("graph").textContent = "";
  state.answer = null;
  state.highlight = null;
  renderRegions();
  paint();
}

$("new-chat").onclick = async () => {
  clearError();
  try {
    await postJson("/api/reset", { session: state.session });
    clearConversation();
    announce("New chat: the conversation is forgotten, the image and its regions stay.");
  } catch (error) {
    showError(error.message);
  }
};

$("show-boxes").onchange = paint;
$("picture").addEventListener("load", paint);
window.addEventListener("resize", paint);
setEnabled();
init();
