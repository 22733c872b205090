include!("../build_support/libtorch_link.rs");

fn main() {
    link_libtorch(&["rustc-link-arg"]);
}
