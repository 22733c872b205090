//! `lvc print`: the checked graph as text, one line per layer.

use std::path::PathBuf;

use super::netargs::{compile_and_report, write_stdout, NetArgs};

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
    let compiled = match compile_and_report(&args.file, &args.net.options()) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    if let Some(graph) = &compiled.graph {
        if !write_stdout(&graph.to_text()) {
            return 2;
        }
    }
    u8::from(!compiled.is_ok())
}
