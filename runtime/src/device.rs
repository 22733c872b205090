//! Where a net runs: `--device cpu|cuda[:N]`, resolved against what libtorch
//! actually sees, and libtorch's intra-op thread count.

use std::fmt;
use std::str::FromStr;

use crate::error::RuntimeError;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| RuntimeError::UnknownDevice(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// What libtorch reports about CUDA on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaProbe {
    /// libtorch was built with CUDA and its CUDA backend is linked in.
    pub built_with_cuda: bool,
    pub device_count: usize,
}

impl CudaProbe {
    pub fn current() -> Self {
        CudaProbe {
            built_with_cuda: tch::utils::has_cuda(),
            device_count: usize::try_from(tch::Cuda::device_count()).unwrap_or(0),
        }
    }

    /// The device for a choice, or why CUDA cannot be used.
    pub fn resolve(&self, choice: DeviceChoice) -> Result<tch::Device, RuntimeError> {
        match choice {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda(index) => {
                let found = if !self.built_with_cuda || self.device_count == 0 {
                    // libtorch's has_cuda() is false both for CPU-only builds
                    // and for CUDA builds that see no driver, so say both.
                    Some(format!(
                        "libtorch found no usable CUDA device (CUDA available: {}, device count: {}): no NVIDIA GPU \
                         and driver are visible to this process, or libtorch was built without CUDA",
                        if self.built_with_cuda { "yes" } else { "no" },
                        self.device_count
                    ))
                } else if index >= self.device_count {
                    Some(format!(
                        "device cuda:{index} does not exist: libtorch sees {} CUDA device(s)",
                        self.device_count
                    ))
                } else {
                    None
                };
                match found {
                    Some(found) => Err(RuntimeError::NoCuda { found }),
                    None => Ok(tch::Device::Cuda(index)),
                }
            }
        }
    }
}

/// How float32 convolutions and matrix products run on CUDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CudaFloat32 {
    /// Full float32, as Caffe and lvc's CPU path compute (lvc's default;
    /// libtorch's own default lets cuDNN use TF32).
    #[default]
    Ieee,
    /// cuDNN convolutions and cuBLAS matrix products may round their inputs
    /// to TF32 (10-bit mantissa) on Ampere and later GPUs: FCN-8s ~3× faster
    /// on an H100, activations and gradients off by 1e-4 to 1e-2 (relative;
    /// docs/training.md, "CUDA").
    Tf32,
}

impl fmt::Display for CudaFloat32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CudaFloat32::Ieee => "float32",
            CudaFloat32::Tf32 => "tf32",
        })
    }
}

// src/cuda_float32.cpp (built by build.rs): ATen's Context, which tch does not bind.
extern "C" {
    fn lvc_set_cuda_tf32(
        allow: std::ffi::c_int,
        error: *mut std::ffi::c_char,
        error_len: usize,
    ) -> std::ffi::c_int;
    fn lvc_cuda_tf32_allowed(
        conv: *mut std::ffi::c_int,
        matmul: *mut std::ffi::c_int,
    ) -> std::ffi::c_int;
}

/// Sets libtorch's process-wide float32 policy for CUDA (the CPU is not
/// affected). It needs no GPU: it only sets libtorch's flags.
pub fn set_cuda_float32(math: CudaFloat32) -> Result<(), RuntimeError> {
    let mut error = [0 as std::ffi::c_char; 512];
    // SAFETY: the buffer outlives the call, which writes at most its length
    // (snprintf, NUL-terminated) and catches every C++ exception.
    let failed = unsafe {
        lvc_set_cuda_tf32(
            std::ffi::c_int::from(math == CudaFloat32::Tf32),
            error.as_mut_ptr(),
            error.len(),
        )
    };
    if failed == 0 {
        return Ok(());
    }
    // SAFETY: snprintf wrote a NUL-terminated string into the buffer.
    let message =
        unsafe { std::ffi::CStr::from_ptr(error.as_ptr()) }.to_string_lossy().into_owned();
    Err(RuntimeError::Torch {
        context: format!("setting CUDA's float32 math to {math}"),
        source: tch::TchError::Torch(message),
    })
}

/// Whether libtorch now lets cuDNN convolutions and cuBLAS matrix products
/// use TF32, as (conv, matmul).
pub fn cuda_tf32_allowed() -> Result<(bool, bool), RuntimeError> {
    let (mut conv, mut matmul) = (0, 0);
    // SAFETY: both pointers are valid for the call; the C++ side catches exceptions.
    let failed = unsafe { lvc_cuda_tf32_allowed(&mut conv, &mut matmul) };
    if failed != 0 {
        return Err(RuntimeError::Torch {
            context: "reading CUDA's float32 math".to_string(),
            source: tch::TchError::Torch("ATen's Context refused".to_string()),
        });
    }
    Ok((conv != 0, matmul != 0))
}

/// Resolves a device choice on this machine, sets how CUDA computes float32
/// (`math`), and sets libtorch's (and OpenBLAS's) CPU thread count to the
/// number of cores (libtorch's default can oversubscribe machines whose
/// cgroup limits the cores).
pub fn select(choice: DeviceChoice, math: CudaFloat32) -> Result<tch::Device, RuntimeError> {
    let device = CudaProbe::current().resolve(choice)?;
    set_cuda_float32(math)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads(i32::try_from(cores).unwrap_or(1));
    crate::gemm::set_num_threads(cores);
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("CUDA".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert_eq!("cuda:1".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(1));
        assert!(matches!("tpu".parse::<DeviceChoice>(), Err(RuntimeError::UnknownDevice(_))));
        assert!(matches!("cuda:x".parse::<DeviceChoice>(), Err(RuntimeError::UnknownDevice(_))));
    }

    #[test]
    fn cuda_without_gpu_is_a_clear_error() {
        let none = CudaProbe { built_with_cuda: true, device_count: 0 };
        let err = none.resolve(DeviceChoice::Cuda(0)).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::NoCuda { found } if found.contains("device count: 0"))
        );
        let cpu_build = CudaProbe { built_with_cuda: false, device_count: 0 };
        let err = cpu_build.resolve(DeviceChoice::Cuda(0)).unwrap_err();
        assert!(err.to_string().contains("CUDA available: no"), "{err}");
        let one = CudaProbe { built_with_cuda: true, device_count: 1 };
        assert_eq!(one.resolve(DeviceChoice::Cuda(0)).unwrap(), tch::Device::Cuda(0));
        assert!(one
            .resolve(DeviceChoice::Cuda(1))
            .unwrap_err()
            .to_string()
            .contains("1 CUDA device"));
        assert_eq!(none.resolve(DeviceChoice::Cpu).unwrap(), tch::Device::Cpu);
    }

    #[test]
    fn selecting_cuda_on_this_machine_matches_what_libtorch_sees() {
        let probe = CudaProbe::current();
        let result = select(DeviceChoice::Cuda(0), CudaFloat32::Ieee);
        if probe.device_count == 0 {
            let err = result.unwrap_err();
            assert!(matches!(err, RuntimeError::NoCuda { .. }));
        } else {
            assert_eq!(result.unwrap(), tch::Device::Cuda(0));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(tch::get_num_threads() as usize, cores);
        // The float32 policy is process-wide, so it is checked here, in the
        // one test that sets it: libtorch's default lets cuDNN use TF32.
        set_cuda_float32(CudaFloat32::Tf32).unwrap();
        assert_eq!(cuda_tf32_allowed().unwrap(), (true, true));
        select(DeviceChoice::Cpu, CudaFloat32::Ieee).unwrap();
        assert_eq!(cuda_tf32_allowed().unwrap(), (false, false));
    }
}
