//! `--help` of the net subcommands, snapshotted (flags and examples).

use std::process::Command;

fn help(sub: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lvc")).args([sub, "--help"]).output().expect("run lvc");
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_help() {
    insta::assert_snapshot!(help("check"));
}

#[test]
fn print_help() {
    insta::assert_snapshot!(help("print"));
}

#[test]
fn dot_help() {
    insta::assert_snapshot!(help("dot"));
}
