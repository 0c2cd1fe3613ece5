//! The panic boundary: every export runs its body through [`boundary`], so a Rust panic never
//! unwinds into C (undefined behaviour); the caller sees `TESSERA_RESULT_PANIC` (or NULL, 0, a
//! "rejected"/"unknown" value for functions that do not return a result code).

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::tessera_result;

/// What an export returns when its body panicked.
pub(crate) trait OnPanic {
    /// The value.
    fn on_panic() -> Self;
}

impl OnPanic for tessera_result {
    fn on_panic() -> Self {
        tessera_result::TESSERA_RESULT_PANIC
    }
}

impl<T> OnPanic for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
}

impl OnPanic for usize {
    fn on_panic() -> Self {
        0
    }
}

impl OnPanic for () {
    fn on_panic() -> Self {}
}

/// Run `body`, turning a panic into [`OnPanic::on_panic`].
pub(crate) fn boundary<R: OnPanic>(body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| R::on_panic())
}

/// Run a body written with `?`: `Ok(())` is `TESSERA_RESULT_OK`, `Err(code)` the code.
pub(crate) fn call(body: impl FnOnce() -> Result<(), tessera_result>) -> tessera_result {
    boundary(|| match body() {
        Ok(()) => tessera_result::TESSERA_RESULT_OK,
        Err(code) => code,
    })
}
