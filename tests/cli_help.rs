//! `--help` of the net subcommands, snapshotted (flags and examples).

mod common;

use common::{lvc, text};

fn help(sub: &str) -> String {
    let out = lvc(&[sub, "--help"]);
    assert_eq!(out.status.code(), Some(0));
    text(&out.stdout)
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
