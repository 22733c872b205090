//! Load speed of `.caffemodel` and `.safetensors` against the disk/page-cache
//! baseline `cat FILE > /dev/null`, in one run. The weights are the
//! full-size FCN-AlexNet gray net (56.8 M params, 227 MB as a caffemodel):
//! blob shapes from the golden manifest, deterministic pseudo-random values,
//! written with lvc's own writer into a temporary folder.
//!
//! `cat` only streams the page cache through a small buffer; a loader that
//! returns owned floats must also fault in and fill fresh memory, so the
//! "mmap + copy" row is the floor for `read_caffemodel`.
//!
//! Run: `cargo bench -p lvc-runtime --bench weights_load`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lvc_runtime::weights::safetensors::ParamRoles;
use lvc_runtime::weights::{
    read_caffemodel, read_safetensors, write_caffemodel, write_safetensors, WeightBlob,
    WeightsFile, WeightsLayer,
};

const RUNS: usize = 5;

fn manifest_weights() -> Result<WeightsFile, String> {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/golden/caffe/fcn_alexnet_gray/manifest.json"
    ));
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let params = manifest["params"].as_array().ok_or("manifest has no params")?;
    let mut file = WeightsFile { name: Some("fcn_alexnet_gray".into()), layers: Vec::new() };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for p in params {
        let layer = p["layer"].as_str().ok_or("param without layer")?;
        let shape: Vec<i64> = p["shape"]
            .as_array()
            .ok_or("param without shape")?
            .iter()
            .filter_map(|d| d.as_i64())
            .collect();
        let count = shape.iter().product::<i64>() as usize;
        let data = (0..count)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
            })
            .collect();
        if file.layers.last().map(|l| l.name.as_str()) != Some(layer) {
            file.layers.push(WeightsLayer {
                name: layer.to_string(),
                kind: String::new(),
                blobs: Vec::new(),
            });
        }
        if let Some(last) = file.layers.last_mut() {
            last.blobs.push(WeightBlob::new(shape, data));
        }
    }
    Ok(file)
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

/// The floor for any loader that returns owned floats: map the file and copy
/// it into freshly allocated memory (page faults of the new buffer included).
fn mapped_copy(path: &Path) -> Result<Duration, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: a private read-only map of a file only this benchmark writes.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| format!("{}: mmap: {e}", path.display()))?;
    let (elapsed, copy) = time(|| map.to_vec());
    assert_eq!(copy.len(), map.len());
    Ok(elapsed)
}

fn cat(path: &Path) -> Result<Duration, String> {
    let (elapsed, status) =
        time(|| Command::new("sh").arg("-c").arg("cat \"$0\" > /dev/null").arg(path).status());
    match status {
        Ok(s) if s.success() => Ok(elapsed),
        other => Err(format!("cat {} failed: {other:?}", path.display())),
    }
}

struct Row {
    what: String,
    first: Duration,
    best: Duration,
    median: Duration,
    bytes: u64,
}

fn measure(
    what: &str,
    bytes: u64,
    first: Duration,
    mut run: impl FnMut() -> Result<Duration, String>,
) -> Result<Row, String> {
    let mut times = (0..RUNS).map(|_| run()).collect::<Result<Vec<Duration>, String>>()?;
    times.sort();
    Ok(Row { what: what.to_string(), first, best: times[0], median: times[RUNS / 2], bytes })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("weights load benchmark: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let weights =
        manifest_weights().map_err(|e| format!("cannot build the benchmark weights: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let caffemodel = dir.path().join("fcn_alexnet_gray.caffemodel");
    let safetensors = dir.path().join("fcn_alexnet_gray.safetensors");
    let (write_cm, written) = time(|| write_caffemodel(&caffemodel, &weights));
    written.map_err(|e| format!("write caffemodel: {e}"))?;
    let (write_st, written) =
        time(|| write_safetensors(&safetensors, &weights, &ParamRoles::new()));
    written.map_err(|e| format!("write safetensors: {e}"))?;
    let size = |p: &Path| {
        std::fs::metadata(p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()))
    };
    let (cm_bytes, st_bytes) = (size(&caffemodel)?, size(&safetensors)?);

    // First reads right after writing (pages still in the cache from the
    // write), then RUNS warm repetitions each.
    let cat_first = cat(&caffemodel)?;
    let (cm_first, loaded) = time(|| read_caffemodel(&caffemodel));
    let loaded = loaded.map_err(|e| format!("read caffemodel: {e}"))?;
    assert!(
        loaded.layers.iter().zip(&weights.layers).all(|(a, b)| a.blobs == b.blobs),
        "caffemodel round trip differs"
    );
    let (st_first, loaded_st) = time(|| read_safetensors(&safetensors));
    let loaded_st = loaded_st.map_err(|e| format!("read safetensors: {e}"))?;
    assert!(
        loaded_st.weights.param_count() == weights.param_count(),
        "safetensors round trip differs"
    );
    let cat_st_first = cat(&safetensors)?;
    let (read_first, _) = time(|| std::fs::read(&caffemodel));
    let copy_first = mapped_copy(&caffemodel)?;

    let rows = vec![
        measure("cat caffemodel > /dev/null", cm_bytes, cat_first, || cat(&caffemodel))?,
        measure("std::fs::read caffemodel (Vec<u8>)", cm_bytes, read_first, || {
            Ok(time(|| std::fs::read(&caffemodel)).0)
        })?,
        measure("mmap + copy to new Vec<u8> (owned floor)", cm_bytes, copy_first, || {
            mapped_copy(&caffemodel)
        })?,
        measure("lvc read_caffemodel", cm_bytes, cm_first, || {
            Ok(time(|| read_caffemodel(&caffemodel)).0)
        })?,
        measure("cat safetensors > /dev/null", st_bytes, cat_st_first, || cat(&safetensors))?,
        measure("lvc read_safetensors", st_bytes, st_first, || {
            Ok(time(|| read_safetensors(&safetensors)).0)
        })?,
    ];

    println!(
        "weights load benchmark: FCN-AlexNet gray, {} params, {} layers with blobs",
        weights.param_count(),
        weights.layers.len()
    );
    println!(
        "write: caffemodel {:.0} ms ({:.1} MB), safetensors {:.0} ms ({:.1} MB)",
        ms(write_cm),
        mb(cm_bytes),
        ms(write_st),
        mb(st_bytes)
    );
    println!();
    println!(
        "| {:<40} | {:>13} | {:>10} | {:>10} | {:>12} |",
        "what", "after write", "warm best", "warm median", "warm MB/s"
    );
    println!("|{:-<42}|{:->15}|{:->12}|{:->12}|{:->14}|", "", "", "", "", "");
    for r in &rows {
        println!(
            "| {:<40} | {:>10.1} ms | {:>7.1} ms | {:>8.1} ms | {:>12.0} |",
            r.what,
            ms(r.first),
            ms(r.best),
            ms(r.median),
            mb(r.bytes) / r.median.as_secs_f64()
        );
    }
    let ratio = |a: usize, b: usize| rows[a].median.as_secs_f64() / rows[b].median.as_secs_f64();
    println!();
    println!(
        "read_caffemodel / cat: {:.2}x; read_caffemodel / owned floor: {:.2}x (warm medians)",
        ratio(3, 0),
        ratio(3, 2)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
