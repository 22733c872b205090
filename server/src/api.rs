//! The routes: the JSON API (docs/api.md) and the pages that use it. Ids
//! are folder paths relative to the root; a run's actions are its id plus
//! `/events`, `/cancel` or `/bundle`.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, State as Extract};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lvc_compiler::ir::CompileOptions;
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;
use lvc_workflow::check::{check_source, CheckReport};
use lvc_workflow::inspect::{human_inspection, Inspection};
use lvc_workflow::run_folder::{Evaluation, EVALUATION_JSON};
use serde::{Deserialize, Serialize};

use crate::jobs::{JobRecord, JobSpec, JobState, Progress, STATE_DIR};
use crate::paths::PathRefusal;
use crate::workspace::{
    read_config, read_manifest, read_metrics, walk, DatasetSummary, RunSummary,
};
use crate::{infer, pages, State};

/// Largest JSON body (a pasted prototxt fits many times).
pub const MAX_JSON_BYTES: usize = 2 << 20;
/// Largest upload (one DICOM slice is well under this).
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// An error answered as `{"error": …}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<PathRefusal> for ApiError {
    fn from(r: PathRefusal) -> ApiError {
        let status = match r {
            PathRefusal::Invalid(_) => StatusCode::BAD_REQUEST,
            PathRefusal::Outside(_) => StatusCode::FORBIDDEN,
            PathRefusal::Missing(_) => StatusCode::NOT_FOUND,
        };
        ApiError(status, r.to_string())
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, message.into())
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/datasets/{*id}", get(pages::dataset))
        .route("/runs/{*id}", get(pages::run))
        .route("/new/run", get(pages::new_run))
        .route("/new/dataset", get(pages::new_dataset))
        .route("/infer", get(pages::infer_page))
        .route("/jobs", get(pages::jobs_page))
        .route("/assets/{name}", get(crate::assets::asset))
        .route("/api/datasets", get(list_datasets).post(create_dataset))
        .route("/api/datasets/{*id}", get(dataset_route))
        .route("/api/runs", get(list_runs).post(create_run))
        .route("/api/runs/{*id}", get(run_route).post(run_action))
        .route("/api/jobs", get(list_jobs))
        .route("/api/check", post(check))
        .route("/api/weights/check", post(weights_check))
        .route("/api/fs", get(browse))
        .route("/api/infer", post(infer_route).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
        .route("/api/infer/{n}/{file}", get(infer_file))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::guard))
        .with_state(state)
}

// ---------------------------------------------------------------- datasets

#[derive(Serialize)]
pub struct DatasetList {
    pub datasets: Vec<DatasetSummary>,
    pub truncated: bool,
}

pub fn datasets(state: &State) -> DatasetList {
    let found = walk(&state.root);
    let datasets =
        found.datasets.iter().filter_map(|d| state.summaries.dataset(&state.root, d)).collect();
    DatasetList { datasets, truncated: found.truncated }
}

async fn list_datasets(Extract(state): Extract<State>) -> Json<DatasetList> {
    Json(tokio::task::block_in_place(|| datasets(&state)))
}

/// A dataset folder id, checked to hold a manifest.
pub fn dataset_dir(state: &State, id: &str) -> ApiResult<PathBuf> {
    let dir = state.root.existing(id)?;
    if !dir.join("manifest.json").is_file() {
        return Err(not_found(format!("`{id}` is not a dataset (no manifest.json)")));
    }
    Ok(dir)
}

#[derive(Deserialize)]
pub struct RecordsQuery {
    pub split: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
    pub index: Option<usize>,
    pub label: Option<bool>,
}

async fn dataset_route(
    Extract(state): Extract<State>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<RecordsQuery>,
) -> ApiResult<Response> {
    tokio::task::block_in_place(|| {
        if let Some(id) = id.strip_suffix("/image") {
            return dataset_image(&state, id, &q);
        }
        if let Some(id) = id.strip_suffix("/records") {
            return Ok(Json(records(&state, id, &q)?).into_response());
        }
        Ok(Json(dataset_detail(&state, &id)?).into_response())
    })
}

pub fn dataset_detail(state: &State, id: &str) -> ApiResult<serde_json::Value> {
    let dir = dataset_dir(state, id)?;
    let manifest =
        read_manifest(&dir).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let inspection = Inspection::of(id, &manifest);
    let text = human_inspection(id, &manifest, &inspection.warnings);
    Ok(
        serde_json::json!({ "id": id, "inspection": inspection, "text": text, "warnings": manifest.warnings }),
    )
}

#[derive(Serialize)]
pub struct RecordPage {
    pub split: String,
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
    pub records: Vec<RecordEntry>,
}

#[derive(Serialize)]
pub struct RecordEntry {
    pub index: usize,
    pub case: String,
    pub image: u32,
    /// `CASE/NNNN`, as `lvc infer --record` takes it.
    pub record: String,
    pub url: String,
}

pub fn records(state: &State, id: &str, q: &RecordsQuery) -> ApiResult<RecordPage> {
    let dir = dataset_dir(state, id)?;
    let manifest =
        read_manifest(&dir).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let split = q.split.clone().unwrap_or_else(|| "val".into());
    let per_page = q.per_page.unwrap_or(24).clamp(1, 200);
    let page = q.page.unwrap_or(0);
    let mut all: Vec<_> = manifest.records.iter().filter(|r| r.split.name() == split).collect();
    all.sort_by_key(|r| r.index);
    let total = all.len();
    let records = all
        .iter()
        .skip(page.saturating_mul(per_page))
        .take(per_page)
        .map(|r| RecordEntry {
            index: r.index,
            case: r.case.clone(),
            image: r.image,
            record: format!("{}/{:04}", r.case, r.image),
            url: format!(
                "/api/datasets/{}/image?split={}&index={}",
                crate::html::url_path(id),
                crate::html::url_query(&split),
                r.index
            ),
        })
        .collect();
    Ok(RecordPage { split, page, per_page, total, records })
}

fn dataset_image(state: &State, id: &str, q: &RecordsQuery) -> ApiResult<Response> {
    let dir = dataset_dir(state, id)?;
    let split = q.split.clone().unwrap_or_else(|| "val".into());
    if !matches!(split.as_str(), "train" | "val") {
        return Err(bad("split is train or val"));
    }
    let data = state
        .dataset_splits
        .get(&dir, &split)
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let png = infer::record_png(&data, q.index.unwrap_or(0), q.label.unwrap_or(true))
        .map_err(not_found)?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=60")], png)
        .into_response())
}

#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    pub images: String,
    pub contours: String,
    pub out: String,
    #[serde(default)]
    pub channels: Option<String>,
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub val_pct: Option<u32>,
    #[serde(default)]
    pub seed: Option<u64>,
}

async fn create_dataset(
    Extract(state): Extract<State>,
    Json(req): Json<NewDataset>,
) -> ApiResult<Response> {
    let images = state.root.existing(&req.images)?;
    let contours = state.root.existing(&req.contours)?;
    if !images.is_dir() || !contours.is_dir() {
        return Err(bad("images and contours name folders"));
    }
    let out = state.root.new_path(&req.out)?;
    if state.jobs.for_target(&req.out).is_some_and(|(j, _)| !j.state.is_final()) {
        return Err(ApiError(StatusCode::CONFLICT, format!("a job already writes `{}`", req.out)));
    }
    let channels = req.channels.unwrap_or_else(|| "L".into());
    if !matches!(channels.as_str(), "L" | "RGB") {
        return Err(bad("channels is L or RGB"));
    }
    let split = req.split.unwrap_or_else(|| "patient".into());
    if !matches!(split.as_str(), "patient" | "image") {
        return Err(bad("split is patient or image"));
    }
    let val_pct = req.val_pct.unwrap_or(10);
    if val_pct > 100 {
        return Err(bad("val_pct is 0..=100"));
    }
    let target = state.root.id_of(&out).ok_or_else(|| bad("out is not under the root"))?;
    let spec = JobSpec::DatasetCreate {
        images: req.images,
        contours: req.contours,
        channels,
        split,
        val_pct,
        seed: req.seed.unwrap_or(1234),
    };
    let job = state.jobs.submit(target.clone(), spec);
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": target, "job": job }))).into_response())
}

// ---------------------------------------------------------------- runs

/// A run as listed: its summary and where its job is.
#[derive(Serialize, Clone, Debug)]
pub struct RunRow {
    pub id: String,
    /// queued, running, done, failed, cancelled; for a run no job of this
    /// server writes, `running` while a command-line `lvc train` holds its
    /// folder's lock, else `done` or `incomplete` (stopped before its last
    /// epoch).
    pub status: String,
    #[serde(flatten)]
    pub summary: Option<RunSummary>,
    pub job: Option<JobRecord>,
    pub progress: Option<Progress>,
    pub queue_position: Option<usize>,
}

fn writing_from_the_command_line(state: &State, id: &str) -> bool {
    state.root.join(id).ok().and_then(|run| lvc_workflow::run_lock::run_writer(&run)).is_some()
}

pub fn run_row(state: &State, id: &str, summary: Option<RunSummary>) -> RunRow {
    let job = state.jobs.for_target(id).filter(|(j, _)| matches!(j.spec, JobSpec::Train { .. }));
    let status = match (&job, &summary) {
        (Some((j, _)), _) => j.state.name().to_string(),
        (None, Some(s)) if s.epochs > 0 && s.epochs_done >= s.epochs => "done".into(),
        // Not ours, not finished, and its folder's writer lock is held: an
        // `lvc train` from the command line is training it now.
        (None, _) if writing_from_the_command_line(state, id) => "running".into(),
        (None, _) => "incomplete".into(),
    };
    let queue_position = job.as_ref().and_then(|(j, _)| {
        (j.state == JobState::Queued).then(|| state.jobs.queue_position(j.id)).flatten()
    });
    let (job, progress) = match job {
        Some((j, p)) => (Some(j), p.filter(|_| status == "running")),
        None => (None, None),
    };
    RunRow { id: id.to_string(), status, summary, job, progress, queue_position }
}

pub fn runs(state: &State) -> Vec<RunRow> {
    let found = walk(&state.root);
    let mut rows: Vec<RunRow> = found
        .runs
        .iter()
        .filter_map(|d| {
            let summary = state.summaries.run(&state.root, d)?;
            Some(run_row(state, &summary.id.clone(), Some(summary)))
        })
        .collect();
    // Trainings queued (or starting) whose run.json is not written yet.
    for job in state.jobs.list() {
        if matches!(job.spec, JobSpec::Train { .. }) && !rows.iter().any(|r| r.id == job.target) {
            let newest = state.jobs.for_target(&job.target).is_some_and(|(j, _)| j.id == job.id);
            if newest {
                rows.push(run_row(state, &job.target.clone(), None));
            }
        }
    }
    rows
}

async fn list_runs(Extract(state): Extract<State>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "runs": tokio::task::block_in_place(|| runs(&state)) }))
}

/// Everything the run page shows.
pub fn run_detail(state: &State, id: &str) -> ApiResult<serde_json::Value> {
    let path = state.root.join(id)?;
    let exists = path.join(lvc_workflow::run_folder::RUN_JSON).is_file();
    if exists {
        state.root.existing(id)?;
    } else if state.jobs.for_target(id).is_none() {
        return Err(not_found(format!("`{id}` is not a run (no run.json) and no job writes it")));
    }
    let summary = exists.then(|| state.summaries.run(&state.root, &path)).flatten();
    let row = run_row(state, id, summary);
    let config = exists.then(|| read_config(&path).ok()).flatten();
    let metrics = read_metrics(&path);
    let evaluation: Option<Evaluation> =
        lvc_fsio::read_regular(&path.join(EVALUATION_JSON), 64 << 20)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(serde_json::json!({
        "id": id,
        "status": row.status,
        "job": row.job,
        "progress": row.progress,
        "queue_position": row.queue_position,
        "summary": row.summary,
        "config": config,
        "metrics": metrics,
        "evaluation": evaluation,
    }))
}

async fn run_route(
    Extract(state): Extract<State>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    if let Some(run) = id.strip_suffix("/events") {
        if state.root.join(run).is_ok_and(|p| p.join(lvc_workflow::run_folder::RUN_JSON).is_file())
            || state.jobs.for_target(run).is_some()
        {
            return Ok(events(state, run.to_string()).into_response());
        }
    }
    if let Some((run, folder)) = id.rsplit_once("/overlay/") {
        return tokio::task::block_in_place(|| overlay(&state, run, folder));
    }
    if let Some(run) = id.strip_suffix("/bundle") {
        if let Ok(path) = state.root.existing(run) {
            if path.join(lvc_workflow::run_folder::RUN_JSON).is_file() {
                return tokio::task::block_in_place(|| bundle(&state, run, &path));
            }
        }
    }
    Ok(Json(tokio::task::block_in_place(|| run_detail(&state, &id))?).into_response())
}

async fn run_action(
    Extract(state): Extract<State>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let Some(run) = id.strip_suffix("/cancel") else {
        return Err(not_found("POST /api/runs/{id}/cancel is the only action on a run"));
    };
    let (job, _) =
        state.jobs.for_target(run).ok_or_else(|| not_found(format!("no job writes `{run}`")))?;
    if state.jobs.cancel(job.id) {
        Ok(Json(serde_json::json!({ "id": run, "job": job.id, "cancelled": true })).into_response())
    } else {
        Err(ApiError(
            StatusCode::CONFLICT,
            format!("the job of `{run}` has already ended ({})", job.state.name()),
        ))
    }
}

/// `GET /api/runs/{id}/overlay/CASE-NNNN`: the overlay `lvc infer
/// --all-val --out RUN/overlays` drew (the run page's best and worst images).
fn overlay(state: &State, run: &str, folder: &str) -> ApiResult<Response> {
    let dir = state.root.existing(run)?;
    let name = lvc_fsio::check_component(folder).map_err(|e| bad(e.to_string()))?;
    if name.starts_with('.') {
        return Err(bad("not an overlay folder"));
    }
    let path = dir
        .join(lvc_workflow::run_folder::OVERLAYS_DIR)
        .join(name)
        .join(lvc_workflow::run_folder::OVERLAY_PNG);
    let real = path.canonicalize().map_err(|_| not_found("no such overlay"))?;
    if !real.starts_with(state.root.dir()) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the overlay leads outside the workspace root".into(),
        ));
    }
    let bytes =
        lvc_fsio::read_regular(&real, 64 << 20).map_err(|_| not_found("no such overlay"))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response())
}

fn bundle(state: &State, id: &str, path: &Path) -> ApiResult<Response> {
    let config = read_config(path).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let stem = id.rsplit('/').next().unwrap_or("run").to_string();
    // run.json is a file like any other: its paths count only where they
    // lead to a file under the root.
    let solver = state.root.recorded(&config.solver);
    let model = config.model.as_deref().and_then(|m| state.root.recorded(m));
    let mut files: Vec<(String, PathBuf)> = vec![
        (format!("{stem}/best.safetensors"), path.join(lvc_workflow::run_folder::BEST_WEIGHTS)),
        (format!("{stem}/run.json"), path.join(lvc_workflow::run_folder::RUN_JSON)),
        (format!("{stem}/metrics.json"), path.join(lvc_workflow::run_folder::METRICS_JSON)),
        (format!("{stem}/evaluation.json"), path.join(EVALUATION_JSON)),
    ];
    if let Some(s) = solver {
        files.push((format!("{stem}/solver.prototxt"), s));
    }
    if let Some(m) = model {
        files.push((format!("{stem}/net.prototxt"), m));
    }
    let refs: Vec<(String, &Path)> = files.iter().map(|(n, p)| (n.clone(), p.as_path())).collect();
    let (tar, _) =
        crate::bundle::tar(&refs).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let disposition = format!(
        "attachment; filename=\"{}.tar\"",
        stem.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_")
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-tar")
        .header(header::CONTENT_DISPOSITION, disposition)
        .body(Body::from(tar))
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The event stream of a run: `progress` at each iteration tick, `epoch`
/// for each epoch in metrics.json (all of them first), then `done`,
/// `failed` or `cancelled` (a run trained from the command line ends with
/// `done` once its last epoch is written). Polls the in-memory job and metrics.json's
/// modification time every 200 ms while a client listens; nothing runs for
/// a run nobody watches.
fn events(
    state: State,
    id: String,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    struct Watch {
        state: State,
        id: String,
        sent_epochs: usize,
        sent_seq: u64,
        stamp: Option<std::time::SystemTime>,
        pending: std::collections::VecDeque<Event>,
        finished: bool,
        first: bool,
    }
    let watch = Watch {
        state,
        id,
        sent_epochs: 0,
        sent_seq: 0,
        stamp: None,
        pending: Default::default(),
        finished: false,
        first: true,
    };
    let stream = futures_util::stream::unfold(watch, |mut w| async move {
        loop {
            if let Some(event) = w.pending.pop_front() {
                return Some((Ok(event), w));
            }
            if w.finished {
                return None;
            }
            if !w.first {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            w.first = false;
            let Ok(path) = w.state.root.join(&w.id) else { return None };
            let metrics_path = path.join(lvc_workflow::run_folder::METRICS_JSON);
            let stamp = metrics_path.metadata().and_then(|m| m.modified()).ok();
            if stamp != w.stamp {
                w.stamp = stamp;
                if let Some(m) = read_metrics(&path) {
                    for record in m.history.iter().skip(w.sent_epochs) {
                        if let Ok(e) = Event::default().event("epoch").json_data(record) {
                            w.pending.push_back(e);
                        }
                    }
                    w.sent_epochs = w.sent_epochs.max(m.history.len());
                }
            }
            let job = w.state.jobs.for_target(&w.id);
            if let Some((j, Some(p))) = &job {
                if j.state == JobState::Running && p.seq != w.sent_seq {
                    w.sent_seq = p.seq;
                    if let Ok(e) = Event::default().event("progress").json_data(p) {
                        w.pending.push_back(e);
                    }
                }
            }
            let summary = w.state.summaries.run(&w.state.root, &path);
            let row = run_row(&w.state, &w.id, summary);
            // An incomplete run no job of ours writes may be training from
            // the command line: its stream stays open for its epochs.
            if matches!(row.status.as_str(), "done" | "failed" | "cancelled")
                && w.pending.is_empty()
            {
                let name = row.status.clone();
                let detail = serde_json::json!({ "status": row.status, "error": row.job.as_ref().and_then(|j| j.error.clone()) });
                if let Ok(e) = Event::default().event(name).json_data(detail) {
                    w.pending.push_back(e);
                }
                w.finished = true;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /api/runs`.
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// A solver file; or `net`/`net_text` with `solver_settings`.
    #[serde(default)]
    pub solver: Option<String>,
    #[serde(default)]
    pub net: Option<String>,
    #[serde(default)]
    pub net_text: Option<String>,
    #[serde(default)]
    pub solver_settings: Option<SolverSettings>,
    pub dataset: String,
    #[serde(default)]
    pub epochs: Option<u32>,
    #[serde(default)]
    pub weights: Option<String>,
    #[serde(default)]
    pub adapt: Vec<String>,
    #[serde(default)]
    pub device: Option<String>,
    /// The run folder to create (default `runs/<net>-<n>`).
    #[serde(default)]
    pub run: Option<String>,
}

/// The solver fields the form sets (the rest keep Caffe's defaults).
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SolverSettings {
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    pub base_lr: f64,
    #[serde(default = "default_policy")]
    pub lr_policy: String,
    #[serde(default)]
    pub gamma: Option<f64>,
    #[serde(default)]
    pub power: Option<f64>,
    #[serde(default)]
    pub stepsize: Option<u32>,
    #[serde(default)]
    pub momentum: Option<f64>,
    #[serde(default)]
    pub weight_decay: Option<f64>,
    #[serde(default = "default_max_iter")]
    pub max_iter: u32,
    #[serde(default)]
    pub random_seed: Option<u32>,
}

fn default_type() -> String {
    "SGD".into()
}
fn default_policy() -> String {
    "fixed".into()
}
fn default_max_iter() -> u32 {
    1000
}

const SOLVER_TYPES: [&str; 6] = ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"];
const LR_POLICIES: [&str; 6] = ["fixed", "step", "exp", "inv", "poly", "sigmoid"];

impl SolverSettings {
    /// The solver file's text (every value checked, numbers formatted here).
    pub fn text(&self, net_file: &str) -> ApiResult<String> {
        if !SOLVER_TYPES.contains(&self.kind.as_str()) {
            return Err(bad(format!("solver type is one of {}", SOLVER_TYPES.join(", "))));
        }
        if !LR_POLICIES.contains(&self.lr_policy.as_str()) {
            return Err(bad(format!("lr_policy is one of {}", LR_POLICIES.join(", "))));
        }
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(bad(format!("{name} must be a finite number")))
            }
        };
        let mut text = format!(
            "# written by lvc serve\nnet: \"{net_file}\"\ntype: \"{}\"\nbase_lr: {}\nlr_policy: \"{}\"\nmax_iter: {}\n",
            self.kind,
            finite("base_lr", self.base_lr)?,
            self.lr_policy,
            self.max_iter
        );
        for (name, value) in [
            ("gamma", self.gamma),
            ("power", self.power),
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
        ] {
            if let Some(v) = value {
                text.push_str(&format!("{name}: {}\n", finite(name, v)?));
            }
        }
        if let Some(s) = self.stepsize {
            text.push_str(&format!("stepsize: {s}\n"));
        }
        if let Some(s) = self.random_seed {
            text.push_str(&format!("random_seed: {s}\n"));
        }
        // The rules `lvc train` applies (a policy's required settings, say)
        // refuse here, before a job starts only to fail.
        let written = lvc_compiler::SourceFile::new("solver.prototxt", text.as_str());
        let (_, diags) = lvc_compiler::load_solver(&written, &Default::default());
        if let Some(d) = diags.iter().find(|d| d.is_error()) {
            let help = d.help.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
            return Err(bad(format!("{}{help}", d.message)));
        }
        Ok(text)
    }
}

/// An `--adapt` fix or a device name: a short token of plain characters.
fn plain_token(what: &str, value: &str) -> ApiResult<()> {
    let ok = !value.is_empty()
        && value.len() <= 200
        && !value.starts_with('-')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "_=.:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad(format!("`{value}` is not a valid {what}")))
    }
}

async fn create_run(
    Extract(state): Extract<State>,
    Json(req): Json<NewRun>,
) -> ApiResult<Response> {
    tokio::task::block_in_place(|| {
        let (id, job) = submit_run(&state, req)?;
        Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id, "job": job }))).into_response())
    })
}

/// Validates a new run, writes its solver (and net) into the new run folder
/// when the form gave settings, and queues it.
pub fn submit_run(state: &State, req: NewRun) -> ApiResult<(String, u64)> {
    dataset_dir(state, &req.dataset)?;
    let device = req.device.clone().unwrap_or_else(|| "cpu".into());
    plain_token("device", &device)?;
    if !(device == "cpu"
        || device == "cuda"
        || device.strip_prefix("cuda:").is_some_and(|n| n.parse::<u32>().is_ok()))
    {
        return Err(bad("device is cpu, cuda or cuda:N"));
    }
    for fix in &req.adapt {
        plain_token("--adapt fix", fix)?;
    }
    if let Some(e) = req.epochs {
        if e == 0 || e > 100_000 {
            return Err(bad("epochs is 1..=100000"));
        }
    }
    if let Some(w) = &req.weights {
        if !state.root.existing(w)?.is_file() {
            return Err(bad(format!("`{w}` is not a file")));
        }
    }
    let stem = req
        .net
        .as_deref()
        .or(req.solver.as_deref())
        .and_then(|p| p.rsplit('/').next())
        .map(|f| f.trim_end_matches(".prototxt").to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "net".into());
    let run_id = match &req.run {
        Some(r) => r.trim_matches('/').to_string(),
        None => {
            let mut n = 1;
            loop {
                let candidate = format!("runs/{stem}-{n}");
                if state.root.new_path(&candidate).is_ok()
                    && state.jobs.for_target(&candidate).is_none()
                {
                    break candidate;
                }
                n += 1;
            }
        }
    };
    let run_dir = state.root.new_path(&run_id)?;
    if state.jobs.for_target(&run_id).is_some_and(|(j, _)| !j.state.is_final()) {
        return Err(ApiError(StatusCode::CONFLICT, format!("a job already writes `{run_id}`")));
    }
    let solver_id = match (&req.solver, &req.solver_settings) {
        (Some(s), None) => {
            if !state.root.existing(s)?.is_file() {
                return Err(bad(format!("`{s}` is not a file")));
            }
            s.clone()
        }
        (None, Some(settings)) => {
            let net_text = match (&req.net, &req.net_text) {
                (Some(n), None) => {
                    let path = state.root.existing(n)?;
                    lvc_fsio::read_regular_to_string(&path, MAX_JSON_BYTES as u64)
                        .map_err(|e| bad(format!("cannot read `{n}`: {e}")))?
                }
                (None, Some(t)) => t.clone(),
                _ => {
                    return Err(bad(
                        "give the net as `net` (a file) or `net_text` (its text), not both",
                    ))
                }
            };
            let solver_text = settings.text("net.prototxt")?;
            std::fs::create_dir_all(&run_dir).map_err(|e| {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot create {run_id}: {e}"))
            })?;
            let write = |name: &str, text: &str| {
                lvc_fsio::write_atomic(&run_dir.join(name), text.as_bytes()).map_err(|e| {
                    ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot write {run_id}/{name}: {e}"),
                    )
                })
            };
            write("net.prototxt", &net_text)?;
            write("solver.prototxt", &solver_text)?;
            format!("{run_id}/solver.prototxt")
        }
        _ => return Err(bad(
            "give either `solver` (a solver file) or `solver_settings` with `net` or `net_text`",
        )),
    };
    let spec = JobSpec::Train {
        solver: solver_id,
        dataset: req.dataset.clone(),
        epochs: req.epochs,
        weights: req.weights.clone(),
        adapt: req.adapt.clone(),
        device,
    };
    let job = state.jobs.submit(run_id.clone(), spec);
    Ok((run_id, job))
}

async fn list_jobs(Extract(state): Extract<State>) -> Json<serde_json::Value> {
    let jobs = state.jobs.list();
    Json(serde_json::json!({ "jobs": jobs }))
}

// ---------------------------------------------------------------- check

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub text: String,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub stage: Vec<String>,
    #[serde(default)]
    pub input_shapes: std::collections::BTreeMap<String, Vec<i64>>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub memory: bool,
}

async fn check(Json(req): Json<CheckRequest>) -> ApiResult<Json<CheckReport>> {
    let phase = match req.phase.as_deref() {
        None | Some("test") | Some("TEST") => Phase::Test,
        Some("train") | Some("TRAIN") => Phase::Train,
        Some(other) => return Err(bad(format!("phase `{other}` is train or test"))),
    };
    let opts = CompileOptions {
        phase,
        stages: req.stage,
        input_shapes: req.input_shapes.into_iter().collect(),
        ..CompileOptions::default()
    };
    let name = req.name.unwrap_or_else(|| "editor.prototxt".into());
    let source = SourceFile::new(name, req.text);
    let file = tokio::task::block_in_place(|| check_source(&source, &opts, req.memory));
    Ok(Json(CheckReport { files: vec![file] }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsCheck {
    #[serde(default)]
    pub net: Option<String>,
    #[serde(default)]
    pub net_text: Option<String>,
    pub weights: String,
    #[serde(default)]
    pub adapt: Vec<String>,
}

/// `lvc weights check --format json` (run as a child: it reads weights with
/// the runtime's loader), plus the `--adapt` fixes its hints suggest.
async fn weights_check(
    Extract(state): Extract<State>,
    Json(req): Json<WeightsCheck>,
) -> ApiResult<Json<serde_json::Value>> {
    let weights = state.root.existing(&req.weights)?;
    for fix in &req.adapt {
        plain_token("--adapt fix", fix)?;
    }
    let model = match (&req.net, &req.net_text) {
        (Some(n), None) => state.root.existing(n)?,
        (None, Some(text)) => {
            let (_, dir) = state
                .infer
                .new_folder(state.root.dir())
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
            let path = dir.join("net.prototxt");
            lvc_fsio::write_atomic(&path, text.as_bytes())
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            path
        }
        _ => return Err(bad("give the net as `net` or `net_text`")),
    };
    let mut command = tokio::process::Command::new(&state.lvc);
    let mut model_arg = std::ffi::OsString::from("--model=");
    model_arg.push(model.as_os_str());
    let mut weights_arg = std::ffi::OsString::from("--weights=");
    weights_arg.push(weights.as_os_str());
    command
        .current_dir(state.root.dir())
        .args(["weights", "check"])
        .arg(model_arg)
        .arg(weights_arg)
        .arg("--format=json");
    for fix in &req.adapt {
        command.arg(format!("--adapt={fix}"));
    }
    let output =
        command.stdin(std::process::Stdio::null()).kill_on_drop(true).output().await.map_err(
            |e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot start lvc: {e}")),
        )?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        )
    })?;
    let choices = adapt_choices(&report);
    Ok(Json(serde_json::json!({ "report": report, "choices": choices })))
}

/// The `--adapt X` fixes named in a weights report's hints, in order, once.
pub fn adapt_choices(report: &serde_json::Value) -> Vec<String> {
    let mut choices: Vec<String> = Vec::new();
    let layers = report.get("layers").and_then(|l| l.as_array()).cloned().unwrap_or_default();
    for layer in layers {
        let Some(fix) = layer.get("fix").and_then(|f| f.as_str()) else { continue };
        let mut rest = fix;
        while let Some(at) = rest.find("--adapt ") {
            rest = &rest[at + "--adapt ".len()..];
            let token: String =
                rest.chars().take_while(|c| !c.is_whitespace() && *c != '`').collect();
            if !token.is_empty() && !choices.contains(&token) {
                choices.push(token);
            }
        }
    }
    choices
}

// ---------------------------------------------------------------- folders

#[derive(Deserialize)]
pub struct BrowseQuery {
    pub dir: Option<String>,
}

/// `GET /api/fs?dir=ID`: the folders and files in one folder under the root
/// (the form's folder pickers). Hidden names and symlinks leading out are
/// not listed.
async fn browse(
    Extract(state): Extract<State>,
    Query(q): Query<BrowseQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = q.dir.unwrap_or_default();
    let dir = if id.trim_matches('/').is_empty() {
        state.root.dir().to_path_buf()
    } else {
        state.root.existing(&id)?
    };
    if !dir.is_dir() {
        return Err(bad(format!("`{id}` is not a folder")));
    }
    let mut entries = Vec::new();
    let listing = std::fs::read_dir(&dir)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    for entry in listing.flatten().take(5000) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(real) = path.canonicalize() else { continue };
        if !real.starts_with(state.root.dir()) {
            continue;
        }
        let Some(entry_id) = state.root.id_of(&path) else { continue };
        let kind = if real.is_dir() {
            if real.join("manifest.json").is_file() {
                "dataset"
            } else if real.join(lvc_workflow::run_folder::RUN_JSON).is_file() {
                "run"
            } else {
                "dir"
            }
        } else {
            "file"
        };
        entries.push(serde_json::json!({ "name": name, "id": entry_id, "kind": kind }));
    }
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(
        serde_json::json!({ "dir": state.root.id_of(&dir).unwrap_or_default(), "entries": entries }),
    ))
}

// ---------------------------------------------------------------- inference

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferRequest {
    pub run: String,
    pub record: String,
}

async fn infer_route(
    Extract(state): Extract<State>,
    request: axum::extract::Request,
) -> ApiResult<Json<infer::InferLayers>> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    use axum::extract::FromRequest;
    if is_multipart {
        let mut form =
            Multipart::from_request(request, &state).await.map_err(|e| bad(e.to_string()))?;
        let mut run = None;
        let mut upload: Option<PathBuf> = None;
        let (n, dir) = state
            .infer
            .new_folder(state.root.dir())
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        while let Some(field) = form.next_field().await.map_err(|e| bad(e.to_string()))? {
            match field.name() {
                Some("run") => run = Some(field.text().await.map_err(|e| bad(e.to_string()))?),
                Some("file") => {
                    let bytes = field.bytes().await.map_err(|e| bad(e.to_string()))?;
                    // The client's file name is not used: the upload is stored under a fixed name.
                    let path = dir.join("upload.dcm");
                    lvc_fsio::write_atomic(&path, &bytes)
                        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                    upload = Some(path);
                }
                _ => return Err(bad("the form has the fields `run` and `file`")),
            }
        }
        let run = run.ok_or_else(|| bad("the form needs `run`"))?;
        let upload = upload.ok_or_else(|| bad("the form needs `file` (a DICOM file)"))?;
        let run_dir = run_dir(&state, &run)?;
        let layers = infer::infer(
            &state.lvc,
            state.root.dir(),
            &run_dir,
            infer::Subject::Dicom(&upload),
            n,
            &dir,
        )
        .await
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
        return Ok(Json(layers));
    }
    let Json(req) = Json::<InferRequest>::from_request(request, &state)
        .await
        .map_err(|e| bad(e.body_text()))?;
    let run_dir = run_dir(&state, &req.run)?;
    let config =
        read_config(&run_dir).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let (case, number) = req.record.split_once('/').ok_or_else(|| bad("record is CASE/NNNN"))?;
    let number: u32 = number.parse().map_err(|_| bad("record is CASE/NNNN"))?;
    let dataset = state
        .root
        .recorded(&config.dataset)
        .ok_or_else(|| bad("the run's dataset is not under the workspace root"))?;
    let manifest =
        read_manifest(&dataset).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let record =
        manifest.records.iter().find(|r| r.case == case && r.image == number).ok_or_else(|| {
            not_found(format!("no record {case}/{number:04} in the run's dataset"))
        })?;
    let split = state
        .dataset_splits
        .get(&dataset, record.split.name())
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    if record.index >= split.len() {
        return Err(not_found("the record is not in its split's tensors"));
    }
    let (n, dir) = state
        .infer
        .new_folder(state.root.dir())
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let subject = infer::Subject::Record {
        record: &req.record,
        pixels: split.image(record.index),
        truth: split.label(record.index),
    };
    let layers = infer::infer(&state.lvc, state.root.dir(), &run_dir, subject, n, &dir)
        .await
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    Ok(Json(layers))
}

fn run_dir(state: &State, id: &str) -> ApiResult<PathBuf> {
    let dir = state.root.existing(id)?;
    if !dir.join(lvc_workflow::run_folder::BEST_WEIGHTS).is_file() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("`{id}` has no best weights yet (train at least one epoch)"),
        ));
    }
    Ok(dir)
}

async fn infer_file(
    Extract(state): Extract<State>,
    UrlPath((n, file)): UrlPath<(u64, String)>,
) -> ApiResult<Response> {
    if !infer::LAYER_FILES.contains(&file.as_str()) {
        return Err(not_found("no such layer"));
    }
    let path = state.root.dir().join(STATE_DIR).join("infer").join(n.to_string()).join(&file);
    let bytes =
        lvc_fsio::read_regular(&path, 64 << 20).map_err(|_| not_found("no such inference"))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapt_choices_come_from_the_hints() {
        let report = serde_json::json!({"layers": [
            {"fix": "the file's filters take 3 input channels, the net gives 1: `--adapt conv1=sum` (or `conv1=mean`) folds them"},
            {"fix": "shape differs: `--adapt reinit=score` keeps the fillers"},
            {"layer": "x"}
        ]});
        assert_eq!(adapt_choices(&report), vec!["conv1=sum", "reinit=score"]);
    }

    #[test]
    fn solver_settings_are_checked_and_written() {
        let s = SolverSettings {
            kind: "Adam".into(),
            base_lr: 0.001,
            lr_policy: "poly".into(),
            gamma: None,
            power: Some(1.0),
            stepsize: None,
            momentum: Some(0.9),
            weight_decay: None,
            max_iter: 100,
            random_seed: Some(1),
        };
        let text = s.text("net.prototxt").unwrap();
        assert!(
            text.contains("type: \"Adam\"")
                && text.contains("power: 1")
                && text.contains("random_seed: 1")
        );
        let bad_type = SolverSettings { kind: "Adam\"\nnet: \"/etc".into(), ..s.clone() };
        assert!(bad_type.text("net.prototxt").is_err());
        let exp_without_gamma =
            SolverSettings { lr_policy: "exp".into(), power: None, ..s.clone() };
        assert!(exp_without_gamma.text("net.prototxt").is_err());
        let nan = SolverSettings { base_lr: f64::NAN, ..s };
        assert!(nan.text("net.prototxt").is_err());
        assert!(plain_token("device", "--force").is_err());
        assert!(plain_token("fix", "conv1=sum").is_ok());
    }
}
