//! `lvc dataset inspect`: what a dataset holds, for people or as JSON, with
//! a warning where pixel accuracy says nothing
//! (`lvc_workflow::inspect`, which `lvc serve`'s dataset page shows too).

use std::path::Path;

use lvc_data::store::Dataset;
use lvc_workflow::inspect::{human_inspection, Inspection};

/// `lvc dataset inspect DS`: the manifest for people or as JSON (`json`).
pub(super) fn inspect(dataset: &Path, json: bool) -> u8 {
    let ds = match Dataset::open(dataset) {
        Ok(d) => d,
        Err(e) => {
            errln!("{:?}", miette::Report::new(e));
            return 1;
        }
    };
    let view = Inspection::of(&dataset.display().to_string(), &ds.manifest);
    if json {
        match serde_json::to_string_pretty(&view) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                errln!("error: cannot encode JSON: {e}");
                return 1;
            }
        }
    } else {
        out!("{}", human_inspection(&view.dataset, &ds.manifest, &view.warnings))
    }
    0
}
