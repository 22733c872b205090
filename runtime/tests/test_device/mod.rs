//! The device the runtime's integration tests build their nets on: the CPU,
//! or the device `LVC_TEST_DEVICE` names (`cuda`, `cuda:1`) so that a GPU
//! machine runs the same goldens and checks on CUDA, in full float32 as the
//! commands do by default. A named device that libtorch cannot use fails the
//! test instead of quietly testing the CPU.

use lvc_runtime::device::{select, CudaFloat32, DeviceChoice};
use lvc_runtime::tch::Device;

pub fn test_device() -> Device {
    match std::env::var("LVC_TEST_DEVICE") {
        Ok(name) => {
            let choice: DeviceChoice =
                name.parse().unwrap_or_else(|e| panic!("LVC_TEST_DEVICE={name}: {e}"));
            select(choice, CudaFloat32::Ieee)
                .unwrap_or_else(|e| panic!("LVC_TEST_DEVICE={name}: {e}"))
        }
        Err(_) => Device::Cpu,
    }
}
