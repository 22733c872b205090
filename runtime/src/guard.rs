//! libtorch errors that reach lvc as panics, turned back into errors.
//!
//! tch's ops without the `f_` prefix unwrap libtorch's C++ error and panic:
//! an allocation libtorch refuses ("DefaultCPUAllocator: can't allocate
//! memory", "CUDA out of memory") would end the process with a Rust panic
//! and a backtrace. The memory estimate refuses nets that clearly cannot
//! fit before anything is allocated ([`crate::memory`]); what can still fail
//! (a net near the limit, memory taken by another process meanwhile) is
//! caught here, at the few places that run a whole pass: the forward pass
//! ([`crate::exec::Net`]), a solver step, `lvc time`'s loop. The lowered ops
//! keep tch's plain methods, which read as the maths they do.
//!
//! Only tch's libtorch errors are caught; any other panic is a bug and goes
//! on as a panic, printed as usual. The panic message of a caught one is
//! not printed (a hook installed once stays quiet for it), so the user sees
//! one error naming what lvc was doing and libtorch's first line.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::error::RuntimeError;

thread_local! {
    /// Inside [`catch_torch`] on this thread.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// The prefix of a tch error's panic message (`Result::unwrap` of a
/// `TchError::Torch`).
const TCH_PANIC: &str = "called `Result::unwrap()` on an `Err` value: Torch(\"";

/// Runs `f`; a libtorch error tch panicked with comes back as
/// `RuntimeError::Torch` (`lvc::runtime::torch`) naming `context()`.
pub fn catch_torch<T>(
    context: impl FnOnce() -> String,
    f: impl FnOnce() -> T,
) -> Result<T, RuntimeError> {
    install_hook();
    let outer = CATCHING.with(|c| c.replace(true));
    // The closure's state is dropped with the panic: nothing of it is used
    // after an error, so unwind safety holds for what the caller sees.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    match result {
        Ok(value) => Ok(value),
        Err(payload) => match torch_message(payload.as_ref()) {
            Some(message) => Err(RuntimeError::Torch {
                context: context(),
                source: tch::TchError::Torch(message),
            }),
            None => panic::resume_unwind(payload),
        },
    }
}

/// libtorch's first line, from a tch panic's payload.
fn torch_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    let debug = text.strip_prefix(TCH_PANIC)?;
    // The rest is the Debug form of libtorch's message: escaped, then the
    // C++ backtrace after the first (escaped) newline.
    let first = debug.split("\\n").next().unwrap_or(debug).trim_end_matches("\")");
    Some(first.replace("\\\"", "\"").replace("\\'", "'"))
}

/// Wraps the panic hook once: quiet for tch errors inside [`catch_torch`],
/// the previous hook for everything else.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let caught = CATCHING.with(Cell::get) && torch_message(info.payload()).is_some();
            if !caught {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_error_becomes_an_error() {
        // 2^62 float32 values: libtorch refuses to allocate them at once.
        let result = catch_torch(
            || "allocating a test tensor".into(),
            || tch::Tensor::zeros([1 << 31, 1 << 31], (tch::Kind::Float, tch::Device::Cpu)).size(),
        );
        let err = result.expect_err("libtorch cannot allocate 2^62 floats");
        let text = err.to_string();
        assert!(text.starts_with("libtorch failed in allocating a test tensor: "), "{text}");
        assert!(!text.contains("frame #"), "only libtorch's first line: {text}");
        assert_eq!(catch_torch(String::new, || 7).unwrap(), 7);
    }

    #[test]
    fn other_panics_stay_panics() {
        let outer = panic::catch_unwind(|| catch_torch(String::new, || panic!("a bug")));
        assert!(outer.is_err());
    }
}
