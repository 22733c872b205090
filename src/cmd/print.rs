//! `lvc print`: the checked graph as text, one line per layer.

use std::path::PathBuf;

use super::netargs::{compile_file, report_to_stderr, write_stdout, NetArgs};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc print models/fcn_alexnet.prototxt
  lvc print --phase train --input-shape data=1,3,500,500 train.prototxt

Each line: layer name, type, bottoms → tops with their shapes, learnable parameter shapes.
Inserted Split layers are marked (inserted), in-place tops (in-place); the footer lists
inputs, outputs and the parameter count. Diagnostics go to stderr; exit 1 when there are errors.")]
pub struct PrintArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Net prototxt file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub fn run(args: PrintArgs) -> u8 {
    let (source, compiled) = match compile_file(&args.file, &args.net.options()) {
        Ok(done) => done,
        Err(message) => {
            eprintln!("error[lvc::io::read]: {message}");
            return 2;
        }
    };
    report_to_stderr(&source, &compiled);
    if let Some(graph) = &compiled.graph {
        if !write_stdout(&graph.to_text()) {
            return 2;
        }
    }
    u8::from(!compiled.is_ok())
}
