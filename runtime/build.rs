include!("../build_support/libtorch_link.rs");

fn main() {
    link_libtorch(&["rustc-link-arg"]);
    compile_cuda_float32();
}

// src/cuda_float32.cpp sets libtorch's TF32 policy through ATen's Context,
// which tch has no binding for; it is compiled against the same libtorch
// headers (the wheel's, C++11 ABI) that torch-sys builds its own C++ with.
// A build script reports a missing prerequisite by panicking: cargo prints the
// message and stops the build.
#[allow(clippy::panic)]
fn compile_cuda_float32() {
    println!("cargo:rerun-if-changed=src/cuda_float32.cpp");
    let Ok(root) = std::env::var("LIBTORCH") else {
        panic!("LIBTORCH is not set: the project's .cargo/config.toml points it at .venv/libtorch (`make venv`)");
    };
    let include = std::path::Path::new(&root).join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("src/cuda_float32.cpp")
        .compile("lvc_cuda_float32");
}
