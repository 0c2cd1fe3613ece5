//! The guest side of the C ABI: a KBS client handle, `get_secret` with evidence from a C
//! callback, and the secret buffer that zeroizes on free.

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use serde_json::Value;
use tessera::{Evidence, MAX_EVIDENCE_LEN};
use tessera_guest::client::{Client, ClientError, ClientOptions, RetryPolicy};
use zeroize::Zeroizing;

use crate::error::{client_code, tessera_result};
use crate::panic::{boundary, call};
use crate::{bytes, clear_out, free, handle, handle_mut, optional_text, put, text};

use tessera_result as R;

/// A client of one key broker (KBS 0.4.0). Thread-safe: share one `const tessera_client *`
/// between threads; each `tessera_client_get_secret` runs its own session.
#[derive(Debug)]
pub struct tessera_client {
    client: Client,
}

/// Make a client for `base_url` (`https://host[:port][/prefix]`; plain `http://` only to
/// loopback). `ca_pem` pins the CA certificates (PEM) to trust; NULL (with length 0) trusts
/// Mozilla's roots instead, and a non-NULL `ca_pem` with length 0 (an empty file read) is
/// refused, never taken as "no pin". `handshake_attempts` is how often the handshake is tried
/// while the error is worth retrying, one second apart (0: the default, 5; at most 100).
///
/// Sets `*out` to NULL first; writes the client there on success. Returns
/// `TESSERA_RESULT_CLIENT_CONFIG` for a bad URL or CA (an empty one included),
/// `TESSERA_RESULT_INVALID_ARGUMENT` for more than 100 attempts.
///
/// # Safety
/// `base_url` is NULL or a NUL-terminated string; `ca_pem` is NULL or valid for reads of
/// `ca_pem_len` bytes; neither is modified during the call; `out` is NULL or valid for writing
/// one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_client_new(
    base_url: *const c_char,
    ca_pem: *const u8,
    ca_pem_len: usize,
    handshake_attempts: u32,
    out: *mut *mut tessera_client,
) -> tessera_result {
    call(|| {
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }?;
        // SAFETY: forwarded contract.
        let url = unsafe { text(base_url) }?;
        // SAFETY: forwarded contract.
        let ca = unsafe { bytes(ca_pem, ca_pem_len) }?;
        if !ca_pem.is_null() && ca.is_empty() {
            // A pin that is empty must not become Mozilla's roots.
            return Err(R::TESSERA_RESULT_CLIENT_CONFIG);
        }
        if handshake_attempts > MAX_HANDSHAKE_ATTEMPTS {
            return Err(R::TESSERA_RESULT_INVALID_ARGUMENT);
        }
        let defaults = RetryPolicy::default();
        let options = ClientOptions {
            ca_pem: (!ca_pem.is_null()).then(|| ca.to_vec()),
            retry: RetryPolicy {
                handshake_attempts: if handshake_attempts == 0 {
                    defaults.handshake_attempts
                } else {
                    handshake_attempts
                },
                handshake_delay: Duration::from_secs(1),
                resource_attempts: defaults.resource_attempts,
            },
            ..ClientOptions::default()
        };
        let client = Client::new(url, options).map_err(|e| client_code(&e))?;
        // SAFETY: `out` checked non-NULL; writable by the caller's contract.
        unsafe { put(out, tessera_client { client }) };
        Ok(())
    })
}

/// Free a client; NULL is fine. No other thread may be using it.
///
/// # Safety
/// `client` is NULL or a live client, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_client_free(client: *mut tessera_client) {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { free(client) });
}

/// Most handshake attempts a client may be given (one second apart).
const MAX_HANDSHAKE_ATTEMPTS: u32 = 100;

/// Where the evidence callback puts the evidence. Valid only during the callback.
#[derive(Debug, Default)]
pub struct tessera_evidence_buffer {
    data: Option<Vec<u8>>,
}

/// Give the evidence (copied): raw bytes of any form Tessera reads (a raw or extended SEV-SNP
/// report, a TDX quote, ...), or the KBS evidence JSON. A second call replaces the first.
///
/// Returns `TESSERA_RESULT_TOO_LARGE` over 16 MiB (checked before `data` is read).
///
/// # Safety
/// `buffer` is NULL or the buffer passed to the running callback; `data` is NULL or valid for
/// reads of `len` bytes, not modified during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_evidence_buffer_set(
    buffer: *mut tessera_evidence_buffer,
    data: *const u8,
    len: usize,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let buffer = unsafe { handle_mut(buffer) }?;
        if len > MAX_EVIDENCE_LEN {
            return Err(R::TESSERA_RESULT_TOO_LARGE);
        }
        // SAFETY: forwarded contract.
        let data = unsafe { bytes(data, len) }?;
        buffer.data = Some(data.to_vec());
        Ok(())
    })
}

/// The evidence callback: given the 64-byte REPORT_DATA the broker's challenge asks for (at
/// `report_data`, `report_data_len` is 64), get evidence carrying it from the TEE and hand it
/// over with `tessera_evidence_buffer_set(evidence, ...)`. Return 0 on success, anything else on
/// failure (the fetch then fails with `TESSERA_RESULT_EVIDENCE_CALLBACK`). Called on the thread
/// that called `tessera_client_get_secret`, possibly more than once (retries). It must return:
/// a C++ exception, `longjmp` or other unwinding out of it is undefined behaviour.
pub type tessera_evidence_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        report_data: *const u8,
        report_data_len: usize,
        evidence: *mut tessera_evidence_buffer,
    ) -> c_int,
>;

/// A secret released by the broker. Its bytes are zeroized when it is freed.
pub struct tessera_secret {
    data: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for tessera_secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("tessera_secret(..)")
    }
}

/// The callback's bytes as the evidence JSON sent to the broker: JSON as it is, raw evidence in
/// its KBS JSON form.
fn evidence_json(data: &[u8]) -> Result<Value, ClientError> {
    let bad = |reason: String| ClientError::Evidence { reason };
    if data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return serde_json::from_slice(data)
            .map_err(|e| bad(format!("the callback's JSON does not parse: {e}")));
    }
    let evidence = Evidence::from_bytes(data).map_err(|e| bad(e.to_string()))?;
    Ok(evidence.to_kbs_json())
}

/// Write `message` NUL-terminated into `buf` (cut to fit). Nothing when `buf` is NULL.
///
/// # Safety
/// `buf` is NULL or valid for writes of `cap` bytes.
unsafe fn write_message(buf: *mut c_char, cap: usize, message: &str) {
    if buf.is_null() || cap == 0 {
        return;
    }
    let mut end = message.len().min(cap - 1);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let text = message.as_bytes().get(..end).unwrap_or_default();
    // SAFETY: `buf` is valid for `cap` bytes and `end < cap`; the regions do not overlap
    // (`message` is Rust-owned).
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), end);
        buf.add(end).write(0);
    }
}

/// Fetch a secret: open a session with the broker, get evidence for its challenge from
/// `callback` (with `userdata`), attest, and fetch and decrypt `resource`
/// (`repo/type/tag[?version=N]`). `tee` is the KBS TEE name (`snp`, `tdx`, ...); `init_data`
/// (may be NULL) the init-data TOML. `*out` is set to NULL first (when `out` is not NULL),
/// before any check; on success it holds the secret.
///
/// On failure, when `message` is not NULL, a NUL-terminated message naming the step and the
/// check (cut to `message_len` bytes) is written there, for every failure: an argument that was
/// NULL or not UTF-8 (`out` included), a broker or callback failure, and a caught panic
/// (`TESSERA_RESULT_PANIC`); it never holds secret, token or session material.
///
/// # Safety
/// `client` is NULL or a live client; `tee`, `resource`, `init_data` are NULL or NUL-terminated
/// strings, not modified during the call; `callback` is NULL or a function that follows
/// `tessera_evidence_callback`'s contract; `message` is NULL or valid for writes of
/// `message_len` bytes; `out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // a C signature: no struct to bundle them in
pub unsafe extern "C" fn tessera_client_get_secret(
    client: *const tessera_client,
    tee: *const c_char,
    resource: *const c_char,
    init_data: *const c_char,
    callback: tessera_evidence_callback,
    userdata: *mut c_void,
    message: *mut c_char,
    message_len: usize,
    out: *mut *mut tessera_secret,
) -> tessera_result {
    let rc = call(|| {
        // An argument error is said in `message` too, like every other failure.
        let say = |what: &str, code: R| -> R {
            // SAFETY: `message` is NULL or valid for `message_len` bytes (the caller's
            // contract).
            unsafe { write_message(message, message_len, what) };
            code
        };
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }.map_err(|c| say("argument out: NULL", c))?;
        // SAFETY: forwarded contract.
        let client = unsafe { handle(client) }.map_err(|c| say("argument client: NULL", c))?;
        // SAFETY: forwarded contract.
        let tee = unsafe { text(tee) }.map_err(|c| say("argument tee: NULL or not UTF-8", c))?;
        // SAFETY: forwarded contract.
        let resource = unsafe { text(resource) }
            .map_err(|c| say("argument resource: NULL or not UTF-8", c))?;
        // SAFETY: forwarded contract.
        let init_data = unsafe { optional_text(init_data) }
            .map_err(|c| say("argument init_data: not UTF-8", c))?;
        let callback = callback
            .ok_or(R::TESSERA_RESULT_NULL_POINTER)
            .map_err(|c| say("argument callback: NULL", c))?;
        let mut evidence_for = |report_data: &[u8; 64]| -> Result<Value, ClientError> {
            let mut buffer = tessera_evidence_buffer::default();
            // SAFETY: the callback's contract; `report_data` is 64 readable bytes and `buffer`
            // a live buffer, both for the duration of the call.
            let rc = unsafe {
                callback(
                    userdata,
                    report_data.as_ptr(),
                    report_data.len(),
                    &mut buffer,
                )
            };
            if rc != 0 {
                return Err(ClientError::Evidence {
                    reason: format!("the evidence callback returned {rc}"),
                });
            }
            let data = buffer.data.ok_or_else(|| ClientError::Evidence {
                reason: String::from("the evidence callback set no evidence"),
            })?;
            evidence_json(&data)
        };
        match client
            .client
            .get_secret(tee, resource, init_data, &mut evidence_for)
        {
            Ok(data) => {
                // SAFETY: `out` checked non-NULL; writable by the caller's contract.
                unsafe { put(out, tessera_secret { data }) };
                Ok(())
            }
            Err(e) => {
                // SAFETY: forwarded contract.
                unsafe { write_message(message, message_len, &e.to_string()) };
                Err(client_code(&e))
            }
        }
    });
    // SAFETY: forwarded contract.
    unsafe { say_panic(rc, message, message_len) }
}

/// `rc`, after writing a message for it into `message` when it is `TESSERA_RESULT_PANIC`: the
/// one failure the call itself could not describe (the header promises a message on every
/// failure).
///
/// # Safety
/// As [`write_message`].
unsafe fn say_panic(
    rc: tessera_result,
    message: *mut c_char,
    message_len: usize,
) -> tessera_result {
    if rc == R::TESSERA_RESULT_PANIC {
        // SAFETY: forwarded contract.
        unsafe {
            write_message(
                message,
                message_len,
                "internal error: a panic was caught at the C boundary",
            );
        };
    }
    rc
}

/// The secret's bytes (owned by the handle: valid until it is freed), NULL for NULL. For an
/// empty secret (length 0) the pointer is not NULL but must not be read.
///
/// # Safety
/// `secret` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_secret_data(secret: *const tessera_secret) -> *const u8 {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { secret.as_ref() }.map_or(std::ptr::null(), |s| s.data.as_ptr())
    })
}

/// The secret's length in bytes, 0 for NULL.
///
/// # Safety
/// `secret` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_secret_len(secret: *const tessera_secret) -> usize {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { secret.as_ref() }.map_or(0, |s| s.data.len())
    })
}

/// Zeroize and free a secret; NULL is fine.
///
/// # Safety
/// `secret` is NULL or live, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_secret_free(secret: *mut tessera_secret) {
    // SAFETY: forwarded contract. Dropping the `Zeroizing` buffer zeroizes it.
    boundary(|| unsafe { free(secret) });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer after `say_panic(rc)` over a buffer of `cap` bytes filled with 0xAA.
    fn said(rc: tessera_result, cap: usize) -> (tessera_result, Vec<u8>) {
        let mut buf = vec![0xAAu8; cap];
        // SAFETY: `buf` is valid for `cap` bytes.
        let back = unsafe { say_panic(rc, buf.as_mut_ptr().cast::<c_char>(), cap) };
        (back, buf)
    }

    #[test]
    fn evidence_over_16_mib_is_too_large_and_a_second_set_replaces_the_first() {
        let mut buffer = tessera_evidence_buffer::default();
        let big = vec![0u8; MAX_EVIDENCE_LEN + 1];
        // SAFETY: a live buffer; `big` is valid for its length.
        let rc = unsafe { tessera_evidence_buffer_set(&raw mut buffer, big.as_ptr(), big.len()) };
        assert_eq!(rc, R::TESSERA_RESULT_TOO_LARGE);
        assert!(buffer.data.is_none());
        // SAFETY: the size is refused before `data` is read (a length over `isize::MAX` too).
        let rc = unsafe { tessera_evidence_buffer_set(&raw mut buffer, big.as_ptr(), usize::MAX) };
        assert_eq!(rc, R::TESSERA_RESULT_TOO_LARGE);
        let at_most = big.get(..MAX_EVIDENCE_LEN).unwrap_or_default();
        // SAFETY: a live buffer; `at_most` is valid for its length.
        let rc = unsafe {
            tessera_evidence_buffer_set(&raw mut buffer, at_most.as_ptr(), at_most.len())
        };
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        // SAFETY: as above.
        let rc = unsafe { tessera_evidence_buffer_set(&raw mut buffer, b"ab".as_ptr(), 2) };
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        assert_eq!(buffer.data.as_deref(), Some(&b"ab"[..]));
    }

    /// A callback that must not be called.
    unsafe extern "C" fn never(
        _: *mut c_void,
        _: *const u8,
        _: usize,
        _: *mut tessera_evidence_buffer,
    ) -> c_int {
        1
    }

    #[test]
    fn get_secret_with_a_null_out_says_so_and_a_failed_call_leaves_out_null() {
        let mut client = std::ptr::null_mut();
        // SAFETY: a NUL-terminated URL, no CA, a valid out-pointer.
        let rc = unsafe {
            tessera_client_new(
                c"http://127.0.0.1:1".as_ptr(),
                std::ptr::null(),
                0,
                1,
                &raw mut client,
            )
        };
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        let mut message = [0u8; 64];
        // SAFETY: live client, NUL-terminated strings, a callback that follows the contract,
        // a message buffer of its length; `out` NULL is allowed.
        let rc = unsafe {
            tessera_client_get_secret(
                client,
                c"snp".as_ptr(),
                c"a/b/c".as_ptr(),
                std::ptr::null(),
                Some(never),
                std::ptr::null_mut(),
                message.as_mut_ptr().cast(),
                message.len(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, R::TESSERA_RESULT_NULL_POINTER);
        assert!(message.starts_with(b"argument out: NULL\0"));
        // A stale pointer in `out` is cleared though the call fails (here: a bad resource).
        let mut out: *mut tessera_secret = std::ptr::dangling_mut();
        // SAFETY: as above, with a writable `out`.
        let rc = unsafe {
            tessera_client_get_secret(
                client,
                c"snp".as_ptr(),
                c"not-a-path".as_ptr(),
                std::ptr::null(),
                Some(never),
                std::ptr::null_mut(),
                message.as_mut_ptr().cast(),
                message.len(),
                &raw mut out,
            )
        };
        assert_eq!(rc, R::TESSERA_RESULT_CLIENT_CONFIG);
        assert!(out.is_null());
        // SAFETY: the client, freed once.
        unsafe { tessera_client_free(client) };
    }

    #[test]
    fn a_caught_panic_is_said_in_the_message_and_nothing_else_is_written() {
        let (rc, buf) = said(R::TESSERA_RESULT_PANIC, 64);
        assert_eq!(rc, R::TESSERA_RESULT_PANIC);
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        assert!(end < 64);
        assert!(buf.starts_with(b"internal error: a panic"));
        // Cut to fit, NUL-terminated, nothing written past the buffer's one byte.
        let (_, one) = said(R::TESSERA_RESULT_PANIC, 1);
        assert_eq!(one, [0]);
        // Any other result leaves the buffer as the call left it.
        for rc in [R::TESSERA_RESULT_OK, R::TESSERA_RESULT_NULL_POINTER] {
            let (back, buf) = said(rc, 8);
            assert_eq!(back, rc);
            assert_eq!(buf, [0xAA; 8]);
        }
        // SAFETY: a NULL message is allowed (nothing is written).
        let back = unsafe { say_panic(R::TESSERA_RESULT_PANIC, std::ptr::null_mut(), 8) };
        assert_eq!(back, R::TESSERA_RESULT_PANIC);
    }
}
