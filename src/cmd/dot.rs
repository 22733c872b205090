//! `lvc dot`: the checked graph as Graphviz.

use std::path::PathBuf;

use super::netargs::{compile_and_report, write_stdout, NetArgs};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc dot models/fcn_alexnet.prototxt -o net.dot && dot -Tsvg net.dot -o net.svg
  lvc dot --stage deploy deploy.prototxt | dot -Tpng > net.png

Layers are boxes (inserted splits dashed), blobs are edges labelled with name and shape
(in-place edges bold), net outputs are ellipses. Exit 1 when the net has errors.")]
pub struct DotArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Write the graph here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Net prototxt file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub fn run(args: DotArgs) -> u8 {
    let compiled = match compile_and_report(&args.file, &args.net.options()) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let Some(graph) = &compiled.graph else { return 1 };
    let text = graph.to_dot();
    match &args.output {
        None => {
            if !write_stdout(&text) {
                return 2;
            }
        }
        Some(out) => {
            if let Err(e) = lvc_fsio::write_atomic(out, text.as_bytes()) {
                errln!("error[lvc::io::write]: cannot write {}: {e}", out.display());
                return 2;
            }
        }
    }
    u8::from(!compiled.is_ok())
}
