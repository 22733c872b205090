//! `--device` and `--tf32`, shared by every command that runs a net.

use lvc_runtime::device::{self, CudaFloat32, DeviceChoice};
use lvc_runtime::error::RuntimeError;
use lvc_runtime::tch;

#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// On CUDA, let cuDNN convolutions and cuBLAS matrix products round
    /// float32 inputs to TF32 (Ampere and later GPUs): FCN-8s trains about 3×
    /// faster on an H100, and activations and gradients move by 1e-4 to 1e-2
    /// (relative). Without it CUDA computes in full float32, as Caffe and the
    /// CPU do.
    #[arg(long)]
    pub tf32: bool,
}

impl DeviceArgs {
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

    fn args(device: &str, tf32: bool) -> DeviceArgs {
        DeviceArgs { device: device.to_string(), tf32 }
    }

    #[test]
    fn a_run_records_tf32_only_where_cuda_was_allowed_it() {
        assert_eq!(args("cuda", true).describe(), "cuda, tf32");
        assert_eq!(args("cuda:1", true).describe(), "cuda:1, tf32");
        assert_eq!(args("cuda", false).describe(), "cuda");
        assert_eq!(args("cpu", true).describe(), "cpu");
        assert_eq!(args("cuda", true).cuda_float32(), CudaFloat32::Tf32);
        assert_eq!(args("cuda", false).cuda_float32(), CudaFloat32::Ieee);
    }
}
