// Shared by the build scripts of every package whose binaries link libtorch
// (included with `include!`). Two things rustc would otherwise get wrong:
// * the binaries must find libtorch at run time without LD_LIBRARY_PATH, so the
//   library folder goes into the rpath (of every target: an rpath alone loads
//   nothing);
// * rustc links with `--as-needed`, which drops `libtorch_cuda.so` (nothing
//   references its symbols directly; it registers the CUDA backend from static
//   constructors), and CUDA then silently disappears. `--no-as-needed -ltorch`
//   keeps it, in the targets that `keep_cuda_in` names by the cargo
//   instruction that reaches them: `rustc-link-arg` (all),
//   `rustc-link-arg-bin=NAME`, `rustc-link-arg-tests`. The others link
//   libtorch only where they reference it.
fn link_libtorch(keep_cuda_in: &[&str]) {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(root) = std::env::var("LIBTORCH") else {
        return;
    };
    let lib = std::path::Path::new(&root).join("lib");
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    for instruction in keep_cuda_in {
        println!("cargo:{instruction}=-Wl,--no-as-needed");
        println!("cargo:{instruction}=-ltorch");
    }
}
