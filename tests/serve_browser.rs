//! `lvc serve` in a real browser: Debian's headless Chromium driven over
//! the DevTools protocol against a server on a random loopback port. Each
//! test skips (saying so) where Chromium is not installed; `.ci/run`
//! installs it (`make chromium`).

mod serve_support;

use serve_support::cdp::Browser;
use serve_support::{chromium, shared};

fn browser(test: &str) -> Option<Browser> {
    match chromium() {
        Some(binary) => Some(Browser::launch(&binary)),
        None => {
            eprintln!("SKIPPED {test}: chromium is not installed (run `make chromium`, which needs root for apt-get)");
            None
        }
    }
}

#[test]
fn the_home_page_lists_the_dataset_and_the_run_and_filters_them() {
    let Some(mut b) = browser("the_home_page_lists_the_dataset_and_the_run_and_filters_them")
    else {
        return;
    };
    let base = &shared().1.base;
    b.goto(&format!("{base}/"));
    let rows = b.eval(
        "[...document.querySelectorAll('#datasets tbody tr[data-id]')].map(r => r.dataset.id)",
    );
    assert_eq!(rows, serde_json::json!(["datasets/ph"]));
    let status =
        b.eval("document.querySelector('#runs tr[data-id=\"runs/trained\"] .status').textContent");
    assert_eq!(status, "done");
    let dice = b.eval(
        "document.querySelector('#runs tr[data-id=\"runs/trained\"] td:nth-child(3)').textContent",
    );
    assert!(dice.as_str().unwrap().parse::<f64>().is_ok(), "{dice}");
    b.type_into("#filter", "no-such-thing");
    let visible = b.eval("[...document.querySelectorAll('table.sortable tbody tr[data-id]')].filter(r => !r.hidden).length");
    assert_eq!(visible, 0);
    b.eval("document.getElementById('filter').value = ''; document.getElementById('filter').dispatchEvent(new Event('input'))");
    b.click("#runs th[data-key=dice]");
    assert_eq!(b.eval("document.querySelector('#runs th[data-key=dice]').className"), "sorted-asc");
}

#[test]
fn the_editor_shows_a_diagnostic_at_its_line_after_typing() {
    let Some(mut b) = browser("the_editor_shows_a_diagnostic_at_its_line_after_typing") else {
        return;
    };
    let base = &shared().1.base;
    b.goto(&format!("{base}/new/run"));
    let good = "name: \"t\"\nlayer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }\n";
    b.type_into("#net-text", good);
    b.wait_until(
        10,
        "the clean check",
        "document.getElementById('check-summary').textContent.startsWith('0 error')",
    );
    // A layer with a misspelt bottom, typed as line 3.
    b.type_into("#net-text", "layer { name: \"c\" type: \"Convolution\" bottom: \"dta\" top: \"c\" convolution_param { num_output: 2 kernel_size: 3 } }");
    let line = b.wait_until(
        10,
        "a diagnostic",
        "(document.querySelector('#diagnostics li.error') || {dataset: {}}).dataset.line",
    );
    assert_eq!(line, "3");
    let text = b.eval("document.querySelector('#diagnostics li.error').textContent");
    assert!(text.as_str().unwrap().contains("unknown bottom blob 'dta'"), "{text}");
    assert_eq!(
        b.eval("document.querySelector('#gutter span[data-line=\"3\"]').className"),
        "line-error"
    );
    assert_eq!(b.eval("document.querySelector('#gutter span[data-line=\"2\"]').className"), "");
}

#[test]
fn a_training_started_from_the_form_shows_live_epochs_and_ends_done() {
    let Some(mut b) = browser("a_training_started_from_the_form_shows_live_epochs_and_ends_done")
    else {
        return;
    };
    let base = &shared().1.base;
    b.goto(&format!("{base}/new/run?dataset=datasets%2Fph"));
    b.eval("document.getElementById('net').value = 'models/demo.prototxt'");
    b.eval("for (const [k, v] of [['epochs', '2'], ['run', 'runs/from-form'], ['base_lr', '0.002']]) document.getElementById(k).value = v");
    b.click("#start");
    b.wait_until(
        20,
        "the run page",
        "location.pathname === '/runs/runs/from-form' && document.body.dataset.page === 'run'",
    );
    let epochs = b.wait_until(
        240,
        "two epochs in the table",
        "document.querySelectorAll('#epochs tbody tr').length >= 2 && document.body.dataset.epochs",
    );
    assert_eq!(epochs, "2");
    let status = b.wait_until(60, "the end of the training", "document.body.dataset.final");
    assert_eq!(status, "done");
    assert_eq!(b.eval("document.querySelector('h1 .status').textContent"), "done");
    // uPlot drew the curves.
    assert_eq!(b.eval("document.querySelectorAll('#chart-dice canvas').length"), 1);
    assert_eq!(b.eval("document.getElementById('cancel').hidden"), true);
}

#[test]
fn the_inference_slider_changes_the_overlays_opacity() {
    let Some(mut b) = browser("the_inference_slider_changes_the_overlays_opacity") else { return };
    let base = &shared().1.base;
    b.goto(&format!("{base}/infer?run=runs%2Ftrained"));
    b.wait_until(
        20,
        "the val records",
        "document.querySelectorAll('#infer-record option').length > 0",
    );
    b.click("#infer-go");
    let dice =
        b.wait_until(60, "the segmentation", "document.getElementById('infer-dice').textContent");
    assert!(dice.as_str().unwrap().starts_with("Dice "), "{dice}");
    b.wait_until(20, "the layers to load", "[...document.querySelectorAll('#stack img')].every(i => i.complete && i.naturalWidth === 256)");
    assert_eq!(b.eval("getComputedStyle(document.getElementById('layer-mask')).opacity"), "0.4");
    b.eval("document.getElementById('opacity').focus()");
    for _ in 0..4 {
        b.press("ArrowRight", 39);
    }
    assert_eq!(b.eval("getComputedStyle(document.getElementById('layer-mask')).opacity"), "0.6");
    b.click("#show-truth");
    assert_eq!(b.eval("getComputedStyle(document.getElementById('layer-truth')).display"), "none");
    if let Ok(dir) = std::env::var("LVC_SCREENSHOTS") {
        b.screenshot(&std::path::Path::new(&dir).join("serve-infer.png"));
    }
}

#[test]
fn clone_opens_the_run_form_prefilled() {
    let Some(mut b) = browser("clone_opens_the_run_form_prefilled") else { return };
    let base = &shared().1.base;
    b.goto(&format!("{base}/runs/runs/trained"));
    b.click("a[href^='/new/run?clone=']");
    b.wait_until(20, "the prefilled form", "document.body.dataset.cloned === 'runs/trained'");
    assert_eq!(b.eval("document.getElementById('dataset').value"), "datasets/ph");
    assert_eq!(b.eval("document.getElementById('type').value"), "Adam");
    assert_eq!(b.eval("document.getElementById('base_lr').value"), "0.002");
    assert_eq!(b.eval("document.getElementById('lr_policy').value"), "poly");
    assert_eq!(b.eval("document.getElementById('epochs').value"), "1");
    let net = b.eval("document.getElementById('net-text').value");
    assert!(
        net.as_str().unwrap().contains("name: \"lv_demo_fcn\""),
        "the net's text is in the editor"
    );
    b.wait_until(
        10,
        "the check of the cloned net",
        "document.getElementById('check-summary').textContent.startsWith('0 error')",
    );
    // A dataset's Clone prefills the import form.
    b.goto(&format!("{base}/new/dataset?clone=datasets%2Fph"));
    assert_eq!(b.eval("document.getElementById('val_pct').value"), "50");
    assert_eq!(b.eval("document.getElementById('out').value"), "datasets/ph-copy");
    assert!(b
        .eval("document.getElementById('images').value")
        .as_str()
        .unwrap()
        .ends_with("challenge_training"));
}
