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
    link_openblas(&lib);
}

// OpenBLAS (the PyPI `scipy-openblas32` wheel that `make venv` installs
// beside torch) runs the CPU GEMMs of lvc-runtime's `GemmConv` faster than
// libtorch's bundled MKL on these machines (see `lvc_runtime::gemm`). Found
// next to the torch folder, it is linked (symbols `scipy_cblas_*`), put into
// the rpath, and announced to the code as `cfg(lvc_openblas)`; without it the
// runtime keeps libtorch's GEMM.
fn link_openblas(torch_lib: &std::path::Path) {
    println!("cargo:rustc-check-cfg=cfg(lvc_openblas)");
    let Some(site_packages) = torch_lib.parent().and_then(std::path::Path::parent) else {
        return;
    };
    let lib = site_packages.join("scipy_openblas32").join("lib");
    let file = lib.join("libscipy_openblas.so");
    if !file.is_file() {
        // Rebuilt once the wheel appears (the folder changes when it is installed).
        println!("cargo:rerun-if-changed={}", site_packages.display());
        return;
    }
    println!("cargo:rerun-if-changed={}", file.display());
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=scipy_openblas");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-cfg=lvc_openblas");
}
