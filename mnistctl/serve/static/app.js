/* mnistctl serve: the draw-a-digit page.
 *
 * Draw on the board (mouse, pen or finger), get a live answer from POST /v1/predict/pixels, or drop /
 * pick / photograph an image for POST /v1/predict. The drawing is made MNIST-style here, in the page
 * (mnistPixels below): ink cropped, fitted into 20x20 keeping its aspect ratio, placed in 28x28 with its
 * centre of mass on pixel (14, 14), ink 255 on 0 -- the same steps as mnistctl/preprocess/normalize.py.
 */
"use strict";

(function () {
  const SIDE = 28; // MNIST's image side
  const BOX = 20; // the digit's longer side is fitted into this many pixels
  const CENTRE = 14; // where the centre of mass goes, in pixel indices
  const ZERO_BELOW = 0.03; // anti-aliasing residue under this fraction of the peak is exactly 0
  const INK_AT_LEAST = 8; // alpha (0..255) that counts as ink for the bounding box
  const STROKE = 0.085; // marker width as a fraction of the board: ~2.5 px of MNIST's 28 for a full-size digit
  const THROTTLE_MS = 100; // at most one live prediction per this long, and one request in flight
  const TOKEN_KEY = "mnistctl.token";

  /* ---------- MNIST-style preprocessing (pure functions, exposed for tests) ---------- */

  /** Resampling weights from a line of `size` pixels into `count`: output pixel i covers
   * [start + i*step, start + (i+1)*step) of the input. Shrinking averages the area covered (box filter);
   * growing interpolates linearly between pixel centres. Pixels outside the input count as 0.
   * Returns, per output pixel, {first, weights} (a band of consecutive input pixels). */
  function resampling(start, step, size, count) {
    const bands = [];
    for (let i = 0; i < count; i++) {
      const lo = start + step * i;
      const hi = lo + step;
      const weights = [];
      let first;
      if (step >= 1) {
        first = Math.max(0, Math.floor(lo));
        const last = Math.min(size, Math.ceil(hi));
        for (let p = first; p < last; p++) {
          const covered = Math.min(Math.max(hi - p, 0), 1) - Math.min(Math.max(lo - p, 0), 1);
          weights.push(covered / step);
        }
      } else {
        const centre = lo + step / 2 - 0.5; // the output pixel's centre, in input pixel-centre units
        first = Math.max(0, Math.floor(centre));
        const last = Math.min(size, Math.floor(centre) + 2);
        for (let p = first; p < last; p++) weights.push(Math.max(1 - Math.abs(centre - p), 0));
      }
      bands.push({ first, weights });
    }
    return bands;
  }

  /** Ink (0..1 per pixel, row-major, width x height) -> 28x28 rows of ints 0..255, MNIST-style;
   * null when there is no ink. */
  function mnistFromInk(ink, width, height) {
    let top = height;
    let bottom = -1;
    let left = width;
    let right = -1;
    const threshold = INK_AT_LEAST / 255;
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) {
        if (ink[row + x] >= threshold) {
          if (y < top) top = y;
          if (y > bottom) bottom = y;
          if (x < left) left = x;
          if (x > right) right = x;
        }
      }
    }
    if (bottom < 0) return null;
    const h = bottom - top + 1;
    const w = right - left + 1;
    const scale = BOX / Math.max(h, w);

    // Centre of mass of the crop, in continuous coordinates (pixel p spans [p, p + 1)).
    const rowMass = new Float64Array(h);
    const colMass = new Float64Array(w);
    let total = 0;
    for (let y = 0; y < h; y++) {
      const row = (y + top) * width + left;
      for (let x = 0; x < w; x++) {
        const v = ink[row + x];
        rowMass[y] += v;
        colMass[x] += v;
        total += v;
      }
    }
    if (total <= 0) return null;
    const span = SIDE / scale;
    const starts = [rowMass, colMass].map(function (mass) {
      let moment = 0;
      for (let i = 0; i < mass.length; i++) moment += mass[i] * (i + 0.5);
      const start = moment / total - (CENTRE + 0.5) / scale; // where the 28x28 begins, in crop pixels
      // Keep the whole digit inside the 28x28 (a lopsided digit's mass is off its box's centre).
      return mass.length <= span ? Math.min(Math.max(start, mass.length - span), 0) : start;
    });
    const rows = resampling(starts[0], 1 / scale, h, SIDE);
    const cols = resampling(starts[1], 1 / scale, w, SIDE);

    // Separable: first the rows (28 x w), then the columns (28 x 28).
    const middle = new Float64Array(SIDE * w);
    for (let i = 0; i < SIDE; i++) {
      const band = rows[i];
      for (let k = 0; k < band.weights.length; k++) {
        const weight = band.weights[k];
        if (!weight) continue;
        const source = (band.first + k + top) * width + left;
        for (let x = 0; x < w; x++) middle[i * w + x] += weight * ink[source + x];
      }
    }
    const out = new Float64Array(SIDE * SIDE);
    let peak = 0;
    for (let i = 0; i < SIDE; i++) {
      for (let j = 0; j < SIDE; j++) {
        const band = cols[j];
        let sum = 0;
        for (let k = 0; k < band.weights.length; k++) sum += band.weights[k] * middle[i * w + band.first + k];
        out[i * SIDE + j] = sum;
        if (sum > peak) peak = sum;
      }
    }
    if (peak <= 0) return null;
    const pixels = [];
    for (let i = 0; i < SIDE; i++) {
      const line = [];
      for (let j = 0; j < SIDE; j++) {
        const value = (out[i * SIDE + j] / peak) * 255;
        line.push(value >= 255 * ZERO_BELOW ? Math.min(255, Math.round(value)) : 0);
      }
      pixels.push(line);
    }
    return pixels;
  }

  /** A canvas whose ink is its alpha channel (strokes drawn on a transparent board) -> 28x28 or null. */
  function mnistPixels(canvas) {
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const ink = new Float32Array(canvas.width * canvas.height);
    for (let i = 0; i < ink.length; i++) ink[i] = data[i * 4 + 3] / 255;
    return mnistFromInk(ink, canvas.width, canvas.height);
  }

  /** Draw 28x28 rows of 0..255 (white on black) on a 28x28 canvas. */
  function paintPixels(canvas, pixels) {
    const context = canvas.getContext("2d");
    const image = context.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE; i++) {
      for (let j = 0; j < SIDE; j++) {
        const value = pixels ? Math.max(0, Math.min(255, Math.round(pixels[i][j]))) : 0;
        const at = (i * SIDE + j) * 4;
        image.data[at] = image.data[at + 1] = image.data[at + 2] = value;
        image.data[at + 3] = 255;
      }
    }
    context.putImageData(image, 0, 0);
  }

  window.mnistctl = { mnistFromInk, mnistPixels, resampling, SIDE, BOX, CENTRE };

  /* ---------- the page ---------- */

  const board = document.getElementById("board");
  const pad = document.getElementById("pad");
  const photo = document.getElementById("photo");
  const hint = document.getElementById("hint");
  const seen = document.getElementById("seen");
  const seenCaption = document.getElementById("seen-caption");
  const seenOther = document.getElementById("seen-other");
  const seenFigure = seen.closest("figure");
  const answer = document.getElementById("answer");
  const confidence = document.getElementById("confidence");
  const low = document.getElementById("low");
  const sourceLine = document.getElementById("source");
  const bars = document.getElementById("bars");
  const live = document.getElementById("live");
  const message = document.getElementById("message");
  const modelName = document.getElementById("model");
  const modelSelect = document.getElementById("model-select");
  const clearButton = document.getElementById("clear");
  const fileInput = document.getElementById("file");
  const cameraInput = document.getElementById("camera");
  const tokenBox = document.getElementById("token-box");
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");
  const result = document.getElementById("result");
  const ctx = pad.getContext("2d", { willReadFrequently: true });

  // Build the ten bars once: digit label, track, percentage.
  const barRows = [];
  for (let digit = 0; digit < 10; digit++) {
    const row = document.createElement("li");
    row.className = "bar";
    row.dataset.digit = String(digit);
    row.innerHTML =
      '<span class="bar-label">' + digit + "</span>" +
      '<span class="bar-track"><span class="bar-fill"></span></span>' +
      '<span class="bar-value">–</span>';
    bars.appendChild(row);
    barRows.push({
      row,
      fill: row.querySelector(".bar-fill"),
      value: row.querySelector(".bar-value"),
    });
  }

  // Bars named after a model's classes when they are not the digits ("Sneaker"), else 0-9.
  const barsTitle = document.getElementById("bars-title");
  const classesOf = {};
  function labelBars(names) {
    const named = Array.isArray(names) && names.length === 10;
    barRows.forEach(function (bar, digit) {
      bar.row.querySelector(".bar-label").textContent = named ? names[digit] : String(digit);
    });
    bars.classList.toggle("named", named);
    barsTitle.textContent = named ? "Probability of each class" : "Probability of each digit";
  }

  /* --- state --- */
  let generation = 0; // bumped by Clear and uploads: answers to older requests are dropped
  let inFlight = false;
  let dirty = false;
  let timer = null;
  let drawing = null; // {id, x, y} while a pointer is down
  let hasInk = false;
  let lastAnnounced = "";
  let chosenModel = ""; // "" is the server's default model
  let lastFile = null; // the photo on show, asked again when another model is chosen

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (error) {
      return "";
    }
  }

  function headers(extra) {
    const all = Object.assign({ Accept: "application/json" }, extra || {});
    const value = token();
    if (value) all.Authorization = "Bearer " + value;
    return all;
  }

  function setBusy(busy) {
    result.setAttribute("aria-busy", busy ? "true" : "false");
    document.body.dataset.state = busy ? "pending" : "idle";
  }

  function showMessage(text, kind) {
    message.textContent = text || "";
    message.hidden = !text;
    message.dataset.kind = kind || "error";
  }

  function announce(text) {
    if (text === lastAnnounced) return;
    lastAnnounced = text;
    live.textContent = text;
  }

  function percent(p) {
    if (p >= 0.995) return "100%";
    if (p > 0 && p < 0.005) return "<1%";
    return Math.round(p * 100) + "%";
  }

  function probabilitiesOf(row) {
    if (Array.isArray(row.probabilities) && row.probabilities.length === 10) return row.probabilities;
    const probabilities = new Array(10).fill(0);
    (row.top_k || []).forEach(function (pair) {
      probabilities[pair[0]] = pair[1];
    });
    if (typeof row.digit === "number" && !probabilities[row.digit]) probabilities[row.digit] = row.confidence || 0;
    return probabilities;
  }

  function resetResult() {
    answer.textContent = "?";
    answer.classList.add("empty");
    answer.classList.remove("low", "named");
    confidence.textContent = "Draw a digit to see what the network reads.";
    low.hidden = true;
    sourceLine.hidden = true;
    result.dataset.digit = "";
    barRows.forEach(function (bar) {
      bar.fill.style.width = "0%";
      bar.value.textContent = "–";
      bar.row.classList.remove("top");
      bar.row.removeAttribute("aria-current");
    });
    bars.setAttribute("aria-label", "Probabilities: none yet");
    paintPixels(seen, null);
    seen.setAttribute("aria-label", "The 28 by 28 image the model saw: empty");
    seen.dataset.drawn = "false";
    showSecondReading(null);
  }

  /** The second reading an answer weighed (`readings` of /v1/predict), beside the first; none: hidden. The
   * caption follows: two readings, or the one image of the drawing or of the photo showing. */
  function showSecondReading(readings) {
    const two = Array.isArray(readings) && readings.length > 1;
    seenOther.hidden = !two;
    seenFigure.classList.toggle("two", two);
    paintPixels(seenOther, two ? readings[1] : null);
    seenCaption.textContent = two
      ? "Two readings weighed: without and with a stroke that may be the digit's"
      : "The 28×28 image the model saw" + (photo.hidden ? "" : " in the photo");
  }

  function showResult(row, input, model, source) {
    const probabilities = probabilitiesOf(row);
    // A model whose classes are not digits (Fashion-MNIST) answers with a name: show it, smaller.
    const named = typeof row.label === "string" && row.label !== "";
    answer.textContent = named ? row.label : String(row.digit);
    answer.classList.toggle("named", named);
    answer.classList.remove("empty");
    result.dataset.digit = String(row.digit);
    const sure = percent(row.confidence);
    confidence.textContent = sure + " confident";
    sourceLine.textContent = source ? "from " + source : "";
    sourceLine.hidden = !source;
    low.hidden = !row.low_confidence;
    answer.classList.toggle("low", Boolean(row.low_confidence));
    let best = 0;
    probabilities.forEach(function (p, digit) {
      if (p > probabilities[best]) best = digit;
    });
    barRows.forEach(function (bar, digit) {
      const p = Math.max(0, Math.min(1, probabilities[digit] || 0));
      bar.fill.style.width = (p * 100).toFixed(1) + "%";
      bar.value.textContent = percent(p);
      bar.row.classList.toggle("top", digit === best);
      if (digit === best) bar.row.setAttribute("aria-current", "true");
      else bar.row.removeAttribute("aria-current");
    });
    bars.setAttribute(
      "aria-label",
      "Probabilities: " + probabilities.map((p, digit) => digit + " " + percent(p)).join(", "),
    );
    if (input) {
      paintPixels(seen, input);
      seen.dataset.drawn = "true";
      seen.setAttribute("aria-label", "The 28 by 28 image the model saw, white digit on black");
    }
    showSecondReading(row.readings);
    if (model) {
      modelName.textContent = model;
      labelBars(classesOf[model]);
    }
    showMessage("");
    const doubt = row.low_confidence ? ", low confidence" : "";
    return "The network reads " + (named ? row.label : row.digit) + ", " + sure + " confident" + doubt + ".";
  }

  async function errorText(response) {
    if (response.status === 401 || response.status === 403) {
      tokenBox.open = true;
      return token()
        ? "The server refused this access token. Enter the right one below."
        : "This server needs an access token. Enter it below (it is kept for this tab only).";
    }
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (error) {
      /* not JSON: fall through */
    }
    return "The server answered " + response.status + " " + response.statusText + ".";
  }

  /* --- live prediction of the drawing: throttled, one request in flight at a time --- */

  function requestPrediction() {
    dirty = true;
    setBusy(true); // "pending" from the first stroke until the answer to the last one is shown
    if (!timer && !inFlight) timer = setTimeout(flush, THROTTLE_MS);
  }

  // The first result row of a prediction and the model that answered, or null: when a newer drawing or upload has
  // superseded the request, or after showing why there is no answer (`noAnswer` goes where the confidence would).
  async function answerOf(response, mine, noAnswer, announceError) {
    if (mine !== generation) return null;
    if (!response.ok) {
      showMessage(await errorText(response));
      confidence.textContent = noAnswer;
      return null;
    }
    const body = await response.json();
    if (mine !== generation) return null;
    const row = (body.results || [])[0];
    if (!row) throw new Error("the server sent no result");
    if (row.error) {
      showMessage(row.error);
      confidence.textContent = noAnswer;
      if (announceError) announce("No answer: " + row.error);
      return null;
    }
    return { row, model: body.model };
  }

  async function flush() {
    timer = null;
    if (inFlight || !dirty) return;
    dirty = false;
    const pixels = mnistPixels(pad);
    const mine = generation;
    if (!pixels) {
      setBusy(false);
      return;
    }
    paintPixels(seen, pixels);
    seen.dataset.drawn = "true";
    seen.setAttribute("aria-label", "The 28 by 28 image the model saw, white digit on black");
    inFlight = true;
    try {
      const response = await fetch("/v1/predict/pixels", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(chosenModel ? { pixels, model: chosenModel } : { pixels }),
      });
      const answer = await answerOf(response, mine, "No answer yet.", false);
      if (!answer) return;
      const sentence = showResult(answer.row, pixels, answer.model, "");
      if (!drawing && !dirty) announce(sentence); // announce settled answers, not every stroke
    } catch (error) {
      if (mine === generation) showMessage("Could not reach the server: " + error.message);
    } finally {
      inFlight = false;
      if (dirty) {
        timer = setTimeout(flush, THROTTLE_MS);
      } else if (mine === generation) {
        setBusy(false);
      }
    }
  }

  /* --- drawing --- */

  function point(event) {
    const box = pad.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * pad.width,
      y: ((event.clientY - box.top) / box.height) * pad.height,
    };
  }

  function strokeSetup() {
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = pad.width * STROKE;
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
  }

  function startDrawing() {
    if (!photo.hidden) {
      // A photo's answer was showing: drawing starts a fresh board.
      photo.hidden = true;
      URL.revokeObjectURL(photo.src);
      photo.removeAttribute("src");
      showSecondReading(null);
    }
    board.classList.add("inked");
    hint.hidden = true;
    hasInk = true;
  }

  pad.addEventListener("pointerdown", function (event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    startDrawing();
    const p = point(event);
    drawing = { id: event.pointerId, x: p.x, y: p.y };
    strokeSetup();
    ctx.beginPath();
    ctx.arc(p.x, p.y, ctx.lineWidth / 2, 0, Math.PI * 2);
    ctx.fill();
    requestPrediction();
  });

  pad.addEventListener("pointermove", function (event) {
    if (!drawing || event.pointerId !== drawing.id) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    strokeSetup();
    ctx.beginPath();
    ctx.moveTo(drawing.x, drawing.y);
    (events.length ? events : [event]).forEach(function (each) {
      const p = point(each);
      ctx.lineTo(p.x, p.y);
      drawing.x = p.x;
      drawing.y = p.y;
    });
    ctx.stroke();
    requestPrediction();
  });

  function stopDrawing(event) {
    if (!drawing || event.pointerId !== drawing.id) return;
    drawing = null;
    requestPrediction();
  }
  pad.addEventListener("pointerup", stopDrawing);
  pad.addEventListener("pointercancel", stopDrawing);

  function clear() {
    generation++;
    lastFile = null;
    dirty = false;
    if (timer) clearTimeout(timer);
    timer = null;
    ctx.clearRect(0, 0, pad.width, pad.height);
    hasInk = false;
    board.classList.remove("inked");
    hint.hidden = false;
    if (!photo.hidden) URL.revokeObjectURL(photo.src);
    photo.hidden = true;
    photo.removeAttribute("src");
    resetResult(); // (the photo is hidden: the caption is the drawing's)
    showMessage("");
    setBusy(false);
    announce("Cleared. Draw a digit.");
  }

  clearButton.addEventListener("click", clear);
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const typing = target && (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable);
    if (event.key === "Escape" || ((event.key === "c" || event.key === "C") && !typing)) {
      if (typing && event.key === "Escape") return;
      event.preventDefault();
      clear();
    }
  });

  /* --- photos: picker, camera, drop --- */

  async function predictFile(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      showMessage(file.name + " is not an image.");
      return;
    }
    clear();
    lastFile = file;
    const mine = generation;
    hint.hidden = true;
    board.classList.add("inked");
    photo.src = URL.createObjectURL(file);
    photo.alt = "The uploaded photo, " + file.name;
    photo.hidden = false;
    showSecondReading(null); // the caption, now the photo is showing
    confidence.textContent = "Reading " + file.name + "…";
    setBusy(true);
    const form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    try {
      const query = "?show=true&probabilities=true" + (chosenModel ? "&model=" + encodeURIComponent(chosenModel) : "");
      const response = await fetch("/v1/predict" + query, {
        method: "POST",
        headers: headers(),
        body: form,
      });
      const answer = await answerOf(response, mine, "No answer for " + file.name + ".", true);
      if (!answer) return;
      announce(showResult(answer.row, answer.row.input, answer.model, file.name));
    } catch (error) {
      if (mine === generation) showMessage("Could not reach the server: " + error.message);
    } finally {
      if (mine === generation) setBusy(false);
    }
  }

  [fileInput, cameraInput].forEach(function (input) {
    input.addEventListener("change", function () {
      predictFile(input.files && input.files[0]);
      input.value = ""; // the same file picked again is a new upload
    });
  });
  document.getElementById("pick").addEventListener("click", () => fileInput.click());
  document.getElementById("shoot").addEventListener("click", () => cameraInput.click());

  let dragDepth = 0;
  board.addEventListener("dragenter", function (event) {
    event.preventDefault();
    dragDepth++;
    board.classList.add("dropping");
  });
  board.addEventListener("dragover", function (event) {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  board.addEventListener("dragleave", function () {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) board.classList.remove("dropping");
  });
  board.addEventListener("drop", function (event) {
    event.preventDefault();
    dragDepth = 0;
    board.classList.remove("dropping");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) predictFile(files[0]);
  });
  // A file dropped beside the board must not make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  /* --- access token --- */

  tokenInput.value = token();
  tokenForm.addEventListener("submit", function (event) {
    event.preventDefault();
    try {
      if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (error) {
      /* storage disabled: the token lasts until the page reloads */
    }
    showMessage(tokenInput.value ? "Token saved for this tab." : "Token removed.", "info");
    loadModels();
    if (lastFile) predictFile(lastFile);
    else if (hasInk) requestPrediction();
  });

  /* --- the model: the server's default, or one picked from /v1/models when it has several --- */

  async function loadModels() {
    try {
      const health = await fetch("/healthz", { headers: { Accept: "application/json" } });
      const state = await health.json();
      if (state.model) modelName.textContent = state.model;
      if (!health.ok && state.error) showMessage("The server has no model to answer with: " + state.error);
    } catch (error) {
      modelName.textContent = "unknown";
    }
    try {
      const response = await fetch("/v1/models", { headers: headers() });
      if (!response.ok) return; // a token may be needed: the default model still answers once it is given
      const listing = await response.json();
      (listing.models || []).forEach(function (entry) {
        if (entry.model) classesOf[entry.model] = entry.classes;
      });
      labelBars(classesOf[listing.default]);
      const models = (listing.models || []).map((entry) => entry.model).filter(Boolean);
      if (models.length < 2) return;
      modelSelect.replaceChildren();
      (listing.models || []).forEach(function (entry) {
        const option = document.createElement("option");
        option.value = entry.model;
        const aliases = (entry.aliases || []).length ? " @" + entry.aliases.join(" @") : "";
        const accuracy =
          typeof entry.test_accuracy === "number" ? " · " + (entry.test_accuracy * 100).toFixed(1) + "%" : "";
        option.textContent = entry.model + aliases + accuracy;
        option.selected = entry.model === listing.default;
        modelSelect.appendChild(option);
      });
      chosenModel = modelSelect.value;
      modelSelect.hidden = false;
      modelName.hidden = true;
    } catch (error) {
      /* the picker is optional: the default model answers */
    }
  }

  modelSelect.addEventListener("change", function () {
    chosenModel = modelSelect.value;
    labelBars(classesOf[chosenModel]);
    if (lastFile) predictFile(lastFile);
    else if (hasInk) requestPrediction();
  });

  // A phone offers its camera; a desktop only the file picker.
  if (window.matchMedia && window.matchMedia("(pointer: coarse)").matches) {
    document.getElementById("shoot").hidden = false;
  }

  resetResult();
  setBusy(false);
  loadModels();
})();
