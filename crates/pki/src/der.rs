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

/// A cursor over DER contents for the strict walkers (CRLs): elements are taken one at a time
/// by expected tag, never by index, and [`Reader::finish`] rejects leftovers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// The tag of the next element, if any.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, which must have `tag`: `(contents, whole encoding)`.
    pub(crate) fn take_whole(&mut self, tag: u8) -> Option<(&'a [u8], &'a [u8])> {
        let (t, contents, rest) = take_tlv(self.rest)?;
        if t != tag {
            return None;
        }
        let whole = self.rest.get(..self.rest.len().checked_sub(rest.len())?)?;
        self.rest = rest;
        Some((contents, whole))
    }

    /// The contents of the next element, which must have `tag`.
    pub(crate) fn take(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.take_whole(tag).map(|(contents, _)| contents)
    }

    /// The contents of the next element if it has `tag`; `None` (nothing taken) otherwise.
    pub(crate) fn take_if(&mut self, tag: u8) -> Option<&'a [u8]> {
        if self.peek_tag() == Some(tag) {
            self.take(tag)
        } else {
            None
        }
    }

    /// `Some(())` when everything was read.
    pub(crate) fn finish(&self) -> Option<()> {
        self.rest.is_empty().then_some(())
    }
}

/// BOOLEAN tag.
pub(crate) const TAG_BOOLEAN: u8 = 0x01;
/// INTEGER tag.
pub(crate) const TAG_INTEGER: u8 = 0x02;
/// BIT STRING tag.
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
/// OCTET STRING tag.
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
/// OBJECT IDENTIFIER tag.
pub(crate) const TAG_OID: u8 = 0x06;
/// SEQUENCE (constructed) tag.
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
/// SET (constructed) tag.
pub(crate) const TAG_SET: u8 = 0x31;
/// UTCTime tag.
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
/// GeneralizedTime tag.
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;

/// Seconds since the epoch of an X.509 `Time` (RFC 5280 4.1.2.5): UTCTime `YYMMDDHHMMSSZ`
/// (years 1950..2049) or GeneralizedTime `YYYYMMDDHHMMSSZ`, the only DER forms (seconds
/// present, `Z`, no fraction). `None` for anything else or a date that does not exist.
pub(crate) fn x509_time(tag: u8, contents: &[u8]) -> Option<i64> {
    fn digits(d: &[u8]) -> Option<i64> {
        d.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    }
    let (year, rest) = match tag {
        TAG_UTC_TIME => {
            let (yy, rest) = contents.split_at_checked(2)?;
            let yy = digits(yy)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, rest)
        }
        TAG_GENERALIZED_TIME => {
            let (yyyy, rest) = contents.split_at_checked(4)?;
            (digits(yyyy)?, rest)
        }
        _ => return None,
    };
    let [mo0, mo1, d0, d1, h0, h1, mi0, mi1, s0, s1, b'Z'] = *rest else {
        return None;
    };
    let month = digits(&[mo0, mo1])?;
    let day = digits(&[d0, d1])?;
    let hour = digits(&[h0, h1])?;
    let minute = digits(&[mi0, mi1])?;
    let second = digits(&[s0, s1])?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days from 1970-01-01 to the date (proleptic Gregorian; H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// `Name ::= SEQUENCE OF RelativeDistinguishedName`, each a non-empty
/// `SET OF SEQUENCE { type OBJECT IDENTIFIER, value ANY }` (contents of the SEQUENCE given).
pub(crate) fn check_name(contents: &[u8]) -> Option<()> {
    let mut rdns = Reader::new(contents);
    while !rdns.is_empty() {
        let mut set = Reader::new(rdns.take(TAG_SET)?);
        set.peek_tag()?;
        while !set.is_empty() {
            let mut attribute = Reader::new(set.take(TAG_SEQUENCE)?);
            attribute.take(TAG_OID).filter(|oid| !oid.is_empty())?;
            let tag = attribute.peek_tag()?;
            attribute.take(tag)?;
            attribute.finish()?;
        }
    }
    Some(())
}

/// The parts of a signed X.509 object (a certificate or a CRL):
/// `SEQUENCE { tbs SEQUENCE, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }`.
pub(crate) struct Signed<'a> {
    /// The contents of the signed SEQUENCE.
    pub(crate) tbs_contents: &'a [u8],
    /// The signed SEQUENCE, whole: the bytes the signature covers.
    pub(crate) tbs: &'a [u8],
    /// The outer (unsigned) AlgorithmIdentifier, whole.
    pub(crate) algorithm: &'a [u8],
    /// The signature, a BIT STRING without unused bits.
    pub(crate) signature: &'a [u8],
}

/// The element of a signed object at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignedPart {
    Tbs,
    Algorithm,
    Signature,
    /// Something after the signature.
    Trailing,
}

/// Split the outer SEQUENCE's `contents` of a signed object into its three parts.
pub(crate) fn signed(contents: &[u8]) -> Result<Signed<'_>, SignedPart> {
    let mut r = Reader::new(contents);
    let (tbs_contents, tbs) = r.take_whole(TAG_SEQUENCE).ok_or(SignedPart::Tbs)?;
    let (_, algorithm) = r.take_whole(TAG_SEQUENCE).ok_or(SignedPart::Algorithm)?;
    let signature = r
        .take(TAG_BIT_STRING)
        .and_then(whole_bytes)
        .ok_or(SignedPart::Signature)?;
    r.finish().ok_or(SignedPart::Trailing)?;
    Ok(Signed {
        tbs_contents,
        tbs,
        algorithm,
        signature,
    })
}

/// At most this many extensions in one certificate, CRL or CRL entry (real ones have fewer
/// than a dozen): bounds the work of the duplicate check.
pub(crate) const MAX_EXTENSIONS: usize = 64;

/// One `Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE,
/// extnValue OCTET STRING }`.
pub(crate) struct RawExtension<'a> {
    /// The OBJECT IDENTIFIER's contents.
    pub(crate) oid: &'a [u8],
    /// The same, dotted.
    pub(crate) dotted: String,
    pub(crate) critical: bool,
    /// The OCTET STRING's contents.
    pub(crate) value: &'a [u8],
}

/// Why an extension list was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExtensionsError {
    /// The extension at this index is not well formed.
    Malformed(usize),
    /// More than [`MAX_EXTENSIONS`].
    TooMany,
    /// An extension with this (dotted) OID appears twice.
    Duplicate(String),
}

/// `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension` (the SEQUENCE's contents), as in
/// certificates, CRLs and CRL entries: each element well formed, at most [`MAX_EXTENSIONS`],
/// none twice (RFC 5280 4.2, 5.2).
pub(crate) fn extensions(contents: &[u8]) -> Result<Vec<RawExtension<'_>>, ExtensionsError> {
    let mut list = Reader::new(contents);
    let mut out: Vec<RawExtension<'_>> = Vec::new();
    while !list.is_empty() {
        if out.len() >= MAX_EXTENSIONS {
            return Err(ExtensionsError::TooMany);
        }
        let read = (|| {
            let mut e = Reader::new(list.take(TAG_SEQUENCE)?);
            let oid = e.take(TAG_OID)?;
            let critical = match e.take_if(TAG_BOOLEAN) {
                None => false,
                // Any non-zero byte is true, as BER (and x509-parser) reads it.
                Some([b]) => *b != 0,
                Some(_) => return None,
            };
            let value = e.take(TAG_OCTET_STRING)?;
            e.finish()?;
            Some(RawExtension {
                oid,
                dotted: oid_text(oid)?,
                critical,
                value,
            })
        })();
        let ext = read.ok_or(ExtensionsError::Malformed(out.len()))?;
        if out.iter().any(|e| e.oid == ext.oid) {
            return Err(ExtensionsError::Duplicate(ext.dotted));
        }
        out.push(ext);
    }
    Ok(out)
}

/// The contents of a BIT STRING that has no unused bits (keys, signatures).
pub(crate) fn whole_bytes(bit_string: &[u8]) -> Option<&[u8]> {
    match bit_string.split_first() {
        Some((0, bytes)) => Some(bytes),
        _ => None,
    }
}

/// Dotted text of an OBJECT IDENTIFIER's contents (`1.2.840.10045.4.3.2`); `None` unless every
/// arc is minimally encoded, complete and fits `u64`.
pub(crate) fn oid_text(contents: &[u8]) -> Option<String> {
    use core::fmt::Write;
    let mut out = String::with_capacity(contents.len() * 3);
    let mut arc: u64 = 0;
    let mut first = true;
    let mut fresh = true;
    for &b in contents {
        if fresh && b == 0x80 {
            return None; // a leading 0x80 pads an arc
        }
        fresh = false;
        arc = arc.checked_mul(128)? | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if first {
                let (a0, a1) = match arc {
                    0..40 => (0, arc),
                    40..80 => (1, arc - 40),
                    _ => (2, arc - 80),
                };
                let _ = write!(out, "{a0}.{a1}");
                first = false;
            } else {
                let _ = write!(out, ".{arc}");
            }
            arc = 0;
            fresh = true;
        }
    }
    (!first && fresh).then_some(out)
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

    #[test]
    fn reader_takes_by_tag_and_finishes() {
        let input = [seq(&[&uint_u64(5)]), octets(&[1, 2])].concat();
        let mut r = Reader::new(&input);
        assert_eq!(r.peek_tag(), Some(0x30));
        assert_eq!(r.take_if(0x04), None);
        assert_eq!(r.take(0x04), None);
        let (contents, whole) = r.take_whole(0x30).unwrap();
        assert_eq!(contents, &uint_u64(5)[..]);
        assert_eq!(whole, &seq(&[&uint_u64(5)])[..]);
        assert_eq!(r.finish(), None);
        assert_eq!(r.take_if(0x04), Some(&[1u8, 2][..]));
        assert!(r.is_empty());
        assert_eq!(r.finish(), Some(()));
        assert_eq!(r.take(0x04), None);
        assert_eq!(r.peek_tag(), None);
    }

    #[test]
    fn x509_times() {
        let utc = |s: &str| x509_time(TAG_UTC_TIME, s.as_bytes());
        let gen_time = |s: &str| x509_time(TAG_GENERALIZED_TIME, s.as_bytes());
        assert_eq!(utc("700101000000Z"), Some(0));
        assert_eq!(utc("250902070351Z"), Some(1_756_796_631));
        assert_eq!(utc("491231235959Z"), Some(2_524_607_999));
        assert_eq!(utc("500101000000Z"), Some(-631_152_000));
        assert_eq!(gen_time("20250902070351Z"), utc("250902070351Z"));
        assert_eq!(gen_time("20500101000000Z"), Some(2_524_608_000));
        assert_eq!(gen_time("19000101000000Z"), Some(-2_208_988_800));
        assert_eq!(utc("240229120000Z"), Some(1_709_208_000));
        for bad in [
            "230229120000Z", // not a leap year
            "241301000000Z",
            "240001000000Z",
            "240431000000Z",
            "240101240000Z",
            "240101006000Z",
            "240101000060Z",
            "2401010000Z",  // no seconds
            "240101000000", // no Z
            "240101000000+0000",
            "24010100000aZ",
            "240101000000.5Z",
            "",
        ] {
            assert_eq!(utc(bad), None, "{bad}");
        }
        assert_eq!(gen_time("21000229000000Z"), None); // not a leap year
        assert_eq!(gen_time("20000229000000Z"), Some(951_782_400));
        assert_eq!(gen_time("20250902070351.5Z"), None);
        assert_eq!(x509_time(0x04, b"250902070351Z"), None);
    }

    proptest! {
        /// Every second from 1950 to 2049 reads back from the UTCTime the builder's format writes,
        /// and from GeneralizedTime for any year 0..9999, as the `time` crate computes it.
        #[test]
        fn x509_time_agrees_with_the_time_crate(secs in -62_135_596_800i64..253_402_300_799) {
            let dt = ::time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
            let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
            let generalized = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
            prop_assert_eq!(x509_time(TAG_GENERALIZED_TIME, generalized.as_bytes()), Some(secs));
            if (1950..2050).contains(&y) {
                let utc = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
                prop_assert_eq!(x509_time(TAG_UTC_TIME, utc.as_bytes()), Some(secs));
            }
        }

        #[test]
        fn x509_time_never_panics(tag in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = x509_time(tag, &bytes);
        }

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
