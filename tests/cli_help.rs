//! `--help` of the net and run subcommands, snapshotted (flags and examples).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

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

#[test]
fn forward_help() {
    insta::assert_snapshot!(help("forward"));
}

#[test]
fn time_help() {
    insta::assert_snapshot!(help("time"));
}

#[test]
fn train_help() {
    insta::assert_snapshot!(help("train"));
}

#[test]
fn evaluate_help() {
    insta::assert_snapshot!(help("evaluate"));
}

#[test]
fn infer_help() {
    insta::assert_snapshot!(help("infer"));
}

#[test]
fn serve_help() {
    insta::assert_snapshot!(help("serve"));
}

#[test]
fn fmt_help() {
    insta::assert_snapshot!(help("fmt"));
}
