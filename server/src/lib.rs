//! `lvc serve`: the DIGITS workflow in the browser. A local web server (axum
//! on tokio) over the same library the command line calls: the workspace's
//! datasets and runs are folders under one root, found by their
//! manifest.json / run.json; trainings and imports are jobs running the
//! `lvc` binary itself ([`jobs`]); checks, inspections, overlays and
//! summaries are computed here with `lvc_workflow`, `lvc_data` and
//! `lvc_compiler`. Pages are rendered on the server ([`pages`]), every asset
//! is embedded ([`assets`]), and the JSON API the pages use is documented in
//! docs/api.md ([`api`]).
//!
//! Safety: every path a request names is resolved under the root
//! ([`paths`]); the default bind is loopback, any other needs a token
//! ([`auth`]), and requests with a foreign Host or Origin are refused.

pub mod api;
pub mod assets;
pub mod auth;
pub mod bundle;
pub mod html;
pub mod infer;
pub mod jobs;
pub mod pages;
pub mod paths;
pub mod workspace;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jobs::Jobs;
use paths::Root;
use workspace::SummaryCache;

/// `lvc serve`'s options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub root: PathBuf,
    pub bind: SocketAddr,
    pub token: Option<String>,
    /// Jobs run at once.
    pub jobs: usize,
    /// The `lvc` binary the jobs run (the server's own).
    pub lvc: PathBuf,
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without --token: only loopback addresses are served without one"
    )]
    #[diagnostic(
        code(lvc::serve::token_required),
        help("bind 127.0.0.1 (the default), or pass --token TOKEN (at least 16 characters) so that every request must carry it")
    )]
    TokenRequired(SocketAddr),
    #[error("the token is too short ({0} characters)")]
    #[diagnostic(
        code(lvc::serve::token_short),
        help("use at least 16 characters, e.g. `openssl rand -hex 16`")
    )]
    TokenShort(usize),
    #[error("the workspace root {path} cannot be used: {source}")]
    #[diagnostic(
        code(lvc::serve::root),
        help("pass --root DIR, an existing folder you can write to")
    )]
    Root { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    #[diagnostic(
        code(lvc::serve::bind),
        help("choose another --bind ADDR:PORT (port 0 picks a free one)")
    )]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the server failed: {0}")]
    #[diagnostic(code(lvc::serve::io))]
    Io(#[from] std::io::Error),
}

/// What every handler shares.
pub struct AppState {
    pub root: Root,
    pub jobs: Arc<Jobs>,
    pub summaries: SummaryCache,
    pub auth: auth::Auth,
    pub infer: infer::InferCache,
    pub lvc: PathBuf,
    pub dataset_splits: infer::SplitCache,
}

pub type State = Arc<AppState>;

/// Checks the options, binds, prints `listening on http://ADDR/` and serves
/// until interrupted.
pub fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let token = match &opts.token {
        Some(t) if t.chars().count() < 16 => return Err(ServeError::TokenShort(t.chars().count())),
        t => t.clone(),
    };
    if token.is_none() && !opts.bind.ip().is_loopback() {
        return Err(ServeError::TokenRequired(opts.bind));
    }
    let root = Root::new(&opts.root)
        .map_err(|source| ServeError::Root { path: opts.root.clone(), source })?;
    let jobs = Jobs::load(&root, opts.jobs, opts.lvc.clone())
        .map_err(|source| ServeError::Root { path: opts.root.clone(), source })?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .map_err(|source| ServeError::Bind { addr: opts.bind, source })?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            auth: auth::Auth::new(token, addr),
            jobs: Arc::new(jobs),
            summaries: SummaryCache::default(),
            infer: infer::InferCache::default(),
            dataset_splits: infer::SplitCache::default(),
            lvc: opts.lvc.clone(),
            root: root.clone(),
        });
        tokio::spawn(state.jobs.clone().run(root.clone()));
        let app = api::router(state);
        println!("lvc serve: workspace {}", root.dir().display());
        println!("listening on http://{addr}/");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
