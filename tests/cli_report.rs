//! `lvc report`: curves.png and report.html from a synthetic run folder
//! (tests/fixtures/report_run: metrics, run record, evaluation, overlays —
//! no training), and the page as headless Chromium renders it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const LVC: &str = env!("CARGO_BIN_EXE_lvc");

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report_run")
}

/// A run folder holding the fixture's metrics.json and run.json; the
/// evaluation and overlays are passed from the fixture by flag.
fn run_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["metrics.json", "run.json"] {
        std::fs::copy(fixture().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn lvc_report(run: &Path, extra: &[&Path]) -> Output {
    let mut cmd = Command::new(LVC);
    cmd.arg("report").arg("--run").arg(run);
    if let [evaluation, overlays] = extra {
        cmd.arg("--evaluation").arg(evaluation).arg("--overlays").arg(overlays);
    }
    cmd.output().unwrap()
}

/// A full report of the fixture in a temporary run folder.
fn full_report() -> tempfile::TempDir {
    let dir = run_folder();
    let out =
        lvc_report(dir.path(), &[&fixture().join("evaluation.json"), &fixture().join("overlays")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

#[test]
fn report_writes_curves_and_a_self_contained_page() {
    let dir = run_folder();
    let out =
        lvc_report(dir.path(), &[&fixture().join("evaluation.json"), &fixture().join("overlays")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("curves.png") && stdout.contains("report.html"), "{stdout}");
    assert!(out.stderr.is_empty(), "nothing missing: {}", String::from_utf8_lossy(&out.stderr));
    let curves = image::open(dir.path().join("curves.png")).unwrap();
    assert_eq!((curves.width(), curves.height()), (1200, 600));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(
        html.matches("src=\"data:image/png;base64,").count(),
        3,
        "curves, best and worst overlay inlined"
    );
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "no external fetches");
}

#[test]
fn missing_parts_are_warned_about_and_named_on_the_page() {
    let dir = run_folder();
    let out = lvc_report(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: no evaluation") && stderr.contains("warning: no overlays"),
        "{stderr}"
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("No evaluation data") && html.contains("No overlays"));
}

#[test]
fn a_folder_without_metrics_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = lvc_report(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lvc::report::read") && stderr.contains("metrics.json"), "{stderr}");
    assert!(!dir.path().join("report.html").exists());
}

#[test]
fn help_has_examples() {
    let out = Command::new(LVC).args(["report", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Examples:") && text.contains("lvc report --run runs/demo"), "{text}");
}

/// Debian's `chromium` (installed by `make chromium`, which .ci/run calls).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium on `page` with `mode` (`--screenshot=…` or
/// `--dump-dom`), killed after a minute. Its output goes to files: the DOM
/// is larger than a pipe's buffer, and nothing reads a pipe while we wait.
fn headless(browser: &Path, page: &Path, mode: &str) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (profile.path().join("stdout"), profile.path().join("stderr"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::from(std::fs::File::create(&stdout_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: std::fs::read(stdout_path).unwrap(),
        stderr: std::fs::read(stderr_path).unwrap(),
    }
}

#[test]
fn the_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the_page_renders_in_headless_chromium: chromium is not installed (run `make chromium`, which needs root for apt-get)");
        return;
    };
    let dir = full_report();
    let page = dir.path().join("report.html");

    let dom = headless(&browser, &page, "--dump-dom");
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let table = dom_text
        .split("id=\"per-patient\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or("");
    assert_eq!(table.matches("<tr>").count(), 3, "a header and two patients:\n{table}");
    assert!(table.contains("SC-HF-I-01") && table.contains("SC-N-03"));
    for id in ["summary", "curves", "evaluation", "overlays"] {
        assert!(dom_text.contains(&format!("<section id=\"{id}\">")), "section {id}");
    }
    assert_eq!(dom_text.matches("<img ").count(), 3);

    let shot = dir.path().join("screenshot.png");
    let out = headless(&browser, &page, &format!("--screenshot={}", shot.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let picture = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), (1200, 2000));
    let count = |near: [u8; 3]| {
        picture.pixels().filter(|p| p.0.iter().zip(near).all(|(&a, b)| a.abs_diff(b) < 30)).count()
    };
    let ink = picture.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count();
    assert!(ink > 20_000, "the screenshot is nearly blank ({ink} non-white pixels)");
    // The curves (orange val line, blue train line) and the overlays' green
    // ground-truth contours made it onto the screen: the images decoded.
    assert!(count([213, 94, 0]) > 500, "val curve: {} pixels", count([213, 94, 0]));
    assert!(count([0, 114, 178]) > 500, "train curve: {} pixels", count([0, 114, 178]));
    assert!(count([40, 220, 40]) > 500, "overlay contours: {} pixels", count([40, 220, 40]));
}
