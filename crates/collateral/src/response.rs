//! Reading a vendor's HTTP answer: status codes, `Retry-After`, `Error-Code`, and the issuer
//! chains Intel sends URL-encoded in response headers.
//!
//! Intel PCS API v4 headers: `TCB-Info-Issuer-Chain` (v3: `SGX-TCB-Info-Issuer-Chain`) with TCB
//! info, `SGX-Enclave-Identity-Issuer-Chain` with enclave identities, `SGX-PCK-CRL-Issuer-Chain`
//! with PCK CRLs, each PEM certificates percent-encoded; `Retry-After` (seconds) with 429;
//! `Error-Code` / `Error-Message` with 400. AMD KDS answers 429 when asked more than about once
//! per 10 s per address, with or without `Retry-After`.

use tessera_pki::UnixTime;

use crate::CollateralError;
use crate::error::sanitise;
use crate::item::Item;

/// Most bytes accepted for one response body (the transport stops reading past it).
pub const MAX_BODY_LEN: usize = tessera_pki::MAX_INPUT_LEN;
/// Most bytes accepted for one header value.
pub const MAX_HEADER_LEN: usize = 64 * 1024;
/// Most headers kept from one response.
pub const MAX_HEADERS: usize = 128;
/// The wait assumed after a 429 without a usable `Retry-After` (KDS allows about one VCEK
/// request per 10 s).
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 10;

/// An HTTP response as the transport received it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values (values that are not visible ASCII are dropped by transports).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The header that carries the issuer chain of `item`, with its PCS v3 name where it had
/// another; `None` for items sent without one.
#[must_use]
pub fn issuer_chain_headers(item: &Item) -> &'static [&'static str] {
    match item {
        Item::TcbInfo { .. } => &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
        Item::QeIdentity { .. } => &["SGX-Enclave-Identity-Issuer-Chain"],
        Item::PckCrl { .. } => &["SGX-PCK-CRL-Issuer-Chain"],
        _ => &[],
    }
}

/// What a response says before its body is looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200: the body (and for Intel items the issuer chain, PEM, decoded) to check.
    Ok {
        /// The issuer chain from the header, decoded (Intel items only).
        issuer_chain: Option<String>,
    },
    /// 429: wait this many seconds.
    RateLimited {
        /// From `Retry-After`, or [`DEFAULT_RETRY_AFTER_SECS`].
        retry_after_secs: u64,
    },
}

/// Classify `response` to a request for `item` at `now`.
///
/// # Errors
/// [`CollateralError::Status`] for any status but 200 and 429;
/// [`CollateralError::Response`] for a 200 whose issuer chain header is missing or malformed,
/// or whose body is larger than [`MAX_BODY_LEN`].
pub fn classify(
    item: &Item,
    response: &HttpResponse,
    now: UnixTime,
) -> Result<Outcome, CollateralError> {
    let key = item.key();
    match response.status {
        200 => {}
        429 => {
            let retry_after_secs = response
                .header("Retry-After")
                .and_then(|v| parse_retry_after(v, now))
                .unwrap_or(DEFAULT_RETRY_AFTER_SECS);
            return Ok(Outcome::RateLimited { retry_after_secs });
        }
        status => {
            return Err(CollateralError::Status {
                key,
                status,
                error_code: response.header("Error-Code").map(|c| sanitise(c, 64)),
            });
        }
    }
    if response.body.len() > MAX_BODY_LEN {
        return Err(CollateralError::response(
            &key,
            "body",
            "larger than the limit",
        ));
    }
    let names = issuer_chain_headers(item);
    if names.is_empty() {
        return Ok(Outcome::Ok { issuer_chain: None });
    }
    let value = names
        .iter()
        .find_map(|n| response.header(n))
        .ok_or_else(|| {
            CollateralError::response(&key, names.first().copied().unwrap_or("header"), "missing")
        })?;
    let pem = decode_issuer_chain(value).ok_or_else(|| {
        CollateralError::response(&key, "issuer chain header", "not (URL-encoded) PEM")
    })?;
    Ok(Outcome::Ok {
        issuer_chain: Some(pem),
    })
}

/// A header's issuer chain as PEM text: percent-decoded when it is URL-encoded (as PCS sends
/// it), as is when it is PEM already. `None` when it is neither, too long, or not UTF-8.
#[must_use]
pub fn decode_issuer_chain(value: &str) -> Option<String> {
    if value.len() > MAX_HEADER_LEN {
        return None;
    }
    let value = value.trim();
    let decoded = if value.contains('%') {
        percent_decode(value)?
    } else {
        value.to_owned()
    };
    decoded
        .contains("-----BEGIN CERTIFICATE-----")
        .then_some(decoded)
}

/// `%XX` sequences to bytes (`+` stays `+`: it is a base64 character); `None` on a broken
/// escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let [hi, lo, after @ ..] = tail else {
                return None;
            };
            let digit = |c: u8| char::from(c).to_digit(16);
            let value = digit(*hi)? * 16 + digit(*lo)?;
            out.push(u8::try_from(value).ok()?);
            rest = after;
        } else {
            out.push(b);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

/// Most seconds a `Retry-After` is taken at (a day); longer waits are capped by the fetcher's
/// configuration anyway.
const MAX_RETRY_AFTER_SECS: u64 = 24 * 3600;

/// `Retry-After` as seconds from `now`: delta-seconds, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`). `None` when it is neither.
#[must_use]
pub fn parse_retry_after(value: &str, now: UnixTime) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<u64>()
            .ok()
            .map(|s| s.min(MAX_RETRY_AFTER_SECS));
    }
    let at = parse_http_date(value)?;
    let secs = at.as_secs().saturating_sub(now.as_secs()).max(0);
    u64::try_from(secs)
        .ok()
        .map(|s| s.min(MAX_RETRY_AFTER_SECS))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP/1.1 senders must use.
fn parse_http_date(value: &str) -> Option<UnixTime> {
    let mut parts = value.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    // Unsigned and small: a negative or huge field is no date (and cannot overflow below).
    let (h, m, s): (u8, u8, u8) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * i64::from(mo) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(UnixTime::from_secs(
        days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{IntelTee, PckCa, UpdateType};

    #[test]
    fn retry_after_forms() {
        let now = UnixTime::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(now));
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(60)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:40:37 GMT", now),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("99999999999", now),
            Some(MAX_RETRY_AFTER_SECS)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            // Negative and huge fields: no date, and no overflow on the way to one.
            "Sun, 06 Nov 1994 -9999999999999999:00:00 GMT",
            "Sun, 06 Nov 1994 08:-1:37 GMT",
            "Sun, 06 Nov 1994 08:49:-9223372036854775808 GMT",
            "Sun, 06 Nov 1994 9223372036854775807:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// Any text, and any numbers in a date's fields: an answer or none, never a panic,
        /// and never a wait past the bound.
        #[test]
        fn retry_after_never_panics(
            text in ".{0,64}",
            fields in proptest::array::uniform4(proptest::prelude::any::<i64>()),
            now in proptest::prelude::any::<i64>(),
        ) {
            let now = UnixTime::from_secs(now);
            let [d, h, m, s] = fields;
            for value in [text, format!("Sun, {d} Nov 1994 {h}:{m}:{s} GMT")] {
                if let Some(wait) = parse_retry_after(&value, now) {
                    proptest::prop_assert!(wait <= MAX_RETRY_AFTER_SECS);
                }
            }
        }
    }

    #[test]
    fn statuses_and_chain_headers() {
        let now = UnixTime::from_secs(0);
        let item = Item::PckCrl {
            ca: PckCa::Platform,
        };
        let mut r = HttpResponse {
            status: 404,
            headers: vec![(String::from("Error-Code"), String::from("NotFound\u{7}x"))],
            body: Vec::new(),
        };
        assert_eq!(
            classify(&item, &r, now),
            Err(CollateralError::Status {
                key: item.key(),
                status: 404,
                error_code: Some(String::from("NotFound?x"))
            })
        );
        r.status = 429;
        assert_eq!(
            classify(&item, &r, now),
            Ok(Outcome::RateLimited {
                retry_after_secs: DEFAULT_RETRY_AFTER_SECS
            })
        );
        r.headers
            .push((String::from("retry-after"), String::from("3")));
        assert_eq!(
            classify(&item, &r, now),
            Ok(Outcome::RateLimited {
                retry_after_secs: 3
            })
        );
        r.status = 200;
        assert!(matches!(
            classify(&item, &r, now),
            Err(CollateralError::Response {
                field: "SGX-PCK-CRL-Issuer-Chain",
                ..
            })
        ));
        r.headers.push((
            String::from("SGX-PCK-CRL-Issuer-Chain"),
            String::from(
                "-----BEGIN%20CERTIFICATE-----%0AAB%2B%3D%0A-----END%20CERTIFICATE-----%0A",
            ),
        ));
        assert_eq!(
            classify(&item, &r, now),
            Ok(Outcome::Ok {
                issuer_chain: Some(String::from(
                    "-----BEGIN CERTIFICATE-----\nAB+=\n-----END CERTIFICATE-----\n"
                ))
            })
        );
        // v3 header name for TCB info; AMD items need none.
        let tcb = Item::tcb_info(IntelTee::Sgx, [0; 6], UpdateType::Standard);
        let v3 = HttpResponse {
            status: 200,
            headers: vec![(
                String::from("SGX-TCB-Info-Issuer-Chain"),
                String::from("-----BEGIN CERTIFICATE-----"),
            )],
            body: Vec::new(),
        };
        assert!(matches!(
            classify(&tcb, &v3, now),
            Ok(Outcome::Ok {
                issuer_chain: Some(_)
            })
        ));
        assert_eq!(
            classify(&Item::RootCaCrl, &v3, now),
            Ok(Outcome::Ok { issuer_chain: None })
        );
        for bad in [
            "%",
            "%4",
            "%zz",
            "-----BEGIN%20X",
            "%FF%FE-----BEGIN CERTIFICATE-----",
        ] {
            assert_eq!(decode_issuer_chain(bad), None, "{bad}");
        }
    }
}
