//! Which device a workflow step runs its nets on, chosen when the step
//! needs it (so that a bad choice is reported where it always was).

use lvc_runtime::device::{self, CudaFloat32, DeviceChoice};
use lvc_runtime::error::RuntimeError;
use lvc_runtime::tch;

/// `cpu`, `cuda` or `cuda:N`, and whether CUDA may round float32 to TF32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub device: String,
    pub tf32: bool,
}

impl DeviceSpec {
    /// TF32 or full float32 on CUDA.
    pub fn cuda_float32(&self) -> CudaFloat32 {
        if self.tf32 {
            CudaFloat32::Tf32
        } else {
            CudaFloat32::Ieee
        }
    }

    /// The device on this machine, with libtorch set up for it.
    pub fn select(&self) -> Result<tch::Device, RuntimeError> {
        let choice: DeviceChoice = self.device.parse()?;
        device::select(choice, self.cuda_float32())
    }

    /// As a run records it: `cuda`, or `cuda, tf32` where CUDA was allowed
    /// TF32 (the flag changes nothing on the CPU).
    pub fn describe(&self) -> String {
        match (self.device.parse::<DeviceChoice>(), self.cuda_float32()) {
            (Ok(DeviceChoice::Cuda(_)), CudaFloat32::Tf32) => format!("{}, tf32", self.device),
            _ => self.device.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(device: &str, tf32: bool) -> DeviceSpec {
        DeviceSpec { device: device.to_string(), tf32 }
    }

    #[test]
    fn a_run_records_tf32_only_where_cuda_was_allowed_it() {
        assert_eq!(spec("cuda", true).describe(), "cuda, tf32");
        assert_eq!(spec("cuda:1", true).describe(), "cuda:1, tf32");
        assert_eq!(spec("cuda", false).describe(), "cuda");
        assert_eq!(spec("cpu", true).describe(), "cpu");
        assert_eq!(spec("cuda", true).cuda_float32(), CudaFloat32::Tf32);
        assert_eq!(spec("cuda", false).cuda_float32(), CudaFloat32::Ieee);
    }
}
