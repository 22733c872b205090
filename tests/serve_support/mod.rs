//! What the `lvc serve` tests share: a workspace with a phantom dataset and
//! a trained run, a server on a random loopback port (it dies with the test
//! process), a plain HTTP client, and a headless Chromium driven over CDP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cdp;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn lvc() -> &'static str {
    env!("CARGO_BIN_EXE_lvc")
}

fn run(args: &[&str], dir: &Path) {
    let out = Command::new(lvc()).args(args).current_dir(dir).output().expect("run lvc");
    assert!(out.status.success(), "lvc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A workspace: `datasets/ph` (2 phantom patients, one per split),
/// `models/` (the demo net and its solver), `runs/trained` (1 epoch,
/// evaluated, with the overlays of every val image).
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    run(&["phantom", "--out", "phantom", "--cases", "2", "--seed", "1"], root);
    run(
        &[
            "dataset",
            "create",
            "--images",
            "phantom/challenge_training",
            "--contours",
            "phantom/Sunnybrook Cardiac MR Database ContoursPart3",
            "--out",
            "datasets/ph",
            "--seed",
            "1",
            "--val-pct",
            "50",
        ],
        root,
    );
    std::fs::create_dir_all(root.join("models")).unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for f in ["demo.prototxt", "demo_solver.prototxt"] {
        std::fs::copy(models.join(f), root.join("models").join(f)).unwrap();
    }
    run(
        &[
            "train",
            "--solver",
            "models/demo_solver.prototxt",
            "--dataset",
            "datasets/ph",
            "--out",
            "runs/trained",
            "--epochs",
            "1",
        ],
        root,
    );
    run(&["evaluate", "--run", "runs/trained", "--out", "runs/trained/evaluation.json"], root);
    run(&["infer", "--run", "runs/trained", "--all-val", "--out", "runs/trained/overlays"], root);
    dir
}

/// A running `lvc serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub root: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `lvc serve --root ROOT --bind 127.0.0.1:0 EXTRA…` and waits for
/// its `listening on` line.
pub fn start(root: &Path, extra: &[&str]) -> Server {
    let mut command = Command::new(lvc());
    command
        .args(["serve", "--root"])
        .arg(root)
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // The server (and so its jobs) dies with the test process.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = spawn_from_a_lasting_thread(command);
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("lvc serve printed its address").unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim_end_matches('/').to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base, root: root.to_path_buf() }
}

/// Spawns `command` from a thread that lives as long as the test process:
/// PR_SET_PDEATHSIG fires when the spawning *thread* ends, and a test's own
/// thread ends with the test.
pub fn spawn_from_a_lasting_thread(mut command: Command) -> Child {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(command.spawn());
        loop {
            std::thread::park();
        }
    });
    receive.recv().unwrap().expect("start the process")
}

/// The workspace and server shared by the tests of one binary.
pub fn shared() -> &'static (tempfile::TempDir, Server) {
    static SHARED: OnceLock<(tempfile::TempDir, Server)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let ws = workspace();
        let server = start(ws.path(), &[]);
        (ws, server)
    })
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub content_type: String,
    pub server_timing: Option<String>,
}

impl Answer {
    /// A `Server-Timing: render;dur=MS` header with a number.
    pub fn headers_timing_ok(&self) -> bool {
        self.server_timing
            .as_deref()
            .and_then(|t| t.strip_prefix("render;dur="))
            .is_some_and(|ms| ms.parse::<f64>().is_ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = result.expect("HTTP request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let server_timing =
        response.headers().get("server-timing").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap_or_default();
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        content_type,
        server_timing,
    }
}

pub fn get(url: &str) -> Answer {
    answer(agent().get(url).call())
}

pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    answer(request.call())
}

pub fn post_json(url: &str, body: &serde_json::Value) -> Answer {
    post_with(url, &[("content-type", "application/json")], body.to_string().as_bytes())
}

pub fn post_with(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut request = agent().post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    answer(request.send(body))
}

/// Polls `f` until it gives `Some`, failing after `seconds`.
pub fn wait_for<T>(seconds: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(seconds),
            "timed out after {seconds} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Debian's `chromium` (installed by `make chromium`, which .ci/run calls).
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Reads a run's event stream to its end: (event name, data) pairs.
pub fn events(base: &str, run: &str) -> Vec<(String, serde_json::Value)> {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(300)))
        .build()
        .into();
    let response = agent.get(&format!("{base}/api/runs/{run}/events")).call().unwrap();
    assert!(response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let mut out = Vec::new();
    let mut name = String::new();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((name.clone(), serde_json::from_str(d).unwrap()));
            if matches!(name.as_str(), "done" | "failed" | "cancelled") {
                break;
            }
        }
    }
    out
}
