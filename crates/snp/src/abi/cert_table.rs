//! The extended-report certificate table: GUID-tagged certificates the host hands the guest.
//!
//! Layout: AMD GHCB specification 56421, section "SNP Extended Guest Request" (the certificate
//! table returned with `MSG_REPORT_REQ`; revision 2.03 section 4.1.8.1, `struct cert_table`).
//! The table is an array of entries `GUID[16] | offset u32 | length u32` (little-endian
//! integers) ended by an all-zero entry; `offset` counts from the start of the table, and the
//! certificates follow the array. The Linux configfs-tsm `auxblob` and the bytes that
//! go-sev-guest and snpguest append to a report in their extended-report files use this
//! layout.
//!
//! GUID bytes are stored in the textual (RFC 4122, big-endian) order: the VCEK GUID
//! `63da758d-e664-4564-adc5-f4b93be8accd` is the bytes `63 da 75 8d e6 64 ...` on the wire (as
//! in the configfs-tsm and AWS tables among the test vectors). GUIDs: VCEK, VLEK, ASK and ARK
//! from the GHCB specification (as go-sev-guest `abi` defines them), CRL from virtee/sev
//! `CertType::CRL`. The GHCB specification defines no ASVK GUID: the ASK GUID carries the ASK
//! or, on VLEK hosts, the ASVK (go-sev-guest: "AskGUID ... Used for the ASVK as well").
//!
//! Bounds (against hostile input): at most [`CertTable::MAX_INPUT`] bytes and
//! [`CertTable::MAX_ENTRIES`] entries; every certificate inside the input, after the entry
//! array, and not overlapping another, so the certificates copied never exceed the input's
//! size; no GUID twice. Bytes after the last certificate (zero padding to a page) are ignored.

use core::fmt;

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{HexBytes, ParseError};

/// A 16-byte GUID in wire order (the RFC 4122 textual order).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// VCEK certificate, `63da758d-e664-4564-adc5-f4b93be8accd`.
    pub const VCEK: Guid = Guid([
        0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ]);
    /// VLEK certificate, `a8074bc2-a25a-483e-aae6-39c045a0b8a1`.
    pub const VLEK: Guid = Guid([
        0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8,
        0xa1,
    ]);
    /// ASK (or ASVK) certificate, `4ab7b379-bbac-4fe4-a02f-05aef327c782`.
    pub const ASK: Guid = Guid([
        0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
        0x82,
    ]);
    /// ARK certificate, `c0b406a4-a803-4952-9743-3fb6014cd0ae`.
    pub const ARK: Guid = Guid([
        0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0,
        0xae,
    ]);
    /// Certificate revocation list(s), `92f81bc3-5811-4d3d-97ff-d19f88dc67ea`.
    pub const CRL: Guid = Guid([
        0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67,
        0xea,
    ]);
    /// The all-zero GUID of the terminating entry.
    pub const NIL: Guid = Guid([0; 16]);
}

impl fmt::Display for Guid {
    /// The usual `8-4-4-4-12` lower-case hex form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// What a certificate-table entry holds, from its GUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CertKind {
    /// The VCEK certificate.
    Vcek,
    /// The VLEK certificate.
    Vlek,
    /// The ASK certificate.
    Ask,
    /// The ASVK certificate. It has no GUID of its own: it travels under the ASK GUID, so
    /// [`CertKind::from`] never yields `Asvk` and [`CertTable::get`] with `Asvk` returns the
    /// ASK-GUID entry (the certificate's subject says which of the two it is).
    Asvk,
    /// The ARK certificate.
    Ark,
    /// Certificate revocation list(s).
    Crl,
    /// Any other GUID.
    Other(Guid),
}

impl CertKind {
    /// The GUID entries of this kind carry.
    pub fn guid(self) -> Guid {
        match self {
            CertKind::Vcek => Guid::VCEK,
            CertKind::Vlek => Guid::VLEK,
            CertKind::Ask | CertKind::Asvk => Guid::ASK,
            CertKind::Ark => Guid::ARK,
            CertKind::Crl => Guid::CRL,
            CertKind::Other(guid) => guid,
        }
    }
}

impl From<Guid> for CertKind {
    fn from(guid: Guid) -> Self {
        match guid {
            Guid::VCEK => CertKind::Vcek,
            Guid::VLEK => CertKind::Vlek,
            Guid::ASK => CertKind::Ask,
            Guid::ARK => CertKind::Ark,
            Guid::CRL => CertKind::Crl,
            other => CertKind::Other(other),
        }
    }
}

/// One certificate (or CRL, or other blob) from the table.
#[derive(Clone, PartialEq, Eq)]
pub struct CertTableEntry {
    /// The entry's GUID.
    pub guid: Guid,
    /// The bytes `[offset, offset + length)` the entry points at (DER or PEM, as the host
    /// stored them).
    pub data: Vec<u8>,
}

impl CertTableEntry {
    /// What the entry holds, from its GUID.
    pub fn kind(&self) -> CertKind {
        CertKind::from(self.guid)
    }

    /// The entry's bytes without the zero padding hosts add after DER ([`trim_padding`]).
    #[must_use]
    pub fn trimmed(&self) -> &[u8] {
        trim_padding(&self.data)
    }
}

/// A certificate-table entry's bytes without the zero padding hosts add after DER. A DER
/// certificate is cut where its outer TLV ends (its own last byte may be zero: a signature ends
/// in 0x00 one time in 256), when only zeros follow; anything else (PEM text) loses its
/// trailing zero bytes.
#[must_use]
pub fn trim_padding(data: &[u8]) -> &[u8] {
    if let Some((0x30, _, rest)) = tessera_pki::der::take_tlv(data)
        && rest.iter().all(|b| *b == 0)
    {
        return data.get(..data.len() - rest.len()).unwrap_or_default();
    }
    let end = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    data.get(..end).unwrap_or_default()
}

impl fmt::Debug for CertTableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertTableEntry")
            .field("guid", &self.guid)
            .field("kind", &self.kind())
            .field("len", &self.data.len())
            .finish()
    }
}

/// The certificate table in the order the host wrote its entries.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CertTable {
    /// The entries, terminator excluded.
    pub entries: Vec<CertTableEntry>,
}

/// One entry of the entry array as laid out on the wire.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawEntry {
    guid: [u8; 16],
    offset: U32,
    length: U32,
}

const ENTRY_LEN: usize = core::mem::size_of::<RawEntry>();
const _: () = assert!(ENTRY_LEN == 24);

impl CertTable {
    /// Largest table input accepted (1 MiB; real tables are a few pages).
    pub const MAX_INPUT: usize = 1 << 20;
    /// Most entries accepted, terminator excluded.
    pub const MAX_ENTRIES: usize = 64;

    /// Parses a certificate table. Empty input is an empty table (a host that supplied no
    /// certificates); otherwise the all-zero terminator is required.
    ///
    /// # Errors
    ///
    /// [`ParseError::TooLarge`] past [`Self::MAX_INPUT`] bytes;
    /// [`ParseError::CertTableUnterminated`] when no all-zero entry ends the array;
    /// [`ParseError::CertTableTooManyEntries`] past [`Self::MAX_ENTRIES`];
    /// [`ParseError::CertTableNullGuid`] for a zero GUID with a non-zero offset or length;
    /// [`ParseError::CertTableEntryOverlapsHeader`], [`ParseError::CertTableEntryOutOfRange`]
    /// and [`ParseError::CertTableEntriesOverlap`] for an entry whose data is not a distinct
    /// range after the entry array and inside the input;
    /// [`ParseError::CertTableDuplicateGuid`] when a GUID appears twice.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() > Self::MAX_INPUT {
            return Err(ParseError::TooLarge {
                what: "certificate table",
                max: Self::MAX_INPUT,
                actual: bytes.len(),
            });
        }
        if bytes.is_empty() {
            return Ok(Self::default());
        }

        // Read the entry array up to its terminator.
        let mut headers: Vec<(Guid, u32, u32)> = Vec::new();
        let mut terminated = false;
        for (index, chunk) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
            let entry = RawEntry::ref_from_bytes(chunk).map_err(|_| ParseError::Truncated {
                what: "certificate table entry",
                needed: ENTRY_LEN,
                actual: chunk.len(),
            })?;
            let guid = Guid(entry.guid);
            let (offset, length) = (entry.offset.get(), entry.length.get());
            if guid == Guid::NIL {
                if offset == 0 && length == 0 {
                    terminated = true;
                    break;
                }
                return Err(ParseError::CertTableNullGuid { index });
            }
            if index >= Self::MAX_ENTRIES {
                return Err(ParseError::CertTableTooManyEntries {
                    max: Self::MAX_ENTRIES,
                });
            }
            if headers.iter().any(|(g, _, _)| *g == guid) {
                return Err(ParseError::CertTableDuplicateGuid(guid));
            }
            headers.push((guid, offset, length));
        }
        if !terminated {
            return Err(ParseError::CertTableUnterminated);
        }

        // Check every data range, then copy it out.
        let header_len = (headers.len() + 1) * ENTRY_LEN;
        let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(headers.len());
        for (index, &(_, offset, length)) in headers.iter().enumerate() {
            let out_of_range = ParseError::CertTableEntryOutOfRange {
                index,
                offset,
                length,
                table_len: bytes.len(),
            };
            let start = usize::try_from(offset).map_err(|_| out_of_range.clone())?;
            let len = usize::try_from(length).map_err(|_| out_of_range.clone())?;
            if start < header_len {
                return Err(ParseError::CertTableEntryOverlapsHeader {
                    index,
                    offset,
                    header_len,
                });
            }
            let end = start
                .checked_add(len)
                .filter(|&end| end <= bytes.len())
                .ok_or(out_of_range)?;
            if let Some(first) = ranges.iter().position(|&(s, e)| start < e && s < end) {
                return Err(ParseError::CertTableEntriesOverlap {
                    first,
                    second: index,
                });
            }
            ranges.push((start, end));
        }
        let entries = headers
            .iter()
            .zip(&ranges)
            .map(|(&(guid, _, _), &(start, end))| CertTableEntry {
                guid,
                data: bytes.get(start..end).unwrap_or_default().to_vec(),
            })
            .collect();
        Ok(Self { entries })
    }

    /// The table in canonical form: the entry array and its terminator, then each entry's
    /// data in entry order, no padding. A table `parse` returned always fits; one built by
    /// hand with more than `u32::MAX` bytes cannot be represented and produces a table that
    /// `parse` rejects.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header_len = (self.entries.len() + 1) * ENTRY_LEN;
        let data_len: usize = self.entries.iter().map(|e| e.data.len()).sum();
        let mut out = Vec::with_capacity(header_len.saturating_add(data_len));
        let mut cursor = header_len;
        for entry in &self.entries {
            let raw = RawEntry {
                guid: entry.guid.0,
                offset: U32::new(u32::try_from(cursor).unwrap_or(u32::MAX)),
                length: U32::new(u32::try_from(entry.data.len()).unwrap_or(u32::MAX)),
            };
            out.extend_from_slice(raw.as_bytes());
            cursor = cursor.saturating_add(entry.data.len());
        }
        out.extend_from_slice(&[0; ENTRY_LEN]);
        for entry in &self.entries {
            out.extend_from_slice(&entry.data);
        }
        out
    }

    /// The certificates the entries hold, each with its entry's kind, in entry order: each
    /// entry's data read with its zero padding trimmed ([`CertTableEntry::trimmed`]), PEM or
    /// DER; an entry that holds none (a CRL, another blob, damaged bytes) gives nothing. For
    /// those that read the table as a source of certificates; verification itself refuses
    /// such entries.
    pub fn certificates(&self) -> Vec<(CertKind, tessera_pki::Certificate)> {
        self.entries
            .iter()
            .filter_map(|e| {
                let found = tessera_pki::load_certificates(e.trimmed()).ok()?;
                Some(found.into_iter().map(|c| (e.kind(), c)))
            })
            .flatten()
            .collect()
    }

    /// The data of the entry of `kind` ([`CertKind::Asvk`] looks under the ASK GUID).
    pub fn get(&self, kind: CertKind) -> Option<&[u8]> {
        let guid = kind.guid();
        self.entries
            .iter()
            .find(|e| e.guid == guid)
            .map(|e| e.data.as_slice())
    }
}

impl fmt::Display for CertTableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.data.get(..8).unwrap_or(&self.data);
        write!(
            f,
            "{} {:?}: {} bytes ({}...)",
            self.guid,
            self.kind(),
            self.data.len(),
            HexBytes(prefix)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(guid: Guid, offset: u32, length: u32) -> Vec<u8> {
        RawEntry {
            guid: guid.0,
            offset: U32::new(offset),
            length: U32::new(length),
        }
        .as_bytes()
        .to_vec()
    }

    /// Zero padding after a DER certificate goes, the certificate's own last byte stays even
    /// when it is zero; PEM text loses trailing zeros; a DER element followed by anything but
    /// zeros is trimmed of zeros only.
    #[test]
    fn trimming_keeps_a_der_certificate_whole() {
        let trimmed = |data: &[u8]| {
            CertTableEntry {
                guid: Guid::VCEK,
                data: data.to_vec(),
            }
            .trimmed()
            .to_vec()
        };
        // SEQUENCE { OCTET STRING 01 00 } ends in 0x00.
        let der = [0x30, 0x04, 0x04, 0x02, 0x01, 0x00];
        assert_eq!(trimmed(&der), der);
        assert_eq!(trimmed(&[&der[..], &[0; 40]].concat()), der);
        let pem = b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        assert_eq!(trimmed(&[&pem[..], &[0; 8]].concat()), pem);
        assert_eq!(
            trimmed(&[&der[..], &[7, 0, 0]].concat()),
            [&der[..], &[7]].concat()
        );
        assert!(trimmed(&[0; 16]).is_empty());
    }

    #[test]
    fn guid_text() {
        assert_eq!(
            Guid::VCEK.to_string(),
            "63da758d-e664-4564-adc5-f4b93be8accd"
        );
        assert_eq!(
            Guid::VLEK.to_string(),
            "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
        );
        assert_eq!(
            Guid::ASK.to_string(),
            "4ab7b379-bbac-4fe4-a02f-05aef327c782"
        );
        assert_eq!(
            Guid::ARK.to_string(),
            "c0b406a4-a803-4952-9743-3fb6014cd0ae"
        );
        assert_eq!(
            Guid::CRL.to_string(),
            "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"
        );
        assert_eq!(
            Guid::NIL.to_string(),
            "00000000-0000-0000-0000-000000000000"
        );
        for kind in [
            CertKind::Vcek,
            CertKind::Vlek,
            CertKind::Ask,
            CertKind::Ark,
            CertKind::Crl,
        ] {
            assert_eq!(CertKind::from(kind.guid()), kind);
        }
        assert_eq!(CertKind::from(CertKind::Asvk.guid()), CertKind::Ask);
    }

    #[test]
    fn real_tables() {
        let Some(dir) = crate::abi::report::tests::vectors_dir() else {
            return;
        };
        let snp = dir.join("snp");

        let aux = std::fs::read(snp.join("genoa-v3_veraison-tsm/auxblob.bin")).unwrap();
        let table = CertTable::parse(&aux).unwrap();
        let kinds: Vec<CertKind> = table.entries.iter().map(CertTableEntry::kind).collect();
        assert_eq!(kinds, [CertKind::Ark, CertKind::Ask, CertKind::Vcek]);
        for kind in [CertKind::Ark, CertKind::Ask, CertKind::Vcek] {
            let pem = table.get(kind).unwrap();
            assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"), "{kind:?}");
        }
        let vcek_pem = std::fs::read(snp.join("genoa-v3_veraison-tsm/vcek.pem")).unwrap();
        assert_eq!(table.get(CertKind::Vcek).unwrap(), vcek_pem.as_slice());
        assert_eq!(table.get(CertKind::Vlek), None);
        assert_eq!(CertTable::parse(&table.to_bytes()).unwrap(), table);
        // As a source of certificates: one per entry, with its kind; DER padded with zeros
        // (as hosts write it) and an entry holding no certificate (a CRL) beside PEM.
        let vcek = tessera_pki::load_certificates(&vcek_pem).unwrap().remove(0);
        let mut padded = vcek.der().to_vec();
        padded.resize(padded.len() + 300, 0);
        let mut mixed = table.clone();
        mixed.entries.push(CertTableEntry {
            guid: Guid::VCEK,
            data: padded,
        });
        mixed.entries.push(CertTableEntry {
            guid: Guid::CRL,
            data: vec![0x30, 0x03, 0x02, 0x01, 0x00],
        });
        let found = mixed.certificates();
        let kinds: Vec<CertKind> = found.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [CertKind::Ark, CertKind::Ask, CertKind::Vcek, CertKind::Vcek]
        );
        assert_eq!(found[2].1.der(), vcek.der());
        assert_eq!(found[3].1.der(), vcek.der());

        let aws =
            std::fs::read(snp.join("milan-v2-vlek_aws_constellation-cc-test/certs_table.bin"))
                .unwrap();
        let table = CertTable::parse(&aws).unwrap();
        assert_eq!(table.entries.len(), 1);
        assert_eq!(table.entries[0].kind(), CertKind::Vlek);
        let vlek =
            std::fs::read(snp.join("milan-v2-vlek_aws_constellation-cc-test/vlek.der")).unwrap();
        assert_eq!(table.get(CertKind::Vlek).unwrap(), vlek.as_slice());
        assert_eq!(CertTable::parse(&table.to_bytes()).unwrap(), table);
    }

    #[test]
    fn empty_and_padding() {
        assert_eq!(CertTable::parse(&[]).unwrap(), CertTable::default());
        assert_eq!(CertTable::parse(&[0; 4096]).unwrap(), CertTable::default());
        let mut t = entry(Guid::VCEK, 48, 3);
        t.extend(entry(Guid::NIL, 0, 0));
        t.extend([1, 2, 3]);
        t.extend([0; 100]);
        let table = CertTable::parse(&t).unwrap();
        assert_eq!(table.get(CertKind::Vcek), Some(&[1u8, 2, 3][..]));
        assert_eq!(CertTable::default().to_bytes(), vec![0; ENTRY_LEN]);
    }

    #[test]
    fn rejects_out_of_range() {
        let mut t = entry(Guid::VCEK, 48, 10);
        t.extend(entry(Guid::NIL, 0, 0));
        t.extend([0; 9]);
        assert!(matches!(
            CertTable::parse(&t),
            Err(ParseError::CertTableEntryOutOfRange {
                index: 0,
                offset: 48,
                length: 10,
                ..
            })
        ));
        let mut t = entry(Guid::VCEK, u32::MAX, 2);
        t.extend(entry(Guid::NIL, 0, 0));
        assert!(matches!(
            CertTable::parse(&t),
            Err(ParseError::CertTableEntryOutOfRange { .. })
        ));
        let mut t = entry(Guid::VCEK, 48, u32::MAX);
        t.extend(entry(Guid::NIL, 0, 0));
        t.extend([0; 16]);
        assert!(matches!(
            CertTable::parse(&t),
            Err(ParseError::CertTableEntryOutOfRange { .. })
        ));
    }

    #[test]
    fn rejects_overlap() {
        // Data pointing into the entry array.
        let mut t = entry(Guid::VCEK, 0, 24);
        t.extend(entry(Guid::NIL, 0, 0));
        assert!(matches!(
            CertTable::parse(&t),
            Err(ParseError::CertTableEntryOverlapsHeader {
                index: 0,
                offset: 0,
                header_len: 48
            })
        ));
        let mut t = entry(Guid::VCEK, 72, 4);
        t.extend(entry(Guid::ASK, 47, 4));
        t.extend(entry(Guid::NIL, 0, 0));
        t.extend([0; 8]);
        assert!(matches!(
            CertTable::parse(&t),
            Err(ParseError::CertTableEntryOverlapsHeader { index: 1, .. })
        ));
        // Two entries sharing bytes.
        let mut t = entry(Guid::VCEK, 72, 4);
        t.extend(entry(Guid::ASK, 75, 4));
        t.extend(entry(Guid::NIL, 0, 0));
        t.extend([0; 8]);
        assert_eq!(
            CertTable::parse(&t),
            Err(ParseError::CertTableEntriesOverlap {
                first: 0,
                second: 1
            })
        );
    }

    #[test]
    fn rejects_missing_terminator() {
        let t = entry(Guid::VCEK, 24, 0);
        assert_eq!(CertTable::parse(&t), Err(ParseError::CertTableUnterminated));
        let mut t = entry(Guid::VCEK, 48, 0);
        t.extend([0; 23]); // a partial terminator
        assert_eq!(CertTable::parse(&t), Err(ParseError::CertTableUnterminated));
        assert_eq!(
            CertTable::parse(&[0; 23]),
            Err(ParseError::CertTableUnterminated)
        );
        assert_eq!(
            CertTable::parse(&[0]),
            Err(ParseError::CertTableUnterminated)
        );
    }

    #[test]
    fn rejects_null_guid_entry() {
        let mut t = entry(Guid::NIL, 48, 1);
        t.extend(entry(Guid::NIL, 0, 0));
        t.push(0);
        assert_eq!(
            CertTable::parse(&t),
            Err(ParseError::CertTableNullGuid { index: 0 })
        );
    }

    #[test]
    fn rejects_duplicate_guid() {
        let mut t = entry(Guid::VCEK, 72, 1);
        t.extend(entry(Guid::VCEK, 73, 1));
        t.extend(entry(Guid::NIL, 0, 0));
        t.extend([1, 2]);
        assert_eq!(
            CertTable::parse(&t),
            Err(ParseError::CertTableDuplicateGuid(Guid::VCEK))
        );
    }

    #[test]
    fn rejects_too_many_entries() {
        let table = |n: usize| CertTable {
            entries: (0..n)
                .map(|i| CertTableEntry {
                    guid: Guid([u8::try_from(i).unwrap() + 1; 16]),
                    data: vec![0xAB; 2],
                })
                .collect(),
        };
        let max = table(CertTable::MAX_ENTRIES);
        assert_eq!(CertTable::parse(&max.to_bytes()).unwrap(), max);
        assert_eq!(
            CertTable::parse(&table(CertTable::MAX_ENTRIES + 1).to_bytes()),
            Err(ParseError::CertTableTooManyEntries {
                max: CertTable::MAX_ENTRIES
            })
        );
    }

    #[test]
    fn rejects_oversized_input() {
        let mut t = CertTable::default().to_bytes();
        t.resize(CertTable::MAX_INPUT + 1, 0);
        assert!(matches!(
            CertTable::parse(&t),
            Err(ParseError::TooLarge { .. })
        ));
    }

    fn arb_table() -> impl Strategy<Value = CertTable> {
        proptest::collection::btree_map(
            any::<[u8; 16]>().prop_filter("non-nil", |g| *g != [0; 16]),
            proptest::collection::vec(any::<u8>(), 0..300),
            0..=CertTable::MAX_ENTRIES,
        )
        .prop_map(|m| CertTable {
            entries: m
                .into_iter()
                .map(|(g, data)| CertTableEntry {
                    guid: Guid(g),
                    data,
                })
                .collect(),
        })
    }

    proptest! {
        #[test]
        fn round_trip(table in arb_table(), padding in 0usize..64) {
            let mut bytes = table.to_bytes();
            bytes.resize(bytes.len() + padding, 0);
            prop_assert_eq!(CertTable::parse(&bytes).unwrap(), table.clone());
            crate::abi::fuzz_cert_table(&bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            crate::abi::fuzz_cert_table(&bytes);
        }
    }
}
