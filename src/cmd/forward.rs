//! `lvc forward`: run a net once on given inputs and write every blob, as it
//! stands after the whole forward pass, to `DIR/<blob>.npy`.

use std::path::{Path, PathBuf};

use lvc_compiler::ir::Compiled;
use lvc_runtime::exec::{Net, Plan};
use lvc_runtime::tch::Tensor;
use lvc_runtime::weights::{CaffeShape, LayerStatus};

use super::device_args::DeviceArgs;
use super::netargs::{compile_file, render, NetArgs};
use super::weights::read_weights_checked;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc forward --model fcn_alexnet_deploy.prototxt --weights fcn_alexnet.caffemodel \\
      --input data=slice.npy --out blobs/
  lvc forward --model deploy.prototxt --weights w.caffemodel \\
      --input data=input_gray_256.f32:1x1x256x256 --out blobs/ --device cuda
  lvc forward --model train.prototxt --phase train --weights w.caffemodel \\
      --input data=img.npy --input label=label.npy --out blobs/

Inputs are .npy files (any float or integer dtype; converted to float32) or raw little-endian
float32 files with their shape after a colon. Without --weights every parameter comes from the
prototxt fillers, seeded with --seed. Blob names with '/' are written with '_' in their place.

Exit status: 0 all blobs written, 1 the run failed, 2 a file could not be read or the net has errors.")]
pub struct ForwardArgs {
    /// The net prototxt.
    #[arg(long, value_name = "M.prototxt")]
    pub model: PathBuf,
    #[command(flatten)]
    pub net: NetArgs,
    /// Trained weights (.caffemodel or .safetensors), matched by layer name.
    #[arg(long, value_name = "W")]
    pub weights: Option<PathBuf>,
    /// A net input (repeatable): NAME=FILE.npy or NAME=FILE.f32:DxDx…
    #[arg(long = "input", value_name = "NAME=FILE", value_parser = parse_input)]
    pub inputs: Vec<InputArg>,
    /// Folder for the `<blob>.npy` files (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Seed for filler-initialised parameters.
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
}

pub use lvc_workflow::feeds::{parse_input, read_input, InputArg};

/// A blob name as a file name.
fn file_name(blob: &str) -> String {
    blob.chars().map(|c| if c == '/' || c == '\\' || c == '\0' { '_' } else { c }).collect()
}

/// Writes a tensor as .npy atomically.
fn write_npy_atomic(tensor: &Tensor, path: &Path) -> Result<(), String> {
    let on_cpu = tensor.detach().to_device(lvc_runtime::tch::Device::Cpu);
    lvc_fsio::write_atomic_via_temp_path(path, |tmp| {
        on_cpu.write_npy(tmp).map_err(std::io::Error::other)
    })
    .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn run(args: ForwardArgs) -> u8 {
    let fail = |code: u8, message: String| {
        errln!("error: {message}");
        code
    };
    let device = match args.device.select() {
        Ok(d) => d,
        Err(e) => {
            errln!("{:?}", miette::Report::new(e));
            return 2;
        }
    };
    let (source, compiled) = match compile_file(&args.model, &args.net.options()) {
        Ok(c) => c,
        Err(message) => return fail(2, message),
    };
    let Compiled { net, graph, diags } = &compiled;
    for d in diags.iter().filter(|d| !d.is_error()) {
        err!("{}", render(d, &source));
    }
    let (Some(net_def), Some(graph)) = (net, graph) else {
        diags.iter().for_each(|d| err!("{}", render(d, &source)));
        return fail(2, format!("{} could not be read as a net", args.model.display()));
    };
    if diags.has_errors() {
        diags.iter().filter(|d| d.is_error()).for_each(|d| err!("{}", render(d, &source)));
        return fail(
            2,
            format!(
                "{} has errors; fix them before running it (see `lvc check`)",
                args.model.display()
            ),
        );
    }
    let plan = match Plan::from_graph(graph, net_def) {
        Ok(p) => p,
        Err(errors) => {
            errors.iter().for_each(|d| err!("{}", render(d, &source)));
            return fail(2, format!("{} uses layers the runtime cannot run", args.model.display()));
        }
    };
    let mut net = match Net::new(plan, device, args.seed) {
        Ok(n) => n,
        Err(e) => {
            return lvc_workflow::net::not_instantiated(&args.model.display().to_string(), e).0
        }
    };
    if let Some(path) = &args.weights {
        let file = match read_weights_checked(path) {
            Ok(f) => f,
            Err(e) => {
                errln!("{:?}", miette::Report::new(e));
                return 2;
            }
        };
        match net.load_weights(&file) {
            Ok(report) if report.loads() => {}
            Ok(report) => {
                for layer in report.layers.iter().filter(|l| l.status.is_fatal()) {
                    let detail = layer
                        .params
                        .iter()
                        .filter(|p| p.expected != p.found)
                        .map(|p| {
                            let shape = |s: &Option<Vec<i64>>| {
                                s.as_deref()
                                    .map_or("none".to_string(), |s| CaffeShape(s).to_string())
                            };
                            format!(
                                "param {}: file {}, net {}",
                                p.index,
                                shape(&p.found),
                                shape(&p.expected)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    let what = if layer.status == LayerStatus::BlobCountMismatch {
                        "blob count mismatch"
                    } else {
                        "shape mismatch"
                    };
                    errln!("error: layer '{}': {what} ({detail})", layer.layer);
                }
                return fail(
                    2,
                    format!(
                        "{} does not load into {} (see `lvc weights check` for the fixes)",
                        path.display(),
                        args.model.display()
                    ),
                );
            }
            Err(e) => {
                errln!("{:?}", miette::Report::new(e));
                return 2;
            }
        }
    }
    let mut inputs = Vec::new();
    for input in &args.inputs {
        match read_input(input) {
            Ok(t) => inputs.push((input.name.as_str(), t)),
            Err(message) => return fail(2, format!("input '{}': {message}", input.name)),
        }
    }
    let blobs = match net.forward(&inputs) {
        Ok(b) => b,
        Err(e) => {
            errln!("{:?}", miette::Report::new(e));
            return 2;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return fail(1, format!("cannot create {}: {e}", args.out.display()));
    }
    let mut written = 0;
    for (name, id) in net.plan.final_blobs() {
        let Some(tensor) = blobs.get(id) else { continue };
        let path = args.out.join(format!("{}.npy", file_name(&name)));
        if let Err(message) = write_npy_atomic(tensor, &path) {
            return fail(1, message);
        }
        written += 1;
    }
    outln!("wrote {written} blobs to {}", args.out.display());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_arguments_parse() {
        let npy = parse_input("data=x/slice.npy").unwrap();
        assert_eq!(
            npy,
            InputArg { name: "data".into(), path: "x/slice.npy".into(), raw_shape: None }
        );
        let raw = parse_input("data=in.f32:1x1x256x256").unwrap();
        assert_eq!(raw.raw_shape, Some(vec![1, 1, 256, 256]));
        assert_eq!(raw.path, PathBuf::from("in.f32"));
        assert!(parse_input("data").is_err());
        assert!(parse_input("=a.npy").is_err());
        assert!(parse_input("data=in.f32:1x0").is_err());
        assert!(parse_input("data=in.f32:1xq").is_err());
    }

    #[test]
    fn blob_names_become_file_names() {
        assert_eq!(file_name("inception_3a/1x1"), "inception_3a_1x1");
        assert_eq!(file_name("score"), "score");
    }

    #[test]
    fn raw_inputs_check_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.f32");
        std::fs::write(&path, [0u8; 12]).unwrap();
        let ok = InputArg { name: "d".into(), path: path.clone(), raw_shape: Some(vec![1, 3]) };
        assert_eq!(read_input(&ok).unwrap().size(), vec![1, 3]);
        let bad = InputArg { raw_shape: Some(vec![1, 4]), ..ok };
        assert!(read_input(&bad).unwrap_err().contains("12 bytes"));
        let missing =
            InputArg { name: "d".into(), path: dir.path().join("none.npy"), raw_shape: None };
        assert!(read_input(&missing).unwrap_err().contains("none.npy"));
    }
}
