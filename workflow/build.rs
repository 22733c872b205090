include!("../build_support/libtorch_link.rs");

fn main() {
    // What this package links itself is its unit tests (the training
    // modules call tch); the library is linked by its users, each with
    // their own rpath.
    link_libtorch(&["rustc-link-arg"]);
}
