//! lvc-lsp: `lvc lsp`, a language server over stdio for Caffe `.prototxt`
//! nets: the whole compiler's diagnostics as you type, blob shapes on hover,
//! go to the layer producing a bottom, references and rename of a blob, and
//! formatting through `lvc fmt`.
//!
//! The message loop only stores texts and answers requests; compiling runs
//! on a worker thread that takes the newest text of each document (edits
//! typed while it works are coalesced), so the editor never waits on a
//! compile. Logs go to stderr; stdout carries the protocol alone.

mod analysis;
mod text;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Formatting, GotoDefinition, HoverRequest, References, Rename, Request as _,
};
use lsp_types::{
    DiagnosticRelatedInformation, GotoDefinitionResponse, Hover, HoverContents, Location,
    MarkupContent, MarkupKind, OneOf, PublishDiagnosticsParams, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};
use lvc_compiler::ir::CompileOptions;
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;

pub use analysis::{Analysis, MAX_ANALYSED_BYTES};

/// Why the server stopped other than by `exit`.
#[derive(Debug)]
pub struct LspError(pub String);

impl std::fmt::Display for LspError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LspError {}

/// How nets are compiled: from the client's `initializationOptions`
/// (`{"phase": "train"|"test", "stages": [..], "input_shapes": {"data": [1,3,224,224]}}`);
/// by default what `lvc check` does (TEST, no stages).
fn compile_options(init: Option<&serde_json::Value>) -> CompileOptions {
    let mut options = CompileOptions::default();
    let Some(init) = init else { return options };
    if init.get("phase").and_then(|p| p.as_str()).is_some_and(|p| p.eq_ignore_ascii_case("train")) {
        options.phase = Phase::Train;
    }
    if let Some(stages) = init.get("stages").and_then(|s| s.as_array()) {
        options.stages = stages.iter().filter_map(|s| s.as_str().map(str::to_string)).collect();
    }
    if let Some(shapes) = init.get("input_shapes").and_then(|s| s.as_object()) {
        for (name, dims) in shapes {
            let dims: Option<Vec<i64>> =
                dims.as_array().map(|d| d.iter().filter_map(|x| x.as_i64()).collect());
            if let Some(dims) = dims {
                options.input_shapes.push((name.clone(), dims));
            }
        }
    }
    options
}

/// Serves one client on stdin/stdout until it says `exit`.
pub fn serve_stdio() -> Result<(), LspError> {
    let (connection, threads) = Connection::stdio();
    serve(connection)?;
    threads.join().map_err(|e| LspError(format!("stdio: {e}")))
}

/// Serves one client on `connection` (stdio, or a pair in memory for tests).
pub fn serve(connection: Connection) -> Result<(), LspError> {
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..Default::default()
    };
    let capabilities =
        serde_json::to_value(capabilities).map_err(|e| LspError(format!("capabilities: {e}")))?;
    let init =
        connection.initialize(capabilities).map_err(|e| LspError(format!("initialize: {e}")))?;
    let options = compile_options(init.get("initializationOptions"));
    let state = Arc::new(Shared::default());
    let (work, queue) = crossbeam_channel::unbounded::<Job>();
    let worker = {
        let state = state.clone();
        let sender = connection.sender.clone();
        let options = options.clone();
        std::thread::spawn(move || analyse_forever(&queue, &state, &sender, &options))
    };
    let mut server = Server { connection: &connection, state, work, options };
    let result = server.run();
    drop(server);
    let _ = worker.join();
    result
}

/// A document to (re)analyse.
struct Job {
    uri: Uri,
    version: i32,
    text: Arc<String>,
}

#[derive(Default)]
struct Shared {
    /// The newest text of each open document.
    documents: Mutex<HashMap<String, (i32, Arc<String>)>>,
    /// The newest finished analysis of each.
    analyses: Mutex<HashMap<String, Arc<Analysis>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The worker: compiles the newest version of each document it is handed,
/// skipping versions already replaced, and publishes their diagnostics.
fn analyse_forever(
    queue: &Receiver<Job>,
    state: &Shared,
    sender: &Sender<Message>,
    options: &CompileOptions,
) {
    while let Ok(first) = queue.recv() {
        // A short pause lets a burst of keystrokes arrive; then only the
        // last version of each document is compiled.
        std::thread::sleep(Duration::from_millis(15));
        let mut latest: HashMap<String, Job> = HashMap::new();
        latest.insert(first.uri.as_str().to_string(), first);
        for job in queue.try_iter() {
            latest.insert(job.uri.as_str().to_string(), job);
        }
        for (key, job) in latest {
            let current = lock(&state.documents).get(&key).map(|(v, _)| *v);
            if current != Some(job.version) {
                continue; // closed, or a newer version is queued
            }
            let analysis = Arc::new(Analysis::of(
                &display_path(&job.uri),
                job.text.to_string(),
                job.version,
                options,
            ));
            let diagnostics = lsp_diagnostics(&job.uri, &analysis);
            lock(&state.analyses).insert(key, analysis);
            let params =
                PublishDiagnosticsParams { uri: job.uri, diagnostics, version: Some(job.version) };
            let note = Notification::new(PublishDiagnostics::METHOD.to_string(), params);
            if sender.send(note.into()).is_err() {
                return;
            }
        }
    }
}

fn display_path(uri: &Uri) -> String {
    let text = uri.as_str();
    text.strip_prefix("file://").unwrap_or(text).to_string()
}

fn lsp_diagnostics(uri: &Uri, analysis: &Analysis) -> Vec<lsp_types::Diagnostic> {
    let text = &analysis.text;
    let range = |span| analysis.lines.range(text, span);
    analysis
        .diagnostics
        .iter()
        .map(|d| {
            let primary = d.labels.first();
            let mut message = d.message.clone();
            if let Some(label) = primary.filter(|l| !l.text.is_empty()) {
                message.push_str(&format!(" ({})", label.text));
            }
            if let Some(help) = &d.help {
                message.push_str(&format!("\nhelp: {help}"));
            }
            let related: Vec<DiagnosticRelatedInformation> = d
                .labels
                .iter()
                .skip(1)
                .map(|l| DiagnosticRelatedInformation {
                    location: Location::new(uri.clone(), range(l.span)),
                    message: l.text.clone(),
                })
                .collect();
            lsp_types::Diagnostic {
                range: primary.map_or_else(Default::default, |l| range(l.span)),
                severity: Some(analysis::severity(d.severity)),
                code: Some(lsp_types::NumberOrString::String(d.code.to_string())),
                source: Some("lvc".into()),
                message,
                related_information: (!related.is_empty()).then_some(related),
                ..Default::default()
            }
        })
        .collect()
}

struct Server<'c> {
    connection: &'c Connection,
    state: Arc<Shared>,
    work: Sender<Job>,
    options: CompileOptions,
}

impl Server<'_> {
    fn run(&mut self) -> Result<(), LspError> {
        for message in &self.connection.receiver {
            match message {
                Message::Request(request) => {
                    if self
                        .connection
                        .handle_shutdown(&request)
                        .map_err(|e| LspError(format!("shutdown: {e}")))?
                    {
                        return Ok(());
                    }
                    let response = self.answer(request);
                    self.connection
                        .sender
                        .send(response.into())
                        .map_err(|e| LspError(format!("send: {e}")))?;
                }
                Message::Notification(note) => self.notified(note),
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    fn notified(&mut self, note: Notification) {
        match note.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(note.params)
                {
                    let d = p.text_document;
                    self.store(d.uri, d.version, d.text);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(note.params)
                {
                    // Full sync: the last change holds the whole text.
                    if let Some(change) = p.content_changes.into_iter().last() {
                        self.store(p.text_document.uri, p.text_document.version, change.text);
                    }
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(note.params)
                {
                    let key = p.text_document.uri.as_str().to_string();
                    lock(&self.state.documents).remove(&key);
                    lock(&self.state.analyses).remove(&key);
                }
            }
            _ => {}
        }
    }

    fn store(&mut self, uri: Uri, version: i32, text: String) {
        let text = Arc::new(text);
        lock(&self.state.documents).insert(uri.as_str().to_string(), (version, text.clone()));
        let _ = self.work.send(Job { uri, version, text });
    }

    /// The analysis of the document's current text: the worker's when it is
    /// up to date, else made now (a request right after an edit).
    fn analysis(&self, uri: &Uri) -> Option<Arc<Analysis>> {
        let key = uri.as_str().to_string();
        let (version, text) = lock(&self.state.documents).get(&key).cloned()?;
        if let Some(done) = lock(&self.state.analyses).get(&key).filter(|a| a.version == version) {
            return Some(done.clone());
        }
        Some(Arc::new(Analysis::of(&display_path(uri), text.to_string(), version, &self.options)))
    }

    fn answer(&self, request: Request) -> Response {
        let id = request.id.clone();
        let result = match request.method.as_str() {
            HoverRequest::METHOD => self.hover(request),
            GotoDefinition::METHOD => self.definition(request),
            References::METHOD => self.references(request),
            Rename::METHOD => self.rename(request),
            Formatting::METHOD => self.formatting(request),
            _ => Err((
                ErrorCode::MethodNotFound,
                format!("lvc lsp does not answer {}", request.method),
            )),
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }
    }

    fn hover(&self, request: Request) -> Answer {
        let p: lsp_types::HoverParams = params(request)?;
        let at = p.text_document_position_params;
        let Some(a) = self.analysis(&at.text_document.uri) else {
            return Ok(serde_json::Value::Null);
        };
        let offset = a.lines.offset(&a.text, at.position);
        let hover = a.hover(offset).map(|(span, value)| Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value }),
            range: Some(a.lines.range(&a.text, span)),
        });
        to_value(hover)
    }

    fn definition(&self, request: Request) -> Answer {
        let p: lsp_types::GotoDefinitionParams = params(request)?;
        let at = p.text_document_position_params;
        let uri = at.text_document.uri;
        let Some(a) = self.analysis(&uri) else { return Ok(serde_json::Value::Null) };
        let offset = a.lines.offset(&a.text, at.position);
        let found = a.definition(offset).map(|span| {
            GotoDefinitionResponse::Scalar(Location::new(uri.clone(), a.lines.range(&a.text, span)))
        });
        to_value(found)
    }

    fn references(&self, request: Request) -> Answer {
        let p: lsp_types::ReferenceParams = params(request)?;
        let at = p.text_document_position;
        let uri = at.text_document.uri;
        let Some(a) = self.analysis(&uri) else { return Ok(serde_json::Value::Null) };
        let offset = a.lines.offset(&a.text, at.position);
        let found: Vec<Location> = a
            .references(offset)
            .into_iter()
            .map(|span| Location::new(uri.clone(), a.lines.range(&a.text, span)))
            .collect();
        to_value(found)
    }

    fn rename(&self, request: Request) -> Answer {
        let p: lsp_types::RenameParams = params(request)?;
        let at = p.text_document_position;
        let uri = at.text_document.uri;
        let new_name = p.new_name;
        if new_name.is_empty() || new_name.chars().any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return Err((ErrorCode::InvalidParams, format!("`{new_name}` cannot be a blob name (no quotes, backslashes or control characters)")));
        }
        let Some(a) = self.analysis(&uri) else { return Ok(serde_json::Value::Null) };
        let offset = a.lines.offset(&a.text, at.position);
        let spans = a.references(offset);
        if spans.is_empty() {
            return Err((
                ErrorCode::InvalidParams,
                "rename works on the value of a top: or bottom:".into(),
            ));
        }
        let edits: Vec<TextEdit> = spans
            .into_iter()
            .map(|span| TextEdit::new(a.lines.range(&a.text, span), format!("\"{new_name}\"")))
            .collect();
        // lsp-types keys WorkspaceEdit by Uri, whose cached parse clippy
        // counts as interior mutability; the key is never changed here.
        #[allow(clippy::mutable_key_type)]
        let mut changes = HashMap::new();
        changes.insert(uri, edits);
        to_value(WorkspaceEdit { changes: Some(changes), ..Default::default() })
    }

    fn formatting(&self, request: Request) -> Answer {
        let p: lsp_types::DocumentFormattingParams = params(request)?;
        let key = p.text_document.uri.as_str().to_string();
        let Some((_, text)) = lock(&self.state.documents).get(&key).cloned() else {
            return Ok(serde_json::Value::Null);
        };
        let indent = usize::try_from(p.options.tab_size).unwrap_or(2).clamp(0, 16);
        let layout = lvc_workflow::fmt::Layout {
            options: lvc_grammar::FormatOptions { indent },
            upgrade: false,
        };
        let source = SourceFile::new(display_path(&p.text_document.uri), text.as_str());
        // Text that does not parse is left as it is; its diagnostics say why.
        let Ok(formatted) = lvc_workflow::fmt::format_source(&source, &layout) else {
            return Ok(serde_json::Value::Null);
        };
        if formatted == *text {
            return to_value(Vec::<TextEdit>::new());
        }
        let lines = text::LineIndex::new(&text);
        let whole = lines.range(&text, lvc_grammar::Span::new(0, text.len()));
        to_value(vec![TextEdit::new(whole, formatted)])
    }
}

type Answer = Result<serde_json::Value, (ErrorCode, String)>;

fn params<P: serde::de::DeserializeOwned>(request: Request) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(request.params)
        .map_err(|e| (ErrorCode::InvalidParams, format!("{}: {e}", request.method)))
}

fn to_value<T: serde::Serialize>(value: T) -> Answer {
    serde_json::to_value(value).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}
