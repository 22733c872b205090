//! `lvc serve`'s JSON API driven with a plain HTTP client: listing, the
//! check and inference routes, a training streamed to the end, cancel and a
//! restart that resumes, and the guards (traversal, Host, Origin, token,
//! CSRF, body size).

mod serve_support;

use serve_support::events;

use serde_json::json;
use serve_support::{
    get, get_with, post_json, post_with, shared, start, wait_for, workspace, Answer,
};

fn url(path: &str) -> String {
    format!("{}{path}", shared().1.base)
}

#[test]
fn the_workspace_is_listed_with_status_and_figures() {
    let datasets = get(&url("/api/datasets")).json();
    let ds = &datasets["datasets"][0];
    assert_eq!(ds["id"], "datasets/ph");
    assert_eq!(ds["image_shape"], json!([1, 256, 256]));
    assert_eq!(ds["patients"], 2);
    let runs = get(&url("/api/runs")).json();
    let run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "runs/trained")
        .expect("runs/trained listed");
    assert_eq!(run["status"], "done");
    assert_eq!(run["epochs_done"], 1);
    assert!(run["best_val_dice"].as_f64().is_some_and(|d| (0.0..=1.0).contains(&d)), "{run}");
    let detail = get(&url("/api/runs/runs/trained")).json();
    assert_eq!(detail["metrics"]["history"].as_array().unwrap().len(), 1);
    assert_eq!(detail["config"]["epochs"], 1);
    let inspect = get(&url("/api/datasets/datasets/ph")).json();
    assert_eq!(inspect["inspection"]["classes"], json!(["background", "left ventricle"]));
    assert!(inspect["text"].as_str().unwrap().contains("val cases"));
    let page = get(&url("/api/datasets/datasets/ph/records?split=val&per_page=5")).json();
    assert_eq!(page["records"].as_array().unwrap().len(), 5);
    let image = get(&format!("{}{}", shared().1.base, page["records"][0]["url"].as_str().unwrap()));
    assert_eq!((image.status, image.content_type.as_str()), (200, "image/png"));
    let home = get(&url("/"));
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("datasets/ph") && home.body.contains("runs/trained"),
        "{}",
        home.body
    );
}

#[test]
fn paths_leading_out_of_the_root_are_refused() {
    let (ws, server) = shared();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    std::fs::write(outside.path().join("manifest.json"), "{}").unwrap();
    let link = ws.path().join("escape");
    if !link.exists() {
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    }
    let base = &server.base;
    for path in [
        "/api/datasets/..%2F..%2Fetc",
        "/api/datasets/%2e%2e/%2e%2e/etc/passwd",
        "/api/datasets/escape",
        "/api/datasets/%2Fetc",
        "/api/runs/..%2Fescape",
        "/api/runs/escape/bundle",
        "/api/fs?dir=..",
        "/api/fs?dir=%2Fetc",
        "/api/fs?dir=escape",
        "/api/fs?dir=.lvc-serve",
        "/api/infer/1/..%2F..%2F..%2Fescape%2Fsecret.txt",
        "/assets/..%2F..%2FCargo.toml",
        "/datasets/..%2F..%2Fetc",
    ] {
        let a = get(&format!("{base}{path}"));
        assert!((400..500).contains(&a.status), "{path}: {} {}", a.status, a.body);
        assert!(
            !a.body.contains("top secret") && !a.body.contains("root:x:"),
            "{path}: {}",
            a.body
        );
    }
    let listing = get(&format!("{base}/api/fs")).json();
    assert!(
        !listing["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "escape" || e["name"] == ".lvc-serve"),
        "{listing}"
    );
    for body in [
        json!({"solver": "models/demo_solver.prototxt", "dataset": "../datasets/ph"}),
        json!({"solver": "/etc/passwd", "dataset": "datasets/ph"}),
        json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "run": "../../tmp/evil"}),
        json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "run": "escape/run"}),
        json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "weights": "escape/secret.txt"}),
        json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "device": "--force"}),
        json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "adapt": ["--out=/tmp/x"]}),
        json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "shell": "rm -rf /"}),
    ] {
        let a = post_json(&format!("{base}/api/runs"), &body);
        assert!((400..500).contains(&a.status), "{body}: {} {}", a.status, a.body);
    }
    let a = post_json(
        &format!("{base}/api/datasets"),
        &json!({"images": "escape", "contours": "phantom", "out": "datasets/x"}),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(!outside.path().join("run").exists() && !ws.path().join("datasets/x").exists());
}

#[test]
fn check_answers_lvc_checks_json_document_at_the_line() {
    let text = "name: \"t\"\nlayer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }\nlayer { name: \"c\" type: \"Convolution\" bottom: \"dta\" top: \"c\" convolution_param { num_output: 2 kernel_size: 3 } }\n";
    let a = post_json(&url("/api/check"), &json!({"text": text, "phase": "test"}));
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = a.json();
    let file = &doc["files"][0];
    assert_eq!(file["ok"], false);
    let d = &file["diagnostics"][0];
    assert_eq!(d["line"], 3, "{doc}");
    assert_eq!(d["code"], "lvc::graph::unknown_bottom");
    // The same document as the command line's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("editor.prototxt"), text).unwrap();
    let out = std::process::Command::new(serve_support::lvc())
        .args(["check", "--format", "json", "editor.prototxt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["files"][0]["diagnostics"], file["diagnostics"]);
    assert_eq!(cli["files"][0]["summary"], file["summary"]);
    let clean = post_json(&url("/api/check"), &json!({"text": "layer { name: \"d\" type: \"Input\" top: \"d\" input_param { shape { dim: 1 } } }"})).json();
    assert_eq!(clean["files"][0]["ok"], true);
    let bad_phase = post_json(&url("/api/check"), &json!({"text": "", "phase": "sideways"}));
    assert_eq!(bad_phase.status, 400);
}

#[test]
fn bodies_are_size_limited_and_foreign_hosts_and_origins_refused() {
    // A body past the 2 MiB limit is answered 413 once the limit is read
    // (sent by hand: a client writing all 3 MiB sees the connection closed).
    let status = {
        use std::io::{Read, Write};
        let addr = shared().1.base.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!("POST /api/check HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{\"text\": \"", 3 << 20);
        stream.write_all(head.as_bytes()).unwrap();
        let _ = stream.write_all(&vec![b'#'; (2 << 20) + (64 << 10)]);
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut reply = vec![0u8; 512];
        let n = stream.read(&mut reply).unwrap_or(0);
        String::from_utf8_lossy(&reply[..n]).split(' ').nth(1).unwrap_or("").to_string()
    };
    assert_eq!(status, "413");
    assert_eq!(get_with(&url("/"), &[("host", "evil.example")]).status, 421);
    let cross = post_with(
        &url("/api/check"),
        &[("content-type", "application/json"), ("origin", "http://evil.example")],
        br#"{"text": ""}"#,
    );
    assert_eq!(cross.status, 403, "{}", cross.body);
    let site = post_with(
        &url("/api/check"),
        &[("content-type", "application/json"), ("sec-fetch-site", "cross-site")],
        br#"{"text": ""}"#,
    );
    assert_eq!(site.status, 403);
}

#[test]
fn a_non_loopback_bind_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["--bind", "0.0.0.0:0"], vec!["--bind", "127.0.0.1:0", "--token", "short"]] {
        let out = std::process::Command::new(serve_support::lvc())
            .arg("serve")
            .arg("--root")
            .arg(dir.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("token"), "{err}");
    }
}

#[test]
fn a_token_guards_every_route_and_cookie_posts_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = "0123456789abcdef0123";
    let server = start(dir.path(), &["--token", token]);
    let base = &server.base;
    assert_eq!(get(&format!("{base}/api/runs")).status, 401);
    assert_eq!(
        get_with(&format!("{base}/api/runs"), &[("authorization", "Bearer nope")]).status,
        401
    );
    let bearer = format!("Bearer {token}");
    assert_eq!(get_with(&format!("{base}/api/runs"), &[("authorization", &bearer)]).status, 200);
    assert_eq!(get(&format!("{base}/assets/app.js")).status, 200);
    let login = get(&format!("{base}/login"));
    assert_eq!(login.status, 200);
    // The login form sets the cookie.
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let wrong = agent
        .post(&format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send("token=wrong")
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = agent
        .post(&format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={token}"))
        .unwrap();
    let cookie = right.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let home = get_with(&format!("{base}/"), &[("cookie", &cookie)]);
    assert_eq!(home.status, 200);
    let csrf = home
        .body
        .split("name=\"lvc-csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let body = br#"{"text": ""}"#;
    let json_type = ("content-type", "application/json");
    assert_eq!(
        post_with(&format!("{base}/api/check"), &[json_type, ("cookie", &cookie)], body).status,
        403
    );
    assert_eq!(
        post_with(
            &format!("{base}/api/check"),
            &[json_type, ("cookie", &cookie), ("x-lvc-csrf", "wrong")],
            body
        )
        .status,
        403
    );
    assert_eq!(
        post_with(
            &format!("{base}/api/check"),
            &[json_type, ("cookie", &cookie), ("x-lvc-csrf", &csrf)],
            body
        )
        .status,
        200
    );
    assert_eq!(
        post_with(&format!("{base}/api/check"), &[json_type, ("authorization", &bearer)], body)
            .status,
        200
    );
}

#[test]
fn a_training_posted_to_the_api_streams_its_epochs_and_ends_done() {
    let base = &shared().1.base;
    let a = post_json(
        &format!("{base}/api/runs"),
        &json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "epochs": 2, "run": "runs/api"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["id"], "runs/api");
    let seen = events(base, "runs/api");
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "epoch").count(), 2, "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{seen:?}");
    let epochs: Vec<u64> = seen
        .iter()
        .filter(|(n, _)| n == "epoch")
        .map(|(_, d)| d["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2]);
    let detail = get(&format!("{base}/api/runs/runs/api")).json();
    assert_eq!(detail["status"], "done");
    assert_eq!(detail["job"]["state"], "done");
    // A second run into the same folder is refused.
    let again = post_json(
        &format!("{base}/api/runs"),
        &json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "run": "runs/api"}),
    );
    assert_eq!(again.status, 400, "{}", again.body);
    // The bundle: weights, prototxt files and records in one tar.
    let bundle = get(&format!("{base}/api/runs/runs/api/bundle"));
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.content_type, "application/x-tar");
    for name in [
        "api/best.safetensors",
        "api/net.prototxt",
        "api/solver.prototxt",
        "api/run.json",
        "api/metrics.json",
    ] {
        assert!(bundle.body.contains(name), "{name} in the bundle");
    }
}

#[test]
fn a_pasted_net_with_form_settings_trains_from_its_own_files() {
    let base = &shared().1.base;
    let net = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo.prototxt"))
        .unwrap();
    let body = json!({
        "net_text": net, "dataset": "datasets/ph", "epochs": 1, "run": "runs/pasted",
        "solver_settings": {"type": "Adam", "base_lr": 0.002, "lr_policy": "fixed", "momentum": 0.9, "max_iter": 100, "random_seed": 3}
    });
    let a = post_json(&format!("{base}/api/runs"), &body);
    assert_eq!(a.status, 201, "{}", a.body);
    let root = &shared().1.root;
    let solver = std::fs::read_to_string(root.join("runs/pasted/solver.prototxt")).unwrap();
    assert!(
        solver.contains("net: \"net.prototxt\"") && solver.contains("random_seed: 3"),
        "{solver}"
    );
    let seen = events(base, "runs/pasted");
    assert_eq!(seen.last().unwrap().0, "done", "{seen:?}");
    let bad = json!({"net_text": "x", "dataset": "datasets/ph", "solver_settings": {"type": "Adam\"\nnet: \"/etc/passwd", "base_lr": 0.1}});
    assert_eq!(post_json(&format!("{base}/api/runs"), &bad).status, 400);
}

#[test]
fn inference_answers_dice_and_layers_for_a_record_and_an_upload() {
    let base = &shared().1.base;
    let records =
        get(&format!("{base}/api/datasets/datasets/ph/records?split=val&per_page=3")).json();
    let record = records["records"][1]["record"].as_str().unwrap().to_string();
    let a =
        post_json(&format!("{base}/api/infer"), &json!({"run": "runs/trained", "record": record}));
    assert_eq!(a.status, 200, "{}", a.body);
    let r = a.json();
    assert!(r["dice"].as_f64().is_some_and(|d| (0.0..=1.0).contains(&d)), "{r}");
    for key in ["image", "mask", "prediction_contour", "truth_contour", "overlay"] {
        let png = get(&format!("{base}{}", r[key].as_str().unwrap()));
        assert_eq!((png.status, png.content_type.as_str()), (200, "image/png"), "{key}");
    }
    assert_eq!(
        post_json(
            &format!("{base}/api/infer"),
            &json!({"run": "runs/trained", "record": "NOPE/0001"})
        )
        .status,
        404
    );
    // A DICOM upload: no ground truth, so no Dice.
    let root = &shared().1.root;
    let case = std::fs::read_dir(root.join("phantom/challenge_training"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dicom = std::fs::read_dir(&case)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .unwrap();
    let bytes = std::fs::read(dicom).unwrap();
    let boundary = "lvcboundary7";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"run\"\r\n\r\nruns/trained\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../evil.dcm\"\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let up = post_with(&format!("{base}/api/infer"), &[("content-type", &content_type)], &body);
    assert_eq!(up.status, 200, "{}", up.body);
    let r = up.json();
    assert!(r["dice"].is_null() && r["truth_contour"].is_null(), "{r}");
    assert!(!root.parent().unwrap().join("evil.dcm").exists());
    let junk = post_with(&format!("{base}/api/infer"), &[("content-type", &content_type)], format!("--{boundary}\r\nContent-Disposition: form-data; name=\"run\"\r\n\r\nruns/trained\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nnot dicom\r\n--{boundary}--\r\n").as_bytes());
    assert_eq!(junk.status, 422, "{}", junk.body);
}

#[test]
fn queued_runs_cancel_and_a_killed_server_resumes_its_training() {
    // A workspace of its own: this test kills its server.
    let ws = workspace();
    let root = ws.path();
    let mut server = start(root, &["--jobs", "1"]);
    let base = server.base.clone();
    let first = post_json(
        &format!("{base}/api/runs"),
        &json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "epochs": 3, "run": "runs/long"}),
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let second = post_json(
        &format!("{base}/api/runs"),
        &json!({"solver": "models/demo_solver.prototxt", "dataset": "datasets/ph", "epochs": 1, "run": "runs/waiting"}),
    );
    assert_eq!(second.status, 201);
    let waiting = get(&format!("{base}/api/runs/runs/waiting")).json();
    assert_eq!(
        (waiting["status"].as_str(), waiting["queue_position"].as_u64()),
        (Some("queued"), Some(1)),
        "{waiting}"
    );
    let cancel = post_json(&format!("{base}/api/runs/runs/waiting/cancel"), &json!({}));
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(get(&format!("{base}/api/runs/runs/waiting")).json()["status"], "cancelled");
    assert_eq!(post_json(&format!("{base}/api/runs/runs/waiting/cancel"), &json!({})).status, 409);
    // Kill the server once the first epoch is written: its training dies with it.
    wait_for(120, "the first epoch", || {
        let d = get(&format!("{base}/api/runs/runs/long")).json();
        (d["metrics"]["epochs_done"].as_u64() >= Some(1)).then_some(())
    });
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let restarted = start(root, &["--jobs", "1"]);
    let base = restarted.base.clone();
    let done = wait_for(180, "the resumed training", || {
        let d = get(&format!("{base}/api/runs/runs/long")).json();
        matches!(d["status"].as_str(), Some("done" | "failed")).then_some(d)
    });
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["metrics"]["epochs_done"], 3);
    assert_eq!(done["job"]["restarts"], 1);
    // `--out` into a folder holding a run fails, so `done` means it resumed.
    let epochs: Vec<u64> = done["metrics"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3]);
    assert_eq!(get(&format!("{base}/api/runs/runs/waiting")).json()["status"], "cancelled");
}

#[allow(dead_code)]
fn show(a: &Answer) -> String {
    format!("{} {}", a.status, a.body)
}

#[test]
fn a_dataset_import_runs_as_a_job_and_appears_on_the_list() {
    let base = &shared().1.base;
    let body = json!({
        "images": "phantom/challenge_training",
        "contours": "phantom/Sunnybrook Cardiac MR Database ContoursPart3",
        "out": "datasets/rgb", "channels": "RGB", "split": "image", "val_pct": 20, "seed": 7
    });
    let a = post_json(&format!("{base}/api/datasets"), &body);
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["id"], "datasets/rgb");
    let again = post_json(&format!("{base}/api/datasets"), &body);
    assert!(
        (400..500).contains(&again.status),
        "a second import into the same folder: {}",
        again.body
    );
    let listed = wait_for(60, "the imported dataset", || {
        let list = get(&format!("{base}/api/datasets")).json();
        list["datasets"].as_array().unwrap().iter().find(|d| d["id"] == "datasets/rgb").cloned()
    });
    assert_eq!(listed["image_shape"], json!([3, 256, 256]));
    let jobs = get(&format!("{base}/api/jobs")).json();
    let job = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["target"] == "datasets/rgb")
        .unwrap()
        .clone();
    let job = if job["state"] == "done" {
        job
    } else {
        wait_for(30, "the import job to end", || {
            let jobs = get(&format!("{base}/api/jobs")).json();
            jobs["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["target"] == "datasets/rgb" && j["state"] != "running")
                .cloned()
        })
    };
    assert_eq!(job["state"], "done", "{job}");
    let inspect = get(&format!("{base}/api/datasets/datasets/rgb")).json();
    assert_eq!(inspect["inspection"]["split"]["seed"], 7);
    for bad in [
        json!({"images": "phantom", "contours": "phantom", "out": "datasets/y", "channels": "CMYK"}),
        json!({"images": "phantom", "contours": "phantom", "out": "datasets/y", "val_pct": 101}),
    ] {
        assert_eq!(post_json(&format!("{base}/api/datasets"), &bad).status, 400, "{bad}");
    }
}

#[test]
fn weights_check_reports_every_layer_and_offers_the_adapt_fixes() {
    let base = &shared().1.base;
    let fits = post_json(
        &format!("{base}/api/weights/check"),
        &json!({"net": "models/demo.prototxt", "weights": "runs/trained/best.safetensors"}),
    );
    assert_eq!(fits.status, 200, "{}", fits.body);
    let fits = fits.json();
    assert_eq!(fits["report"]["loads"], true, "{fits}");
    assert!(fits["choices"].as_array().unwrap().is_empty());
    // The same net for RGB input: conv1's filters no longer fit.
    let net = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo.prototxt"))
        .unwrap();
    let rgb = net.replacen("dim: 4 dim: 1 dim: 256 dim: 256", "dim: 4 dim: 3 dim: 256 dim: 256", 1);
    assert_ne!(rgb, net);
    let misfit = post_json(
        &format!("{base}/api/weights/check"),
        &json!({"net_text": rgb, "weights": "runs/trained/best.safetensors"}),
    )
    .json();
    assert_eq!(misfit["report"]["loads"], false, "{misfit}");
    let choices: Vec<String> = misfit["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert!(choices.iter().any(|c| c.ends_with("=replicate")), "{choices:?}");
    let fixed = post_json(&format!("{base}/api/weights/check"), &json!({"net_text": rgb, "weights": "runs/trained/best.safetensors", "adapt": [choices[0]]})).json();
    assert_eq!(fixed["report"]["loads"], true, "{fixed}");
}

#[test]
fn the_run_page_shows_the_evaluation_and_its_best_and_worst_images() {
    let base = &shared().1.base;
    let page = get(&format!("{base}/runs/runs/trained"));
    assert_eq!(page.status, 200);
    assert!(page.headers_timing_ok(), "Server-Timing on the run page");
    assert!(page.body.contains("id=\"patients\""), "the per-patient table");
    let images: Vec<&str> =
        page.body.split("<img src=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert_eq!(images.len(), 8, "4 worst and 4 best");
    for src in &images {
        assert!(src.starts_with("/api/runs/runs/trained/overlay/"), "{src}");
        let png = get(&format!("{base}{}", src.replace("&amp;", "&")));
        assert_eq!((png.status, png.content_type.as_str()), (200, "image/png"), "{src}");
    }
    for bad in ["..", "..%2F..%2Fmodels", ".hidden", "a%2Fb"] {
        let a = get(&format!("{base}/api/runs/runs/trained/overlay/{bad}"));
        assert!((400..500).contains(&a.status), "{bad}: {}", a.status);
    }
}

#[test]
fn a_run_trained_from_the_command_line_shows_running_and_streams_to_done() {
    let (_, server) = shared();
    let base = &server.base;
    let mut train = std::process::Command::new(serve_support::lvc());
    train.current_dir(&server.root).args([
        "train",
        "--solver",
        "models/demo_solver.prototxt",
        "--dataset",
        "datasets/ph",
        "--out",
        "runs/cli",
        "--epochs",
        "3",
    ]);
    train.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = serve_support::spawn_from_a_lasting_thread(train);
    // No job of the server's writes it; the folder's lock says it is training.
    wait_for(120, "runs/cli running", || {
        let a = get(&url("/api/runs/runs/cli"));
        (a.status == 200 && a.json()["status"] == "running").then_some(())
    });
    let listed = get(&url("/api/runs")).json();
    let row = listed["runs"].as_array().unwrap().iter().find(|r| r["id"] == "runs/cli").cloned();
    assert_eq!(row.map(|r| r["status"].clone()), Some(json!("running")));
    let seen = events(base, "runs/cli");
    let epochs: Vec<u64> = seen
        .iter()
        .filter(|(n, _)| n == "epoch")
        .map(|(_, d)| d["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3], "{seen:?}");
    assert_eq!(seen.last().unwrap().0, "done", "{seen:?}");
    assert!(child.wait().unwrap().success());
    assert_eq!(get(&url("/api/runs/runs/cli")).json()["status"], "done");
}
