//! PEM armour: split a buffer into its `-----BEGIN label-----` blocks and decode them.

use crate::{MAX_INPUT_LEN, MAX_OBJECTS_PER_INPUT, PkiError};

/// Whether `bytes` looks like PEM: not DER (which starts with a SEQUENCE tag) and holding a
/// BEGIN line (text such as OpenSSL's "Bag Attributes" may precede it).
pub(crate) fn is_pem(bytes: &[u8]) -> bool {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    first.is_some_and(|b| *b != 0x30) && bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Decode every PEM block labelled `label` in `bytes` (other blocks and text between blocks are
/// skipped). Bounded by [`MAX_INPUT_LEN`] and [`MAX_OBJECTS_PER_INPUT`].
pub(crate) fn decode_all(
    bytes: &[u8],
    label: &str,
    what: &'static str,
) -> Result<Vec<Vec<u8>>, PkiError> {
    if bytes.len() > MAX_INPUT_LEN {
        return Err(PkiError::TooLarge {
            what,
            limit: MAX_INPUT_LEN,
            actual: bytes.len(),
        });
    }
    let text = core::str::from_utf8(bytes).map_err(|_| PkiError::Pem {
        what,
        detail: String::from("not UTF-8 text"),
    })?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after_begin = rest.get(start + "-----BEGIN ".len()..).unwrap_or_default();
        let (this_label, body_start) =
            after_begin
                .split_once("-----")
                .ok_or_else(|| PkiError::Pem {
                    what,
                    detail: String::from("unterminated BEGIN line"),
                })?;
        let (body, after_end) =
            split_at_end(body_start, this_label).ok_or_else(|| PkiError::Pem {
                what,
                detail: format!("no END line for {this_label:?}"),
            })?;
        rest = after_end;
        if this_label != label {
            continue;
        }
        if out.len() >= MAX_OBJECTS_PER_INPUT {
            return Err(PkiError::TooLarge {
                what,
                limit: MAX_OBJECTS_PER_INPUT,
                actual: out.len() + 1,
            });
        }
        // ASCII whitespace is dropped a run at a time (a copy per line, not per byte); any other
        // byte, a multi-byte UTF-8 character included, is kept so the decoder rejects it.
        let mut b64 = Vec::with_capacity(body.len());
        for piece in body.as_bytes().split(u8::is_ascii_whitespace) {
            b64.extend_from_slice(piece);
        }
        let der = data_encoding::BASE64
            .decode(&b64)
            .map_err(|e| PkiError::Pem {
                what,
                detail: format!("base64: {e}"),
            })?;
        out.push(der);
    }
    if out.is_empty() {
        return Err(PkiError::Pem {
            what,
            detail: format!("no {label} block"),
        });
    }
    Ok(out)
}

/// `(body, after)` around the first `-----END label-----` in `text`.
/// Decode every PEM block labelled `label` in `bytes` (other blocks skipped), bounded as
/// certificate inputs are.
///
/// # Errors
/// [`PkiError::TooLarge`] or [`PkiError::Pem`] for broken armour.
pub fn decode(bytes: &[u8], label: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    decode_all(bytes, label, "PEM")
}

fn split_at_end<'t>(text: &'t str, label: &str) -> Option<(&'t str, &'t str)> {
    // Base64 has no '-': in a well-formed block the first one starts the END line.
    let dash = text.find('-')?;
    let after = text
        .get(dash..)
        .and_then(|at| at.strip_prefix("-----END "))
        .and_then(|at| at.strip_prefix(label))
        .and_then(|at| at.strip_prefix("-----"));
    if let Some(after) = after {
        return Some((text.get(..dash)?, after));
    }
    let end_marker = format!("-----END {label}-----");
    text.split_once(end_marker.as_str())
}

/// Armour `der` as PEM with `label` (e.g. `CERTIFICATE`), 64 characters a line.
#[must_use]
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_blocks_and_skips_other_labels() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n\
                   -----BEGIN X509 CRL-----\nAw==\n-----END X509 CRL-----\n\
                   -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----";
        assert!(is_pem(pem.as_bytes()));
        let certs = decode_all(pem.as_bytes(), "CERTIFICATE", "t").unwrap();
        assert_eq!(certs, vec![vec![0u8, 1, 2], vec![4u8, 5]]);
        let crls = decode_all(pem.as_bytes(), "X509 CRL", "t").unwrap();
        assert_eq!(crls, vec![vec![3u8]]);
        let round = decode_all(
            encode("CERTIFICATE", &[9u8; 100]).as_bytes(),
            "CERTIFICATE",
            "t",
        );
        assert_eq!(round.unwrap(), vec![vec![9u8; 100]]);
    }

    #[test]
    fn whitespace_anywhere_in_the_body_is_skipped_and_nothing_else() {
        let body = data_encoding::BASE64.encode(&[7u8; 100]);
        let (a, b) = body.split_at(10);
        for spaced in [
            format!("{a}\r\n{b}"),
            format!(" \t{a} \x0c {b}\n\n"),
            body.clone(),
        ] {
            let pem = format!("-----BEGIN CERTIFICATE-----\n{spaced}\n-----END CERTIFICATE-----\n");
            assert_eq!(
                decode_all(pem.as_bytes(), "CERTIFICATE", "t").unwrap(),
                vec![vec![7u8; 100]]
            );
        }
        // Non-ASCII characters (including Unicode spaces) are not whitespace to PEM.
        for bad in [format!("{a}\u{a0}{b}"), format!("{a}é{b}")] {
            let pem = format!("-----BEGIN CERTIFICATE-----\n{bad}\n-----END CERTIFICATE-----\n");
            assert!(decode_all(pem.as_bytes(), "CERTIFICATE", "t").is_err());
        }
    }

    #[test]
    fn end_line_is_found_after_stray_dashes() {
        // A '-' before the END line (not base64) makes the block fail to decode, as before;
        // another label's END line is not this block's.
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END X509 CRL-----\n-----END CERTIFICATE-----\n";
        assert!(decode_all(pem.as_bytes(), "CERTIFICATE", "t").is_err());
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----";
        assert_eq!(
            decode_all(pem.as_bytes(), "CERTIFICATE", "t").unwrap(),
            vec![vec![0u8, 1, 2]]
        );
        assert_eq!(split_at_end("AB-----END X-----CD", "X"), Some(("AB", "CD")));
        assert_eq!(
            split_at_end("A-B-----END X-----CD", "X"),
            Some(("A-B", "CD"))
        );
        assert_eq!(split_at_end("AB-----END Y-----", "X"), None);
        assert_eq!(split_at_end("AB", "X"), None);
    }

    #[test]
    fn rejects_broken_armour() {
        for bad in [
            "-----BEGIN CERTIFICATE-----\nAAEC\n",
            "-----BEGIN CERTIFICATE",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----",
            "no blocks at all",
        ] {
            assert!(
                decode_all(bad.as_bytes(), "CERTIFICATE", "t").is_err(),
                "{bad}"
            );
        }
    }
}
