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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::panic)] // the panic is what is tested
    fn a_panic_becomes_its_on_panic_value_and_never_unwinds() {
        assert_eq!(
            call(|| panic!("boom")),
            tessera_result::TESSERA_RESULT_PANIC
        );
        assert_eq!(
            call(|| Err(tessera_result::TESSERA_RESULT_TOO_LARGE)),
            tessera_result::TESSERA_RESULT_TOO_LARGE
        );
        assert_eq!(call(|| Ok(())), tessera_result::TESSERA_RESULT_OK);
        let p: *const u8 = boundary(|| panic!("boom"));
        assert!(p.is_null());
        assert_eq!(boundary::<usize>(|| panic!("boom")), 0);
        boundary::<()>(|| panic!("boom"));
    }
}
