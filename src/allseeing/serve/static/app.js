// The demo page: sessions, region drawing, streamed answers and their views. Talks to serve/demo.py's API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, size: null, maxUpload: 0, busy: false, drawn: null, dragStart: null };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

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
  const ready = state.session !== null && !state.busy;
  for (const id of ["message", "send", "new-chat"]) $(id).disabled = !ready;
}

async function init() {
  try {
    const config = await api("/api/config");
    state.maxUpload = config.max_upload_bytes;
    for (const name of config.samples) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      $("sample").append(option);
    }
  } catch (error) {
    showError(`cannot reach the demo server: ${error.message}`);
  }
}

// A failed start (a bad upload) shows the error and keeps the current image and chat.
async function startSession(request) {
  clearError();
  try {
    const data = await request();
    state.session = data.session;
    state.size = [data.width, data.height];
    $("picture").src = data.image;
    $("stage").hidden = false;
    $("hint").textContent = `${data.width} x ${data.height} pixels. Drag on the image to point at a region.`;
    clearConversation();
  } catch (error) {
    showError(error.message);
  }
  setEnabled();
}

$("use-sample").onclick = () =>
  startSession(() => api(`/api/session?sample=${encodeURIComponent($("sample").value)}`, { method: "POST" }));

$("upload").onchange = () => {
  const file = $("upload").files[0];
  $("upload").value = ""; // the same file can be chosen again
  if (!file) return;
  if (file.size > state.maxUpload) {
    const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
    showError(`${file.name} is ${mib(file.size)} MiB, over the upload limit of ${mib(state.maxUpload)} MiB`);
    return;
  }
  startSession(() => api("/api/session", { method: "POST", body: file }));
};

// Region drawing: the box is kept in image pixels; the server writes the ReC reference (square999).
const canvas = $("drawing");

function imagePoint(event) {
  const rect = canvas.getBoundingClientRect();
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  return [
    clamp(((event.clientX - rect.left) / rect.width) * state.size[0], state.size[0]),
    clamp(((event.clientY - rect.top) / rect.height) * state.size[1], state.size[1]),
  ];
}

function paintRegion() {
  canvas.width = canvas.clientWidth;
  canvas.height = canvas.clientHeight;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.drawn) return;
  const sx = canvas.width / state.size[0], sy = canvas.height / state.size[1];
  const [x1, y1, x2, y2] = state.drawn;
  context.lineWidth = 3;
  context.strokeStyle = "#ff2d55";
  context.strokeRect(Math.min(x1, x2) * sx, Math.min(y1, y2) * sy, Math.abs(x2 - x1) * sx, Math.abs(y2 - y1) * sy);
}

canvas.addEventListener("pointerdown", (event) => {
  if (!state.session) return;
  state.dragStart = imagePoint(event);
  canvas.setPointerCapture(event.pointerId);
});
canvas.addEventListener("pointermove", (event) => {
  if (!state.dragStart) return;
  state.drawn = [...state.dragStart, ...imagePoint(event)];
  paintRegion();
});
canvas.addEventListener("pointerup", async (event) => {
  if (!state.dragStart) return;
  state.drawn = [...state.dragStart, ...imagePoint(event)];
  state.dragStart = null;
  paintRegion();
  try {
    const { text } = await postJson("/api/region", { session: state.session, box: state.drawn });
    insertIntoMessage(text);
  } catch (error) {
    showError(error.message);
  }
});

function insertIntoMessage(reference) {
  const box = $("message");
  if (!box.value.trim()) {
    box.value = `What is in this ${reference}?`;
  } else {
    const start = box.selectionStart ?? box.value.length, end = box.selectionEnd ?? start;
    box.value = box.value.slice(0, start) + reference + box.value.slice(end);
  }
  box.focus();
}

// Asking: the answer streams into its bubble, then is replaced by its coloured, parsed form.
function addTurn(kind, text) {
  const turn = document.createElement("div");
  turn.className = `turn ${kind}`;
  turn.textContent = text;
  $("log").append(turn);
  $("log").scrollTop = $("log").scrollHeight;
  return turn;
}

$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  ask();
});
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    ask();
  }
});

async function ask() {
  const message = $("message").value.trim();
  if (!message || !state.session || state.busy) return;
  clearError();
  state.busy = true;
  setEnabled();
  const mode = document.querySelector("input[name=mode]:checked").value;
  const question = addTurn("user", message);
  const bubble = addTurn("assistant streaming", "");
  let outcome = null;
  try {
    const response = await fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session: state.session, message, mode }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.error || `the server answered ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const event = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        if (event.event === "text") bubble.textContent += event.text;
        else outcome = event;
      }
    }
    if (!outcome) throw new Error("the answer stopped before it was complete");
    if (outcome.event === "error") throw new Error(outcome.message);
    showAnswer(bubble, outcome);
    $("message").value = "";
    state.drawn = null;
    paintRegion();
  } catch (error) {
    // The server keeps no half turn; the question stays in the box to ask again.
    question.remove();
    bubble.remove();
    showError(error.message);
  } finally {
    state.busy = false;
    setEnabled();
  }
}

function showAnswer(bubble, answer) {
  bubble.classList.remove("streaming");
  bubble.textContent = "";
  for (const segment of answer.segments) {
    if (segment.object === undefined) {
      bubble.append(segment.text);
    } else {
      const phrase = document.createElement("span");
      phrase.className = "phrase";
      phrase.style.background = segment.color;
      phrase.title = `object #${segment.object}`;
      phrase.textContent = segment.text;
      bubble.append(phrase);
    }
  }
  if (!answer.segments.length) bubble.textContent = answer.answer || "(empty answer)";
  if (answer.errors.length) {
    const issues = document.createElement("div");
    issues.className = "issues";
    const listed = answer.errors.map((e) => `${e.message} (at character ${e.offset})`).join("; ");
    issues.textContent = `The answer's ReC markup has ${answer.errors.length} problem(s), shown as plain text: ${listed}`;
    bubble.append(issues);
  }
  const source = document.createElement("details");
  source.innerHTML = "<summary>ReC source</summary>";
  source.append(answer.answer);
  bubble.append(source);

  $("overlay").hidden = !answer.overlay;
  if (answer.overlay) $("overlay").src = answer.overlay;
  $("graph").classList.toggle("muted", !answer.scene_graph_svg);
  if (answer.scene_graph_svg) $("graph").innerHTML = answer.scene_graph_svg; // built and escaped by the server
  else $("graph").textContent = "The last answer names no objects.";
  $("relations").textContent = answer.relations.length ? "" : "The last answer states no relations.";
  for (const relation of answer.relations) {
    const figure = document.createElement("figure");
    figure.className = "relation";
    const picture = document.createElement("img");
    picture.src = relation.image;
    picture.alt = relation.label;
    const caption = document.createElement("figcaption");
    caption.textContent = relation.label;
    figure.append(picture, caption);
    $("relations").append(figure);
  }
}

function clearConversation() {
  $("log").textContent = "";
  $("overlay").hidden = true;
  $("graph").textContent = "No relations yet.";
  $("relations").textContent = "";
  state.drawn = null;
  paintRegion();
}

$("new-chat").onclick = async () => {
  clearError();
  try {
    await postJson("/api/reset", { session: state.session });
    clearConversation();
  } catch (error) {
    showError(error.message);
  }
};

$("picture").addEventListener("load", paintRegion);
window.addEventListener("resize", paintRegion);
init();
