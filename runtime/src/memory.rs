//! Refusing a net before it is allocated when it cannot fit: the compiler's
//! estimate of what the plan needs ([`lvc_compiler::memory`], at the shapes
//! the plan was compiled for, so at the real batch size) against the memory
//! the device has free. Without this a net that needs terabytes gets as far
//! as a filler or a libtorch allocation and aborts the process ("memory
//! allocation … failed", "can't allocate memory"), or on Linux, whose
//! allocations succeed until the pages are touched, is killed by the OOM
//! killer part-way through.
//!
//! What "available" means: on the CPU, the kernel's `MemAvailable`, lowered
//! to what the process's memory cgroup still allows when it has a limit
//! (v2 `memory.max − memory.current`, v1 `memory.limit_in_bytes −
//! memory.usage_in_bytes`); on CUDA, the device's free memory as the CUDA
//! runtime reports it (`cudaMemGetInfo`, found in the libcudart libtorch
//! loaded; memory libtorch's caching allocator holds but does not use counts
//! as taken). Where it cannot be found out (no `/proc`, a CUDA runtime
//! without the symbol), nothing is refused.

use lvc_compiler::memory::{MemoryEstimate, Mode};
use lvc_compiler::ops::common::bytes_text;
use tch::Device;

use crate::error::RuntimeError;

/// Free memory of a device, in bytes, and where the number comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    /// `MemAvailable`, `the memory cgroup's limit`, `cudaMemGetInfo on cuda:0`.
    pub source: String,
}

/// What `device` has free now; `None` when it cannot be told.
pub fn available(device: Device) -> Option<Available> {
    match device {
        Device::Cuda(index) => cuda_free(index),
        _ => cpu_available(),
    }
}

/// `Err(lvc::runtime::memory)` when `estimate` is more than `device` has
/// free.
pub fn ensure_fits(estimate: &MemoryEstimate, device: Device) -> Result<(), RuntimeError> {
    let Some(free) = available(device) else { return Ok(()) };
    check(estimate, device, &free)
}

/// [`ensure_fits`] against a known amount of free memory.
pub fn check(
    estimate: &MemoryEstimate,
    device: Device,
    free: &Available,
) -> Result<(), RuntimeError> {
    if estimate.total() <= free.bytes {
        return Ok(());
    }
    let purpose = match estimate.mode {
        Mode::Inference => "to run",
        Mode::Training { .. } => "to train",
    };
    let on = match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "this machine".to_string(),
    };
    Err(RuntimeError::Memory {
        need: format!("{purpose}, this net needs {estimate}"),
        available: format!("{on} has {} available ({})", bytes_text(u128::from(free.bytes)), free.source),
        help: "make the net smaller (a smaller batch or input shape, fewer outputs per layer), or run it on a \
               machine with more memory; `lvc check --memory` shows where the memory goes"
            .to_string(),
    })
}

fn cpu_available() -> Option<Available> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let mut free = Available { bytes: kb.saturating_mul(1024), source: "MemAvailable".to_string() };
    if let Some(left) = cgroup_left() {
        if left < free.bytes {
            free = Available {
                bytes: left,
                source: "what the memory cgroup's limit leaves".to_string(),
            };
        }
    }
    Some(free)
}

/// What the process's memory cgroup still allows, when it has a limit.
fn cgroup_left() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read =
        |path: &str| std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok());
    // A cgroup that looks unlimited: v1 writes "no limit" as ~2^63.
    let limited = |limit: u64| limit < 1 << 60;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        // Inside a container the cgroup is often mounted as the root.
        let candidates: Vec<(String, String)> = if id == "0" && controllers.is_empty() {
            [format!("/sys/fs/cgroup{path}"), "/sys/fs/cgroup".to_string()]
                .into_iter()
                .map(|dir| (format!("{dir}/memory.max"), format!("{dir}/memory.current")))
                .collect()
        } else if controllers.split(',').any(|c| c == "memory") {
            [format!("/sys/fs/cgroup/memory{path}"), "/sys/fs/cgroup/memory".to_string()]
                .into_iter()
                .map(|dir| {
                    (format!("{dir}/memory.limit_in_bytes"), format!("{dir}/memory.usage_in_bytes"))
                })
                .collect()
        } else {
            continue;
        };
        for (limit, usage) in candidates {
            if let (Some(limit), Some(usage)) = (read(&limit), read(&usage)) {
                if limited(limit) {
                    return Some(limit.saturating_sub(usage));
                }
                break;
            }
        }
    }
    None
}

/// `cudaMemGetInfo` for device `index`, through the CUDA runtime libtorch
/// loaded (tch binds no such call; looking the symbols up at run time needs
/// no CUDA headers or libraries to build, and finds nothing on a CPU-only
/// libtorch). The current device is restored afterwards.
fn cuda_free(index: usize) -> Option<Available> {
    type GetDevice = unsafe extern "C" fn(*mut libc::c_int) -> libc::c_int;
    type SetDevice = unsafe extern "C" fn(libc::c_int) -> libc::c_int;
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> libc::c_int;
    let symbol = |name: &std::ffi::CStr| {
        // SAFETY: dlsym with RTLD_DEFAULT only looks a name up in the
        // libraries already loaded; a null result is handled.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        (!p.is_null()).then_some(p)
    };
    let (get, set, info) =
        (symbol(c"cudaGetDevice")?, symbol(c"cudaSetDevice")?, symbol(c"cudaMemGetInfo")?);
    let device = libc::c_int::try_from(index).ok()?;
    // SAFETY: the symbols are the CUDA runtime's functions of these
    // signatures (cuda_runtime_api.h); every pointer passed is valid for the
    // call, and each call's status is checked.
    unsafe {
        let get = std::mem::transmute::<*mut libc::c_void, GetDevice>(get);
        let set = std::mem::transmute::<*mut libc::c_void, SetDevice>(set);
        let info = std::mem::transmute::<*mut libc::c_void, MemGetInfo>(info);
        let mut current: libc::c_int = 0;
        if get(&mut current) != 0 || set(device) != 0 {
            return None;
        }
        let (mut free, mut total) = (0usize, 0usize);
        let status = info(&mut free, &mut total);
        set(current);
        (status == 0).then(|| Available {
            bytes: u64::try_from(free).unwrap_or(u64::MAX),
            source: format!(
                "cudaMemGetInfo: {} of {} free",
                bytes_text(free as u128),
                bytes_text(total as u128)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvc_compiler::memory::NetMemory;

    fn needing(bytes: u64, mode: Mode) -> MemoryEstimate {
        NetMemory {
            parameters: bytes / 2,
            learnable: 0,
            activations: bytes / 2,
            largest_blob: 0,
            columns: 0,
        }
        .estimate(mode)
    }

    #[test]
    fn refuses_what_does_not_fit_and_says_why() {
        let free = Available { bytes: 23_000_000_000, source: "MemAvailable".into() };
        let fits = needing(1_000_000_000, Mode::Inference);
        assert!(check(&fits, Device::Cpu, &free).is_ok());
        let err = check(
            &needing(154_000_000_000, Mode::Training { history_blobs: 0 }),
            Device::Cpu,
            &free,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "to train, this net needs 154 GB (parameters 77 GB, activations 77 GB"
            ),
            "{text}"
        );
        assert!(text.ends_with(", but this machine has 23 GB available (MemAvailable)"), "{text}");
        assert_eq!(
            miette::Diagnostic::code(&err).map(|c| c.to_string()).as_deref(),
            Some("lvc::runtime::memory")
        );
    }

    #[test]
    fn this_machine_reports_its_memory() {
        // Linux always has /proc/meminfo; a CUDA query without a GPU finds
        // no runtime (CPU libtorch) or no device, and refuses nothing.
        if std::path::Path::new("/proc/meminfo").exists() {
            let free = available(Device::Cpu).expect("MemAvailable");
            assert!(free.bytes > 0);
        }
        if tch::Cuda::device_count() == 0 {
            assert!(ensure_fits(&needing(u64::MAX, Mode::Inference), Device::Cuda(0)).is_ok());
        } else {
            let free = available(Device::Cuda(0)).expect("cudaMemGetInfo on a machine with a GPU");
            assert!(free.bytes > 0, "{free:?}");
            assert!(ensure_fits(&needing(u64::MAX, Mode::Inference), Device::Cuda(0)).is_err());
        }
    }
}
