include!("build_support/libtorch_link.rs");

fn main() {
    // `lvc-torch` runs the nets (CUDA included); the integration tests call tch
    // directly and probe CUDA.
    link_libtorch(&["rustc-link-arg-bin=lvc-torch", "rustc-link-arg-tests"]);
    // `lvc` must not load libtorch (src/main.rs). Nothing it runs calls into
    // tch, but the lib it links is one archive with the torch commands, so the
    // linker still pulls tch's C++ wrapper (torch_api.o) out of libtorch_sys.
    // That object's inline c10/ATen functions are also defined in libtorch_cpu,
    // so lld exports them (they "may interpose"), which keeps them alive through
    // --gc-sections and keeps libtorch_cpu and libc10 as needed libraries.
    // Exporting nothing from archives lets --gc-sections drop them and
    // --as-needed drop libtorch (tests/two_binaries.rs checks the result).
    println!("cargo:rustc-link-arg-bin=lvc=-Wl,--exclude-libs=ALL");
}
