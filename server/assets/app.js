// lvc serve: the live parts of the server-rendered pages. No framework;
// every request goes to the JSON API documented in docs/api.md.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="lvc-csrf"]').content;
  const data = JSON.parse(document.getElementById("page-data").textContent || "null") || {};
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const c of children) e.append(c);
    return e;
  };
  const enc = (id) => id.split("/").map(encodeURIComponent).join("/");

  async function api(method, url, body) {
    const init = { method, headers: { "X-LVC-CSRF": csrf } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = { error: text }; }
    if (!response.ok) throw new Error((json && json.error) || response.statusText);
    return json;
  }

  function showTimes() {
    for (const t of document.querySelectorAll(".time[data-unix]")) {
      const s = Number(t.dataset.unix);
      if (s > 0) t.textContent = new Date(s * 1000).toLocaleString();
    }
  }

  // ------------------------------------------------------------ home
  function sortable(table) {
    const heads = table.querySelectorAll("th[data-key]");
    heads.forEach((th, column) => th.addEventListener("click", () => {
      const desc = th.classList.contains("sorted-asc");
      heads.forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
      th.classList.add(desc ? "sorted-desc" : "sorted-asc");
      const key = th.dataset.key, num = th.dataset.type === "num";
      const rows = [...table.tBodies[0].rows].filter((r) => r.dataset.id !== undefined);
      rows.sort((a, b) => {
        const x = a.dataset[key] || "", y = b.dataset[key] || "";
        const c = num ? Number(x) - Number(y) : x.localeCompare(y);
        return desc ? -c : c;
      });
      rows.forEach((r) => table.tBodies[0].append(r));
    }));
  }

  function home() {
    document.querySelectorAll("table.sortable").forEach(sortable);
    $("filter").addEventListener("input", (e) => {
      const words = e.target.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (const row of document.querySelectorAll("table.sortable tbody tr[data-id]")) {
        const text = row.textContent.toLowerCase();
        row.hidden = !words.every((w) => text.includes(w));
      }
    });
  }

  // ------------------------------------------------------------ dataset
  function dataset() {
    let page = 0, total = 0;
    const perPage = 24;
    async function load() {
      const split = $("grid-split").value;
      const label = $("grid-labels").checked;
      const r = await api("GET", `/api/datasets/${enc(data.id)}/records?split=${split}&page=${page}&per_page=${perPage}`);
      total = r.total;
      const pages = Math.max(1, Math.ceil(total / perPage));
      $("grid-page").textContent = `page ${page + 1} of ${pages} (${total} images)`;
      $("grid").replaceChildren(...r.records.map((rec) => el("figure", {},
        el("img", { src: rec.url + (label ? "" : "&label=false"), alt: rec.record, loading: "lazy" }),
        el("figcaption", { textContent: `${rec.record} · #${rec.index}` }))));
    }
    $("grid-split").addEventListener("change", () => { page = 0; load(); });
    $("grid-labels").addEventListener("change", load);
    $("grid-prev").addEventListener("click", () => { if (page > 0) { page--; load(); } });
    $("grid-next").addEventListener("click", () => { if ((page + 1) * perPage < total) { page++; load(); } });
    load().catch((e) => $("grid").replaceChildren(el("p", { className: "error", textContent: e.message })));
  }

  // ------------------------------------------------------------ run
  function chart(target, title, series, exponent) {
    const width = Math.max(320, target.clientWidth || 360);
    const y = exponent ? { size: 70, values: (u, vals) => vals.map((v) => v.toExponential(1)) } : { size: 50 };
    const opts = {
      width, height: 220, title: "",
      scales: { x: { time: false } },
      axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, y],
      series: [{ label: "epoch" }, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, points: { show: true } }))],
    };
    return new uPlot(opts, [[], ...series.map(() => [])], target);
  }

  function run() {
    const history = (data.history || []).slice();
    const charts = {
      loss: chart($("chart-loss"), "Loss", [["train loss", "#2463c7"], ["val loss", "#d9480f"]]),
      dice: chart($("chart-dice"), "Dice", [["val Dice", "#1e7b34"], ["train Dice", "#7048e8"]]),
      lr: chart($("chart-lr"), "LR", [["learning rate", "#495057"]], true),
    };
    const seen = new Set(history.map((e) => e.epoch));
    function draw() {
      const x = history.map((e) => e.epoch);
      const v = (k) => history.map((e) => (e[k] === null || e[k] === undefined ? null : e[k]));
      charts.loss.setData([x, v("train_loss"), v("val_loss")]);
      charts.dice.setData([x, v("val_dice"), v("train_dice")]);
      charts.lr.setData([x, v("lr")]);
      document.body.dataset.epochs = String(history.length);
    }
    const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
    function addRow(e) {
      const tr = el("tr", {});
      tr.dataset.epoch = e.epoch;
      for (const [v, d] of [[e.epoch, 0], [e.train_loss, 4], [e.train_dice, 4], [e.val_loss, 4], [e.val_accuracy, 4], [e.val_dice, 4]]) tr.append(el("td", { textContent: fmt(v, d) }));
      tr.append(el("td", { textContent: e.lr === null ? "–" : Number(e.lr).toExponential(3) }));
      tr.append(el("td", { textContent: fmt(e.seconds, 1) }));
      $("epochs").tBodies[0].append(tr);
    }
    draw();
    const clock = (s) => { s = Math.max(0, Math.round(s)); return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`; };
    const setStatus = (status) => {
      const badge = document.querySelector("h1 .status");
      badge.textContent = status; badge.dataset.status = status; badge.className = `status status-${status}`;
      $("cancel").hidden = !(status === "queued" || status === "running");
    };
    const events = new EventSource(`/api/runs/${enc(data.id)}/events`);
    events.addEventListener("epoch", (m) => {
      const e = JSON.parse(m.data);
      if (seen.has(e.epoch)) return;
      seen.add(e.epoch); history.push(e); addRow(e); draw();
    });
    events.addEventListener("progress", (m) => {
      const p = JSON.parse(m.data);
      setStatus("running");
      const done = ((p.epoch - 1) * p.batches + p.batch) / Math.max(1, p.epochs * p.batches);
      $("progress-fill").style.width = `${(100 * done).toFixed(1)}%`;
      $("progress-text").textContent = `epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches}, loss ${fmt(p.loss, 4)}, lr ${Number(p.lr).toExponential(2)}`;
      $("eta").textContent = p.eta_seconds === null ? "" : `ETA ${clock(p.eta_seconds)}`;
    });
    for (const name of ["done", "failed", "cancelled"]) {
      events.addEventListener(name, (m) => {
        events.close();
        const d = JSON.parse(m.data);
        setStatus(d.status);
        document.body.dataset.final = d.status;
        if (d.status === "done") { $("progress-fill").style.width = "100%"; $("eta").textContent = ""; }
        if (d.error) { $("job-error").hidden = false; $("job-error").textContent = d.error; }
      });
    }
    $("cancel").addEventListener("click", async () => {
      try { await api("POST", `/api/runs/${enc(data.id)}/cancel`); } catch (e) { alert(e.message); }
    });
  }

  // ------------------------------------------------------------ folder picker
  function picker() {
    let box = $("picker");
    if (!box) {
      box = el("div", { id: "picker", className: "picker", hidden: true });
      box.innerHTML = '<div class="picker-head"><span id="picker-dir"></span> <button type="button" id="picker-up">Up</button> <button type="button" id="picker-close">Close</button></div><ul id="picker-list"></ul>';
      document.body.append(box);
    }
    let target = null, kind = "dir", dir = "";
    async function open(d) {
      dir = d;
      const r = await api("GET", `/api/fs?dir=${encodeURIComponent(d)}`);
      $("picker-dir").textContent = "/" + r.dir;
      const items = r.entries.map((e) => {
        const li = el("li", { textContent: (e.kind === "file" ? "📄 " : "📁 ") + e.name + (e.kind === "dataset" || e.kind === "run" ? ` (${e.kind})` : "") });
        li.addEventListener("click", () => {
          if (e.kind === "file") { if (kind === "file") { target.value = e.id; box.hidden = true; } }
          else if (kind === "dir" && e.kind !== "dir") { target.value = e.id; box.hidden = true; }
          else open(e.id);
        });
        return li;
      });
      if (kind === "dir") {
        const here = el("li", { textContent: "✔ choose this folder" });
        here.addEventListener("click", () => { target.value = r.dir; box.hidden = true; });
        items.unshift(here);
      }
      $("picker-list").replaceChildren(...items);
      box.hidden = false;
    }
    $("picker-up").addEventListener("click", () => open(dir.split("/").slice(0, -1).join("/")));
    $("picker-close").addEventListener("click", () => { box.hidden = true; });
    for (const b of document.querySelectorAll("button.pick")) {
      b.addEventListener("click", () => { target = $(b.dataset.for); kind = b.dataset.kind; open(target.value.includes("/") && kind === "dir" ? target.value : ""); });
    }
  }

  // ------------------------------------------------------------ new run
  function newRun() {
    picker();
    const select = $("dataset");
    for (const d of data.datasets || []) select.append(el("option", { value: d, textContent: d }));
    if (data.dataset) select.value = data.dataset;
    const text = $("net-text"), gutter = $("gutter");
    if (data.net_text) text.value = data.net_text;
    if (data.solver) for (const [k, v] of Object.entries(data.solver)) { const f = $(k); if (f) f.value = v; }
    if (data.epochs) $("epochs").value = data.epochs;
    if (data.device) $("device").value = data.device;
    if (data.weights) $("weights").value = data.weights;
    if (data.clone) { $("run").value = data.clone + "-clone"; document.body.dataset.cloned = data.clone; }
    let marks = {};
    function drawGutter() {
      const lines = text.value.split("\n").length;
      const spans = [];
      for (let i = 1; i <= lines; i++) {
        const s = el("span", { textContent: String(i) });
        s.dataset.line = i;
        if (marks[i]) { s.className = `line-${marks[i]}`; s.title = "see the diagnostics below"; }
        spans.push(s);
      }
      gutter.replaceChildren(...spans);
      gutter.scrollTop = text.scrollTop;
    }
    text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });
    let timer = null, generation = 0;
    async function check() {
      const mine = ++generation;
      if (!text.value.trim()) { marks = {}; drawGutter(); $("diagnostics").replaceChildren(); $("check-summary").textContent = ""; return; }
      try {
        const r = await api("POST", "/api/check", { text: text.value, phase: "train" });
        if (mine !== generation) return;
        const f = r.files[0];
        marks = {};
        const items = f.diagnostics.map((d) => {
          const line = d.labels && d.labels.length ? d.labels[0].line : (d.line || null);
          if (line) marks[line] = marks[line] === "error" ? "error" : d.severity;
          const li = el("li", { className: d.severity, textContent: `${line ? `line ${line}: ` : ""}${d.severity}[${d.code}] ${d.message}${d.help ? ` — ${d.help}` : ""}` });
          if (line) li.dataset.line = line;
          return li;
        });
        $("diagnostics").replaceChildren(...items);
        const s = f.summary;
        $("check-summary").textContent = `${s.errors} error(s), ${s.warnings} warning(s), ${s.layers} layer(s)` + (s.outputs.length ? `; outputs ${s.outputs.map((o) => `${o.name} ${o.shape ? o.shape.join("×") : "?"}`).join(", ")}` : "");
        document.body.dataset.checked = String(mine);
        drawGutter();
      } catch (e) { $("check-summary").textContent = e.message; }
    }
    text.addEventListener("input", () => { drawGutter(); clearTimeout(timer); timer = setTimeout(check, 300); });
    drawGutter(); check();
    $("check-weights").addEventListener("click", async () => {
      const body = { weights: $("weights").value, adapt: [...document.querySelectorAll("#adapt-choices input:checked")].map((c) => c.value) };
      if (text.value.trim()) body.net_text = text.value; else body.net = $("net").value;
      $("weights-report").textContent = "checking…";
      try {
        const r = await api("POST", "/api/weights/check", body);
        const rows = r.report.layers.map((l) => el("tr", {}, el("td", { textContent: l.layer }), el("td", { textContent: l.type }), el("td", { textContent: l.status }), el("td", { textContent: l.fix || l.adapted || "" })));
        const table = el("table", { id: "weights-table" }, el("thead", {}, el("tr", {}, el("th", { textContent: "Layer" }), el("th", { textContent: "Type" }), el("th", { textContent: "Status" }), el("th", { textContent: "Fix" }))), el("tbody", {}, ...rows));
        $("weights-report").replaceChildren(el("p", { textContent: r.report.loads ? "The weights load." : "The weights do not load as they are." }), table);
        const chosen = new Set(body.adapt);
        $("adapt-choices").replaceChildren(...[...new Set([...chosen, ...r.choices])].map((c) => el("label", {}, el("input", { type: "checkbox", value: c, checked: chosen.has(c) }), ` --adapt ${c}`)));
      } catch (e) { $("weights-report").replaceChildren(el("p", { className: "error", textContent: e.message })); }
    });
    if (data.adapt && data.adapt.length) $("adapt-choices").replaceChildren(...data.adapt.map((c) => el("label", {}, el("input", { type: "checkbox", value: c, checked: true }), ` --adapt ${c}`)));
    $("run-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const num = (id) => ($(id).value.trim() === "" ? undefined : Number($(id).value));
      const settings = { type: $("type").value, base_lr: num("base_lr"), lr_policy: $("lr_policy").value, gamma: num("gamma"), power: num("power"), stepsize: num("stepsize"), momentum: num("momentum"), weight_decay: num("weight_decay"), max_iter: num("max_iter"), random_seed: num("random_seed") };
      const body = { dataset: select.value, solver_settings: settings, epochs: num("epochs"), device: $("device").value || undefined, adapt: [...document.querySelectorAll("#adapt-choices input:checked")].map((c) => c.value) };
      if (text.value.trim()) body.net_text = text.value; else body.net = $("net").value;
      if ($("weights").value.trim()) body.weights = $("weights").value.trim();
      if ($("run").value.trim()) body.run = $("run").value.trim();
      try {
        const r = await api("POST", "/api/runs", body);
        location.href = `/runs/${enc(r.id)}`;
      } catch (e) { $("form-error").textContent = e.message; }
    });
  }

  // ------------------------------------------------------------ new dataset
  function newDataset() {
    picker();
    for (const k of ["images", "contours", "channels", "split", "val_pct", "seed", "out"]) if (data[k] !== undefined && data[k] !== null) $(k).value = data[k];
    if (data.clone) document.body.dataset.cloned = data.clone;
    $("dataset-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { images: $("images").value, contours: $("contours").value, out: $("out").value, channels: $("channels").value, split: $("split").value, val_pct: Number($("val_pct").value), seed: Number($("seed").value) };
      try { await api("POST", "/api/datasets", body); location.href = "/jobs"; } catch (e) { $("form-error").textContent = e.message; }
    });
  }

  // ------------------------------------------------------------ inference
  function infer() {
    const runSel = $("infer-run"), recSel = $("infer-record");
    for (const r of data.runs || []) runSel.append(el("option", { value: r.id, textContent: r.id }));
    if (data.run) runSel.value = data.run;
    async function loadRecords() {
      const run = (data.runs || []).find((r) => r.id === runSel.value);
      recSel.replaceChildren();
      if (!run || !run.dataset) return;
      try {
        const r = await api("GET", `/api/datasets/${enc(run.dataset)}/records?split=val&per_page=200`);
        for (const rec of r.records) recSel.append(el("option", { value: rec.record, textContent: rec.record }));
        if (data.record) recSel.value = data.record;
      } catch (e) { $("infer-error").textContent = e.message; }
    }
    function show(r) {
      $("infer-result").hidden = false;
      $("layer-image").src = r.image;
      $("layer-mask").src = r.mask;
      $("layer-contour").src = r.prediction_contour;
      $("layer-truth").hidden = !r.truth_contour;
      $("show-truth").disabled = !r.truth_contour;
      if (r.truth_contour) $("layer-truth").src = r.truth_contour;
      $("infer-dice").textContent = r.dice === null || r.dice === undefined ? "no ground truth" : `Dice ${Number(r.dice).toFixed(4)}`;
      document.body.dataset.inferred = r.source;
    }
    async function go(body) {
      $("infer-error").textContent = "";
      document.body.dataset.busy = "1";
      try { show(await api("POST", "/api/infer", body)); } catch (e) { $("infer-error").textContent = e.message; }
      delete document.body.dataset.busy;
    }
    runSel.addEventListener("change", loadRecords);
    $("infer-form").addEventListener("submit", (ev) => { ev.preventDefault(); go({ run: runSel.value, record: recSel.value }); });
    $("infer-upload").addEventListener("click", () => {
      const file = $("infer-file").files[0];
      if (!file) { $("infer-error").textContent = "choose a DICOM file first"; return; }
      const form = new FormData();
      form.append("run", runSel.value); form.append("file", file);
      go(form);
    });
    $("opacity").addEventListener("input", (e) => { $("layer-mask").style.opacity = e.target.value; });
    $("show-mask").addEventListener("change", (e) => { $("layer-mask").hidden = !e.target.checked; });
    $("show-contour").addEventListener("change", (e) => { $("layer-contour").hidden = !e.target.checked; });
    $("show-truth").addEventListener("change", (e) => { $("layer-truth").hidden = !e.target.checked; });
    loadRecords().then(() => { if (data.run && data.record) go({ run: runSel.value, record: recSel.value }); });
  }

  function jobs() {
    for (const b of document.querySelectorAll("button.cancel-job")) {
      b.addEventListener("click", async () => {
        try { await api("POST", `/api/runs/${enc(b.dataset.run)}/cancel`); location.reload(); } catch (e) { alert(e.message); }
      });
    }
  }

  showTimes();
  const pages = { home, dataset, run, "new-run": newRun, "new-dataset": newDataset, infer, jobs };
  const start = pages[document.body.dataset.page];
  if (start) start();
})();
