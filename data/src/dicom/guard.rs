//! Running third-party decoding code that may panic on malformed input.
//!
//! The decoding crates index out of bounds on some corrupt files (see
//! shared/notes/dicom_rs_facts.md). `catch_panic` turns such a panic into a
//! value, and keeps the default hook from printing a backtrace message for
//! it: the hook is wrapped once, process-wide, and stays quiet only on a
//! thread that is inside `catch_panic` — other threads' panics (tests
//! included) still print as usual.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static QUIET_DEPTH: Cell<u32> = const { Cell::new(0) };
}

static INSTALL_HOOK: Once = Once::new();

fn install_quiet_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET_DEPTH.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

/// Resets the depth even when `f` unwinds.
struct QuietScope;

impl QuietScope {
    fn enter() -> Self {
        QUIET_DEPTH.with(|d| d.set(d.get() + 1));
        QuietScope
    }
}

impl Drop for QuietScope {
    fn drop(&mut self) {
        QUIET_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs `f`; a panic inside it comes back as `Err(message)`.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    let _scope = QuietScope::enter();
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_error_with_its_message() {
        let r: Result<(), String> = catch_panic(|| panic!("index 7 out of range"));
        assert_eq!(r, Err("index 7 out of range".to_string()));
        assert_eq!(catch_panic(|| 41 + 1), Ok(42));
        assert_eq!(QUIET_DEPTH.with(Cell::get), 0, "depth restored after unwinding");
    }
}
