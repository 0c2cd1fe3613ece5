//! Minimal DER: reading one TLV from untrusted bytes, and writing the few types issuance needs.

/// Split one TLV (single-byte tag, definite length) off the front of `input`:
/// `(tag, contents, rest)`. `None` for truncated or non-minimal/indefinite encodings and
/// high-tag-number forms.
#[must_use]
pub fn take_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let (len_bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        if len_bytes.first() == Some(&0) {
            return None;
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return None;
        }
        len
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The contents of `input` if it is exactly one TLV with `tag`.
#[must_use]
pub fn expect_tlv(input: &[u8], tag: u8) -> Option<&[u8]> {
    match take_tlv(input)? {
        (t, contents, []) if t == tag => Some(contents),
        _ => None,
    }
}

/// A TLV with a one-byte tag.
#[must_use]
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    let len_bytes = len.to_be_bytes();
    let first = len_bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(len_bytes.len());
    let significant = len_bytes.get(first..).unwrap_or_default();
    if len < 0x80 {
        out.extend_from_slice(significant);
        if significant.is_empty() {
            out.push(0);
        }
    } else {
        out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0));
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}
/// SEQUENCE of the concatenated parts.
#[must_use]
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}
/// SET of the concatenated parts.
#[must_use]
pub fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
}
/// Context-specific constructed `[n]`.
#[must_use]
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xA0 | n, content)
}
/// INTEGER from unsigned big-endian bytes.
#[must_use]
pub fn uint(be: &[u8]) -> Vec<u8> {
    let first = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let mut v: Vec<u8> = be.get(first..).unwrap_or_default().to_vec();
    if v.first().is_none_or(|b| *b & 0x80 != 0) {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}
/// INTEGER from a u64.
#[must_use]
pub fn uint_u64(v: u64) -> Vec<u8> {
    uint(&v.to_be_bytes())
}
/// OCTET STRING.
#[must_use]
pub fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}
/// BIT STRING with no unused bits.
#[must_use]
pub fn bits(b: &[u8]) -> Vec<u8> {
    let mut c = vec![0u8];
    c.extend_from_slice(b);
    tlv(0x03, &c)
}
/// UTF8String.
#[must_use]
pub fn utf8(s: &str) -> Vec<u8> {
    tlv(0x0C, s.as_bytes())
}
/// IA5String.
#[must_use]
pub fn ia5(s: &str) -> Vec<u8> {
    tlv(0x16, s.as_bytes())
}
/// BOOLEAN.
#[must_use]
pub fn boolean(v: bool) -> Vec<u8> {
    tlv(0x01, &[if v { 0xFF } else { 0 }])
}
/// NULL.
#[must_use]
pub fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}
/// OBJECT IDENTIFIER from dotted text; `None` if malformed.
#[must_use]
pub fn oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    let (&a0, rest) = arcs.split_first()?;
    let (&a1, rest) = rest.split_first()?;
    if a0 > 2 || (a0 < 2 && a1 > 39) {
        return None;
    }
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![u8::try_from(v & 0x7F).unwrap_or(0)];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | u8::try_from(v & 0x7F).unwrap_or(0));
            v >>= 7;
        }
        tmp.reverse();
        body.extend_from_slice(&tmp);
    };
    push(a0.checked_mul(40)?.checked_add(a1)?);
    for &a in rest {
        push(a);
    }
    Some(tlv(0x06, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_it_writes() {
        assert_eq!(
            take_tlv(&tlv(0x04, &[1, 2, 3])),
            Some((0x04, &[1u8, 2, 3][..], &[][..]))
        );
        let long = vec![7u8; 300];
        assert_eq!(expect_tlv(&tlv(0x04, &long), 0x04), Some(&long[..]));
        assert_eq!(expect_tlv(&uint_u64(0), 0x02), Some(&[0u8][..]));
        assert_eq!(expect_tlv(&uint_u64(0x80), 0x02), Some(&[0u8, 0x80][..]));
        assert_eq!(
            oid("1.3.132.0.34").unwrap(),
            vec![6, 5, 0x2B, 0x81, 0x04, 0, 0x22]
        );
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(take_tlv(&[0x04, 0x05, 1]), None);
        assert_eq!(take_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]), None); // non-minimal
        assert_eq!(take_tlv(&[0x04, 0x80]), None); // indefinite
        assert_eq!(take_tlv(&[0x1F, 0x01, 0x00]), None);
        assert_eq!(take_tlv(&[]), None);
    }

    proptest! {
        #[test]
        fn tlv_round_trip(tag in 0u8..0x1F, body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let enc = tlv(tag, &body);
            prop_assert_eq!(take_tlv(&enc), Some((tag, &body[..], &[][..])));
        }

        #[test]
        fn take_tlv_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = take_tlv(&bytes);
        }
    }
}
