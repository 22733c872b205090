//! The prototxt path as `lvc check`, `lvc print` and `lvc dot` run it:
//! parse, schema, upgrade, graph, shapes, in both phases; diagnostics
//! rendered by miette and as JSON; the printed graph; the memory estimate.
//! Also the same text as a solver.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvc_compiler::ir::{compile, CompileOptions};
use lvc_compiler::memory::{estimate, Mode};
use lvc_compiler::ops::MAX_BLOB_COUNT;
use lvc_compiler::schema::solver::SolverType;
use lvc_compiler::schema::{load_solver, LoadOptions, Phase};
use lvc_compiler::SourceFile;

fuzz_target!(|data: &[u8]| {
    let source = SourceFile::new("fuzz.prototxt", String::from_utf8_lossy(data).into_owned());
    for phase in [Phase::Test, Phase::Train] {
        let compiled = compile(&source, &CompileOptions { phase, ..CompileOptions::default() });
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        for diag in compiled.diags.iter() {
            let mut out = String::new();
            let _ = handler.render_report(&mut out, &diag.render(&source));
            let _ = serde_json::to_string(&diag.to_json(&source));
        }
        if let (Some(net), Some(graph)) = (&compiled.net, &compiled.graph) {
            let _ = graph.to_text();
            let _ = graph.to_dot();
            // Sizes are checked, never wrapped.
            assert!(graph.param_count() >= 0);
            if compiled.is_ok() {
                for blob in graph.blobs() {
                    if let Some(shape) = &blob.shape {
                        let count = shape.checked_count();
                        assert!(
                            count.is_some_and(|n| (0..=MAX_BLOB_COUNT).contains(&n)),
                            "{}: {shape}",
                            blob.name
                        );
                    }
                }
            }
            for mode in [Mode::Inference, Mode::training_with(SolverType::Adam)] {
                let _ = estimate(net, graph, mode).total();
            }
        }
    }
    let _ = load_solver(&source, &LoadOptions { lenient: false });
});
