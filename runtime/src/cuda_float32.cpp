// libtorch's float32 policy on CUDA, which tch does not expose: whether cuDNN
// convolutions and cuBLAS matrix products may round their float32 inputs to
// TF32 (10-bit mantissa) on Ampere and later GPUs. libtorch lets cuDNN do so by
// default; lvc computes in full float32 unless asked (`--tf32`), so that a
// CUDA run reproduces Caffe's numbers as the CPU does. Called through
// `lvc_runtime::device::set_cuda_float32`.
#include <ATen/Context.h>

#include <cstdio>
#include <exception>

extern "C" int lvc_set_cuda_tf32(int allow, char* error, size_t error_len) noexcept {
  try {
    auto& context = at::globalContext();
    // The legacy setters keep the legacy flag and the per-op precisions
    // (cuDNN conv and RNN) consistent; mixing them with the per-op setters
    // makes libtorch's own checks fail.
    context.setAllowTF32CuDNN(allow != 0);
    context.setFloat32MatmulPrecision(allow != 0 ? "high" : "highest");
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(error, error_len, "%s", e.what());
    return 1;
  }
}

extern "C" int lvc_cuda_tf32_allowed(int* conv, int* matmul) noexcept {
  try {
    auto& context = at::globalContext();
    *conv = context.allowTF32CuDNN(at::Float32Op::CONV) ? 1 : 0;
    *matmul = context.allowTF32CuBLAS() ? 1 : 0;
    return 0;
  } catch (...) {
    return 1;
  }
}
