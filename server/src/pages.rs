//! The pages, rendered here from the same functions the API answers with;
//! the script (assets/app.js) adds what is live: sorting and filtering,
//! the curves fed by the event stream, the editor's diagnostics, the folder
//! pickers and the inference sliders.

use std::fmt::Write;

use axum::extract::{Form, Path as UrlPath, Query, State as Extract};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::api::{self, ApiError};
use crate::html::{clock, esc, figure, page, url_path, url_query};
use crate::workspace::{read_config, read_manifest};
use crate::State;

fn error_page(state: &State, err: ApiError) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/\">Home</a></p>",
        err.0.as_u16(),
        esc(&err.1)
    );
    (err.0, Html(page("Error", "error", &state.auth.csrf, &body, &serde_json::Value::Null)))
        .into_response()
}

fn status_badge(status: &str) -> String {
    format!("<span class=\"status status-{0}\" data-status=\"{0}\">{0}</span>", esc(status))
}

/// `Server-Timing: render;dur=MS`: what the page took to build here (read
/// by `make bench-serve`, shown in a browser's network panel).
fn timed(started: std::time::Instant, response: Response) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    ([("server-timing", format!("render;dur={ms:.3}"))], response).into_response()
}

pub async fn home(Extract(state): Extract<State>) -> Response {
    let started = std::time::Instant::now();
    let body = tokio::task::block_in_place(|| home_body(&state));
    let html = page("Home", "home", &state.auth.csrf, &body, &serde_json::Value::Null);
    timed(started, Html(html).into_response())
}

/// The home page's body (also what the render benchmark times).
pub fn home_body(state: &State) -> String {
    let datasets = api::datasets(state);
    let runs = api::runs(state);
    let mut body = String::from("<h1>Workspace</h1><p class=\"muted\">");
    let _ = write!(body, "{}</p>", esc(&state.root.dir().display().to_string()));
    body.push_str("<input id=\"filter\" type=\"search\" placeholder=\"Filter datasets and runs\" aria-label=\"Filter\">");
    body.push_str("<section><h2>Datasets</h2><table class=\"sortable\" id=\"datasets\"><thead><tr><th data-key=\"id\">Dataset</th><th data-key=\"shape\">Images</th><th data-key=\"count\" data-type=\"num\">Count</th><th>Splits</th><th data-key=\"patients\" data-type=\"num\">Patients</th><th data-key=\"modified\" data-type=\"num\">Modified</th><th></th></tr></thead><tbody>");
    for d in &datasets.datasets {
        let [c, h, w] = d.image_shape;
        let splits: Vec<String> = d.splits.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = write!(
            body,
            "<tr data-id=\"{id}\" data-count=\"{n}\" data-patients=\"{p}\" data-modified=\"{m}\"><td><a href=\"/datasets/{url}\">{idh}</a></td><td>{c}×{h}×{w} {ch}</td><td>{n}</td><td>{splits}</td><td>{p}</td><td class=\"time\" data-unix=\"{m}\"></td><td><a class=\"button\" href=\"/new/dataset?clone={q}\">Clone</a> <a class=\"button\" href=\"/new/run?dataset={q}\">New run</a></td></tr>",
            id = esc(&d.id),
            idh = esc(&d.id),
            url = url_path(&d.id),
            q = url_query(&d.id),
            n = d.images,
            p = d.patients,
            m = d.modified,
            ch = esc(&d.channels),
            splits = esc(&splits.join(", ")),
        );
    }
    if datasets.datasets.is_empty() {
        body.push_str("<tr><td colspan=\"7\" class=\"muted\">No dataset under the root yet: <a href=\"/new/dataset\">import one</a> or run <code>lvc dataset create</code>.</td></tr>");
    }
    body.push_str("</tbody></table></section>");
    body.push_str("<section><h2>Runs</h2><table class=\"sortable\" id=\"runs\"><thead><tr><th data-key=\"id\">Run</th><th data-key=\"status\">Status</th><th data-key=\"dice\" data-type=\"num\">Best Dice</th><th data-key=\"epochs\" data-type=\"num\">Epochs</th><th data-key=\"seconds\" data-type=\"num\">Duration</th><th data-key=\"dataset\">Dataset</th><th data-key=\"modified\" data-type=\"num\">Modified</th><th></th></tr></thead><tbody>");
    for r in &runs {
        let s = r.summary.as_ref();
        let dice = s.and_then(|s| s.best_val_dice);
        let epochs = s.map_or(String::from("–"), |s| format!("{}/{}", s.epochs_done, s.epochs));
        let _ = write!(
            body,
            "<tr data-id=\"{id}\" data-status=\"{st}\" data-dice=\"{dv}\" data-epochs=\"{ed}\" data-seconds=\"{sec}\" data-dataset=\"{ds}\" data-modified=\"{m}\"><td><a href=\"/runs/{url}\">{idh}</a></td><td>{badge}</td><td>{dice}</td><td>{epochs}</td><td>{dur}</td><td>{dsh}</td><td class=\"time\" data-unix=\"{m}\"></td><td><a class=\"button\" href=\"/new/run?clone={q}\">Clone</a></td></tr>",
            id = esc(&r.id),
            idh = esc(&r.id),
            url = url_path(&r.id),
            q = url_query(&r.id),
            st = esc(&r.status),
            badge = status_badge(&r.status),
            dv = dice.unwrap_or(-1.0),
            dice = figure(dice, 4),
            ed = s.map_or(0, |s| s.epochs_done),
            sec = s.and_then(|s| s.seconds).unwrap_or(0.0),
            dur = clock(s.and_then(|s| s.seconds)),
            ds = esc(s.map_or("", |s| s.dataset.as_str())),
            dsh = esc(s.map_or("", |s| s.dataset.as_str())),
            m = s.map_or(0.0, |s| s.modified),
        );
    }
    if runs.is_empty() {
        body.push_str("<tr><td colspan=\"8\" class=\"muted\">No run yet: <a href=\"/new/run\">start one</a>.</td></tr>");
    }
    body.push_str("</tbody></table></section>");
    if datasets.truncated {
        body.push_str("<p class=\"warning\">The workspace has more folders than one scan visits (20000); some datasets or runs may be missing. Serve a smaller --root.</p>");
    }
    body
}

pub async fn dataset(Extract(state): Extract<State>, UrlPath(id): UrlPath<String>) -> Response {
    let detail = match tokio::task::block_in_place(|| api::dataset_detail(&state, &id)) {
        Ok(d) => d,
        Err(e) => return error_page(&state, e),
    };
    let text = detail["text"].as_str().unwrap_or_default();
    let mut body = format!(
        "<h1>Dataset <code>{}</code></h1><p><a class=\"button\" href=\"/new/dataset?clone={q}\">Clone</a> <a class=\"button\" href=\"/new/run?dataset={q}\">New run on it</a></p><pre class=\"inspect\">{}</pre>",
        esc(&id),
        esc(text),
        q = url_query(&id)
    );
    body.push_str("<section><h2>Images</h2><div class=\"controls\"><label>Split <select id=\"grid-split\"><option value=\"val\">val</option><option value=\"train\">train</option></select></label> <label><input type=\"checkbox\" id=\"grid-labels\" checked> labels</label> <button id=\"grid-prev\">◀</button> <span id=\"grid-page\"></span> <button id=\"grid-next\">▶</button></div><div id=\"grid\" class=\"grid\"></div></section>");
    let data = serde_json::json!({ "id": id });
    Html(page(&format!("Dataset {id}"), "dataset", &state.auth.csrf, &body, &data)).into_response()
}

pub async fn run(Extract(state): Extract<State>, UrlPath(id): UrlPath<String>) -> Response {
    let started = std::time::Instant::now();
    match tokio::task::block_in_place(|| run_body(&state, &id)) {
        Ok((body, data)) => {
            let html = page(&format!("Run {id}"), "run", &state.auth.csrf, &body, &data);
            timed(started, Html(html).into_response())
        }
        Err(e) => error_page(&state, e),
    }
}

/// The run page's body and its script data (also timed by the benchmark).
pub fn run_body(state: &State, id: &str) -> Result<(String, serde_json::Value), ApiError> {
    let detail = api::run_detail(state, id)?;
    let status = detail["status"].as_str().unwrap_or("incomplete");
    let q = url_query(id);
    let mut body = format!("<h1>Run <code>{}</code> {}</h1>", esc(id), status_badge(status));
    let _ = write!(body, "<p class=\"actions\"><a class=\"button\" href=\"/new/run?clone={q}\">Clone</a> <a class=\"button\" href=\"/infer?run={q}\">Test a record</a> <a class=\"button\" href=\"/api/runs/{u}/bundle\" download>Download weights + prototxt</a> <button id=\"cancel\" data-run=\"{a}\"{hide}>Cancel</button></p>",
        u = url_path(id), a = esc(id), hide = if matches!(status, "queued" | "running") { "" } else { " hidden" });
    if let Some(err) = detail["job"]["error"].as_str() {
        let _ = write!(body, "<pre class=\"error\" id=\"job-error\">{}</pre>", esc(err));
    } else {
        body.push_str("<pre class=\"error\" id=\"job-error\" hidden></pre>");
    }
    if let Some(p) = detail["queue_position"].as_u64() {
        let _ = write!(body, "<p>Queued: position {p} in the <a href=\"/jobs\">queue</a>.</p>");
    }
    body.push_str("<div id=\"progress\" class=\"progress\"><div class=\"bar\"><div id=\"progress-fill\"></div></div><span id=\"progress-text\"></span> <span id=\"eta\"></span></div>");
    body.push_str("<section class=\"charts\"><div><h3>Loss</h3><div id=\"chart-loss\"></div></div><div><h3>Dice</h3><div id=\"chart-dice\"></div></div><div><h3>Learning rate</h3><div id=\"chart-lr\"></div></div></section>");
    body.push_str("<section><h2>Epochs</h2><table id=\"epochs\"><thead><tr><th>Epoch</th><th>Train loss</th><th>Train Dice</th><th>Val loss</th><th>Val accuracy</th><th>Val Dice</th><th>LR</th><th>Seconds</th></tr></thead><tbody>");
    if let Some(history) = detail["metrics"]["history"].as_array() {
        for e in history {
            let f = |k: &str, d: usize| figure(e[k].as_f64(), d);
            let _ = write!(body, "<tr data-epoch=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e["epoch"], e["epoch"], f("train_loss", 4), f("train_dice", 4), f("val_loss", 4), f("val_accuracy", 4), f("val_dice", 4), esc(&format!("{:.3e}", e["lr"].as_f64().unwrap_or(f64::NAN))), f("seconds", 1));
        }
    }
    body.push_str("</tbody></table></section>");
    if let Some(c) = detail["config"].as_object() {
        body.push_str("<section><h2>Configuration</h2><table class=\"config\">");
        for key in [
            "solver",
            "model",
            "dataset",
            "epochs",
            "batch_size",
            "iterations_per_epoch",
            "seed",
            "weights",
            "adapt",
            "device",
            "lvc_version",
        ] {
            if let Some(v) = c.get(key) {
                let shown = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(key), esc(&shown));
            }
        }
        body.push_str("</table></section>");
    }
    let dataset = detail["summary"]["dataset"].as_str().map(str::to_string);
    match detail["evaluation"].as_object() {
        Some(ev) => {
            let _ = write!(body, "<section><h2>Evaluation</h2><p>{} split, {} images: mean Dice <b>{}</b> ± {}, Jaccard {}, weights {}</p>",
                esc(ev["split"].as_str().unwrap_or("")), ev["images"], figure(ev["mean_dice"].as_f64(), 4), figure(ev["sd_dice"].as_f64(), 4), figure(ev["mean_jaccard"].as_f64(), 4), esc(ev["weights"].as_str().unwrap_or("")));
            body.push_str("<h3>Per patient</h3><table id=\"patients\"><thead><tr><th>Case</th><th>Images</th><th>Dice</th></tr></thead><tbody>");
            for p in ev["per_patient"].as_array().into_iter().flatten() {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(p["case"].as_str().unwrap_or("")),
                    p["images"],
                    figure(p["dice"].as_f64(), 4)
                );
            }
            body.push_str("</tbody></table>");
            let mut images: Vec<&serde_json::Value> = ev["per_image"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["dice"].as_f64().is_some_and(f64::is_finite))
                .collect();
            images.sort_by(|a, b| {
                a["dice"].as_f64().unwrap_or(0.0).total_cmp(&b["dice"].as_f64().unwrap_or(0.0))
            });
            let n = images.len().min(4);
            for (title, list) in
                [("Worst images", &images[..n]), ("Best images", &images[images.len() - n..])]
            {
                let _ = write!(body, "<h3>{title}</h3><div class=\"grid extremes\">");
                for i in list {
                    let record = format!(
                        "{}/{:04}",
                        i["case"].as_str().unwrap_or(""),
                        i["image"].as_u64().unwrap_or(0)
                    );
                    // `lvc infer --all-val --out RUN/overlays` drew the
                    // prediction; without it, the image with its label.
                    let folder = format!(
                        "{}-{:04}",
                        i["case"].as_str().unwrap_or(""),
                        i["image"].as_u64().unwrap_or(0)
                    );
                    let overlay = state.root.join(id).ok().map(|run| {
                        run.join(lvc_workflow::run_folder::OVERLAYS_DIR)
                            .join(&folder)
                            .join(lvc_workflow::run_folder::OVERLAY_PNG)
                    });
                    let src = if overlay.is_some_and(|o| o.is_file()) {
                        Some(format!("/api/runs/{}/overlay/{}", url_path(id), url_query(&folder)))
                    } else {
                        dataset.as_ref().map(|ds| {
                            format!(
                                "/api/datasets/{}/image?split={}&index={}",
                                url_path(ds),
                                url_query(ev["split"].as_str().unwrap_or("val")),
                                i["index"]
                            )
                        })
                    };
                    let img = src.map_or(String::new(), |s| {
                        format!(
                            "<img src=\"{}\" alt=\"{}\" loading=\"lazy\">",
                            esc(&s),
                            esc(&record)
                        )
                    });
                    let _ = write!(
                        body,
                        "<figure>{img}<figcaption><a href=\"/infer?run={q}&amp;record={r}\">{rh}</a> Dice {}</figcaption></figure>",
                        figure(i["dice"].as_f64(), 4),
                        r = url_query(&record),
                        rh = esc(&record)
                    );
                }
                body.push_str("</div>");
            }
            body.push_str("</section>");
        }
        None => {
            let _ = write!(body, "<section><h2>Evaluation</h2><p class=\"muted\">Not evaluated yet: <code>lvc evaluate --run {} --out {}/evaluation.json</code> writes the per-patient and per-image scores shown here.</p></section>", esc(id), esc(id));
        }
    }
    let data =
        serde_json::json!({ "id": id, "status": status, "history": detail["metrics"]["history"] });
    Ok((body, data))
}

#[derive(Deserialize, Default)]
pub struct NewRunQuery {
    pub clone: Option<String>,
    pub dataset: Option<String>,
}

/// The `key: value` top-level scalars of a solver text (for prefilling).
fn solver_fields(text: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let mut depth = 0i32;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if depth == 0 {
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim();
                let v = v.trim().trim_matches('"');
                if [
                    "type",
                    "base_lr",
                    "lr_policy",
                    "gamma",
                    "power",
                    "stepsize",
                    "momentum",
                    "weight_decay",
                    "max_iter",
                    "random_seed",
                ]
                .contains(&k)
                {
                    out.insert(k.to_string(), serde_json::Value::String(v.to_string()));
                }
            }
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
    }
    out
}

pub async fn new_run(Extract(state): Extract<State>, Query(q): Query<NewRunQuery>) -> Response {
    let prefill = tokio::task::block_in_place(|| {
        let mut prefill = serde_json::json!({ "dataset": q.dataset });
        if let Some(clone) = &q.clone {
            let dir = state.root.existing(clone).map_err(ApiError::from)?;
            let config =
                read_config(&dir).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
            // Only files under the root are read: a run trained from a net
            // elsewhere clones without its text.
            let inside = |p: &std::path::Path| state.root.recorded(p);
            let net_text = config
                .model
                .as_deref()
                .and_then(inside)
                .and_then(|p| lvc_fsio::read_regular_to_string(&p, 2 << 20).ok());
            let solver_text = config.solver_text.clone().or_else(|| {
                inside(&config.solver)
                    .and_then(|p| lvc_fsio::read_regular_to_string(&p, 2 << 20).ok())
            });
            prefill = serde_json::json!({
                "clone": clone,
                "dataset": state.root.recorded_id(&config.dataset),
                "net_text": net_text,
                "solver": solver_text.as_deref().map(solver_fields),
                "epochs": config.epochs,
                "weights": config.weights.as_deref().and_then(|w| state.root.recorded_id(w)),
                "adapt": config.adapt,
                "device": config.device,
            });
        }
        let datasets: Vec<String> =
            api::datasets(&state).datasets.into_iter().map(|d| d.id).collect();
        prefill["datasets"] = serde_json::json!(datasets);
        Ok::<_, ApiError>(prefill)
    });
    let data = match prefill {
        Ok(d) => d,
        Err(e) => return error_page(&state, e),
    };
    let body = r#"<h1>New run</h1>
<form id="run-form" autocomplete="off">
<fieldset><legend>Data</legend>
<label>Dataset <select name="dataset" id="dataset" required></select></label>
<label>Run folder <input name="run" id="run" placeholder="runs/NAME (default: runs/net-N)"></label>
</fieldset>
<fieldset><legend>Network</legend>
<label>Model file <input name="net" id="net" placeholder="models/demo.prototxt"> <button type="button" class="pick" data-for="net" data-kind="file">Browse</button></label>
<p class="muted">or paste or edit the net here (checked as you type, TRAIN phase):</p>
<div class="editor"><div class="gutter" id="gutter"></div><textarea id="net-text" name="net_text" spellcheck="false" rows="18"></textarea></div>
<div id="check-summary" class="muted"></div>
<ul id="diagnostics" class="diagnostics"></ul>
</fieldset>
<fieldset><legend>Solver</legend>
<label>Type <select name="type" id="type"><option>SGD</option><option>Nesterov</option><option>AdaGrad</option><option>RMSProp</option><option>AdaDelta</option><option selected>Adam</option></select></label>
<label>Base LR <input name="base_lr" id="base_lr" value="0.002" inputmode="decimal"></label>
<label>LR policy <select name="lr_policy" id="lr_policy"><option>fixed</option><option>step</option><option>exp</option><option>inv</option><option selected>poly</option><option>sigmoid</option></select></label>
<label>Gamma <input name="gamma" id="gamma" inputmode="decimal"></label>
<label>Power <input name="power" id="power" value="1" inputmode="decimal"></label>
<label>Step size <input name="stepsize" id="stepsize" inputmode="numeric"></label>
<label>Momentum <input name="momentum" id="momentum" value="0.9" inputmode="decimal"></label>
<label>Weight decay <input name="weight_decay" id="weight_decay" inputmode="decimal"></label>
<label>Max iter <input name="max_iter" id="max_iter" value="1000" inputmode="numeric"></label>
<label>Random seed <input name="random_seed" id="random_seed" value="1" inputmode="numeric"></label>
<label>Epochs <input name="epochs" id="epochs" value="8" inputmode="numeric"></label>
<label>Device <input name="device" id="device" value="cpu"></label>
</fieldset>
<fieldset><legend>Pretrained weights</legend>
<label>Weights file <input name="weights" id="weights" placeholder="(none)"> <button type="button" class="pick" data-for="weights" data-kind="file">Browse</button> <button type="button" id="check-weights">Check</button></label>
<div id="weights-report"></div>
<div id="adapt-choices"></div>
</fieldset>
<p><button type="submit" id="start">Start training</button> <span id="form-error" class="error"></span></p>
</form>"#;
    Html(page("New run", "new-run", &state.auth.csrf, body, &data)).into_response()
}

#[derive(Deserialize, Default)]
pub struct CloneQuery {
    pub clone: Option<String>,
}

pub async fn new_dataset(Extract(state): Extract<State>, Query(q): Query<CloneQuery>) -> Response {
    let mut data = serde_json::json!({});
    if let Some(clone) = &q.clone {
        let found = tokio::task::block_in_place(|| {
            api::dataset_dir(&state, clone).and_then(|d| {
                read_manifest(&d).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))
            })
        });
        match found {
            Ok(m) => {
                let id_of = |p: &str| state.root.recorded_id(std::path::Path::new(p));
                data = serde_json::json!({
                    "clone": clone,
                    "images": id_of(&m.source.images),
                    "contours": id_of(&m.source.contours),
                    "channels": format!("{:?}", m.channels),
                    "split": format!("{:?}", m.split.kind).to_lowercase(),
                    "val_pct": m.split.val_pct,
                    "seed": m.split.seed,
                    "out": format!("{clone}-copy"),
                });
            }
            Err(e) => return error_page(&state, e),
        }
    }
    let body = r#"<h1>New dataset</h1>
<p class="muted">Imports a Sunnybrook-layout study (one folder of IM-*.dcm per case, contour text files) with <code>lvc dataset create</code>, as a job. Folders are chosen under the workspace root.</p>
<form id="dataset-form" autocomplete="off">
<label>Image folder <input name="images" id="images" required> <button type="button" class="pick" data-for="images" data-kind="dir">Browse</button></label>
<label>Contour folder <input name="contours" id="contours" required> <button type="button" class="pick" data-for="contours" data-kind="dir">Browse</button></label>
<label>Dataset folder to create <input name="out" id="out" required placeholder="datasets/NAME"></label>
<label>Channels <select name="channels" id="channels"><option>L</option><option>RGB</option></select></label>
<label>Split <select name="split" id="split"><option value="patient">by patient</option><option value="image">by image (DIGITS)</option></select></label>
<label>Val % <input name="val_pct" id="val_pct" value="10" inputmode="numeric"></label>
<label>Seed <input name="seed" id="seed" value="1234" inputmode="numeric"></label>
<p><button type="submit">Import</button> <span id="form-error" class="error"></span></p>
</form>
<div id="picker" class="picker" hidden><div class="picker-head"><span id="picker-dir"></span> <button type="button" id="picker-up">Up</button> <button type="button" id="picker-close">Close</button></div><ul id="picker-list"></ul></div>"#;
    Html(page("New dataset", "new-dataset", &state.auth.csrf, body, &data)).into_response()
}

#[derive(Deserialize, Default)]
pub struct InferQuery {
    pub run: Option<String>,
    pub record: Option<String>,
}

pub async fn infer_page(Extract(state): Extract<State>, Query(q): Query<InferQuery>) -> Response {
    let runs: Vec<serde_json::Value> = tokio::task::block_in_place(|| {
        api::runs(&state)
            .into_iter()
            .filter(|r| {
                state
                    .root
                    .join(&r.id)
                    .is_ok_and(|p| p.join(lvc_workflow::run_folder::BEST_WEIGHTS).is_file())
            })
            .map(|r| serde_json::json!({ "id": r.id, "dataset": r.summary.map(|s| s.dataset) }))
            .collect()
    });
    let data = serde_json::json!({ "runs": runs, "run": q.run, "record": q.record });
    let body = r#"<h1>Inference</h1>
<form id="infer-form">
<label>Run <select id="infer-run" name="run"></select></label>
<label>Validation record <select id="infer-record" name="record"></select></label>
<button type="submit" id="infer-go">Segment record</button>
<label>or a DICOM file <input type="file" id="infer-file" accept=".dcm,application/dicom"></label>
<button type="button" id="infer-upload">Segment file</button>
<span id="infer-error" class="error"></span>
</form>
<div id="infer-result" hidden>
<div class="controls">
<label>Mask opacity <input type="range" id="opacity" min="0" max="1" step="0.05" value="0.4"></label>
<label><input type="checkbox" id="show-mask" checked> mask</label>
<label><input type="checkbox" id="show-contour" checked> predicted contour</label>
<label><input type="checkbox" id="show-truth" checked> ground truth</label>
<span id="infer-dice"></span>
</div>
<div class="stack" id="stack"><img id="layer-image" alt="image"><img id="layer-mask" alt="prediction" style="opacity:0.4"><img id="layer-contour" alt="predicted contour"><img id="layer-truth" alt="ground-truth contour"></div>
<p class="muted"><span class="swatch pred"></span> prediction <span class="swatch truth"></span> ground truth</p>
</div>"#;
    Html(page("Inference", "infer", &state.auth.csrf, body, &data)).into_response()
}

pub async fn jobs_page(Extract(state): Extract<State>) -> Response {
    let jobs = state.jobs.list();
    let mut body = String::from("<h1>Jobs</h1><p class=\"muted\">Jobs run one at a time by default (<code>lvc serve --jobs N</code>), in the order queued.</p><table id=\"jobs\"><thead><tr><th>#</th><th>Kind</th><th>Writes</th><th>State</th><th>Queued</th><th></th></tr></thead><tbody>");
    for j in jobs.iter().rev() {
        let kind = match j.spec {
            crate::jobs::JobSpec::Train { .. } => "train",
            crate::jobs::JobSpec::DatasetCreate { .. } => "dataset create",
        };
        let link = match j.spec {
            crate::jobs::JobSpec::Train { .. } => format!("/runs/{}", url_path(&j.target)),
            crate::jobs::JobSpec::DatasetCreate { .. } => {
                format!("/datasets/{}", url_path(&j.target))
            }
        };
        let cancel = if j.state.is_final() {
            String::new()
        } else {
            format!("<button class=\"cancel-job\" data-run=\"{}\">Cancel</button>", esc(&j.target))
        };
        let _ = write!(body, "<tr><td>{}</td><td>{kind}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"time\" data-unix=\"{}\"></td><td>{cancel}</td></tr>", j.id, esc(&link), esc(&j.target), status_badge(j.state.name()), j.created);
        if let Some(e) = &j.error {
            let _ = write!(body, "<tr class=\"job-error\"><td></td><td colspan=\"5\"><pre class=\"error\">{}</pre></td></tr>", esc(e));
        }
    }
    body.push_str("</tbody></table>");
    Html(page("Jobs", "jobs", &state.auth.csrf, &body, &serde_json::Value::Null)).into_response()
}

pub async fn login_page(Extract(state): Extract<State>) -> Response {
    let body = "<h1>Log in</h1><form method=\"post\" action=\"/login\"><label>Token <input type=\"password\" name=\"token\" id=\"token\" autofocus></label> <button type=\"submit\">Log in</button></form><p class=\"muted\">The token is the one <code>lvc serve --token</code> was started with.</p>";
    Html(page("Log in", "login", &state.auth.csrf, body, &serde_json::Value::Null)).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub token: String,
}

pub async fn login(Extract(state): Extract<State>, Form(form): Form<LoginForm>) -> Response {
    match state.auth.login_cookie(&form.token) {
        Some(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
        None if state.auth.token.is_none() => Redirect::to("/").into_response(),
        None => {
            let body = "<h1>Log in</h1><p class=\"error\">Wrong token.</p><form method=\"post\" action=\"/login\"><label>Token <input type=\"password\" name=\"token\" id=\"token\" autofocus></label> <button type=\"submit\">Log in</button></form>";
            (
                StatusCode::UNAUTHORIZED,
                Html(page("Log in", "login", &state.auth.csrf, body, &serde_json::Value::Null)),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solver_fields_read_top_level_scalars_only() {
        let f = solver_fields("net: \"a\"\ntype: \"Adam\" # x\nbase_lr: 0.01\ntrain_state { stage: \"x\" base_lr: 9 }\nmax_iter: 5\n");
        assert_eq!(f["type"], "Adam");
        assert_eq!(f["base_lr"], "0.01");
        assert_eq!(f["max_iter"], "5");
        assert!(!f.contains_key("net"));
    }
}
