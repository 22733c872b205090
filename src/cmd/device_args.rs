//! `--device` and `--tf32`, shared by every command that runs a net.

use lvc_runtime::error::RuntimeError;
use lvc_runtime::tch;
use lvc_workflow::device::DeviceSpec;

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
    /// The choice as the workflow takes it.
    pub fn spec(&self) -> DeviceSpec {
        DeviceSpec { device: self.device.clone(), tf32: self.tf32 }
    }

    /// The device on this machine, with libtorch set up for it.
    pub fn select(&self) -> Result<tch::Device, RuntimeError> {
        self.spec().select()
    }

    /// As a run records it (see [`DeviceSpec::describe`]).
    pub fn describe(&self) -> String {
        self.spec().describe()
    }
}
