//! Float32 CPU tensors as plain memory, for the layers and GEMMs that
//! compute on it directly (`crate::ops`, `crate::gemm`).

use tch::Tensor;

/// The elements of a contiguous float32 CPU tensor, for layers that compute
/// on memory directly (`None` for any other tensor).
pub(crate) fn cpu_f32(t: &Tensor) -> Option<&[f32]> {
    if !is_cpu_f32(t) {
        return None;
    }
    if t.numel() == 0 {
        return Some(&[]);
    }
    // SAFETY: a contiguous float32 CPU tensor holds numel() f32s from
    // data_ptr(); the slice borrows `t`, which keeps the storage alive.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) })
}

/// As [`cpu_f32`], writable: for a tensor the caller just allocated (no
/// other tensor shares its storage while the slice lives).
pub(crate) fn cpu_f32_mut(t: &mut Tensor) -> Option<&mut [f32]> {
    if !is_cpu_f32(t) {
        return None;
    }
    if t.numel() == 0 {
        return Some(&mut []);
    }
    // SAFETY: as in `cpu_f32`; `t` is borrowed mutably for the slice's life.
    Some(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) })
}

fn is_cpu_f32(t: &Tensor) -> bool {
    t.device() == tch::Device::Cpu && t.kind() == tch::Kind::Float && t.is_contiguous()
}
