include!("../build_support/libtorch_link.rs");

fn main() {
    // The server runs no net (its jobs are `lvc` processes), but its unit
    // tests link the workflow library, which references tch: they need
    // libtorch in the rpath. Users of the library link it with their own.
    link_libtorch(&[]);
}
