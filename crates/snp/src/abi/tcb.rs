//! `TCB_VERSION` and the SEV-SNP product whose generation decides its byte layout.
//!
//! Layout: AMD SEV-SNP Firmware ABI specification 56860, Table "TCB_VERSION Structure"
//! (little-endian, 8 bytes):
//!
//! | byte | Milan, Genoa (family 19h) | Turin (family 1Ah) |
//! |------|---------------------------|--------------------|
//! | 0    | BOOT_LOADER               | FMC                |
//! | 1    | TEE                       | BOOT_LOADER        |
//! | 2    | reserved                  | TEE                |
//! | 3    | reserved                  | SNP                |
//! | 4–5  | reserved                  | reserved           |
//! | 6    | SNP                       | reserved           |
//! | 7    | MICROCODE                 | MICROCODE          |
//!
//! Product from CPUID (report v3+): family 19h model 00h–0Fh Milan, 10h–1Fh Genoa, A0h–AFh
//! Genoa (Bergamo/Siena, certified under Genoa's ARK); family 1Ah model 00h–11h Turin. These
//! ranges are the ones of virtee/sev `Generation::identify_cpu` (go-sev-guest matches only the
//! exact models 01h, 11h and 1Ah/02h). A v2 report has no CPUID: the product then comes from
//! the VCEK's product-name extension ("Milan-B0") or from the caller.

use core::fmt;
use core::str::FromStr;

use super::ParseError;
use super::report::Cpuid;

/// An AMD EPYC generation with its own AMD root key and `TCB_VERSION` layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Product {
    /// 3rd generation EPYC (Zen 3, family 19h).
    Milan,
    /// 4th generation EPYC (Zen 4, family 19h), including Bergamo and Siena.
    Genoa,
    /// 5th generation EPYC (Zen 5, family 1Ah).
    Turin,
}

impl Product {
    const ZEN3_ZEN4_FAMILY: u8 = 0x19;
    const ZEN5_FAMILY: u8 = 0x1A;

    /// The product a v3+ report's CPUID bytes name, or `None` for a family/model this crate
    /// does not know (the caller must then name the product).
    pub fn from_cpuid(cpuid: Cpuid) -> Option<Product> {
        match (cpuid.family, cpuid.model) {
            (Self::ZEN3_ZEN4_FAMILY, 0x00..=0x0F) => Some(Product::Milan),
            (Self::ZEN3_ZEN4_FAMILY, 0x10..=0x1F | 0xA0..=0xAF) => Some(Product::Genoa),
            (Self::ZEN5_FAMILY, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }

    /// The product named by a VCEK/VLEK product-name extension such as `"Milan-B0"` or
    /// `"Genoa"`: the part before the first `-`, in KDS spelling.
    pub fn from_vcek_product_name(name: &str) -> Option<Product> {
        let base = name.split('-').next().unwrap_or(name);
        match base {
            "Milan" => Some(Product::Milan),
            "Genoa" => Some(Product::Genoa),
            "Turin" => Some(Product::Turin),
            _ => None,
        }
    }

    /// The name as AMD's Key Distribution Service spells it in URLs and certificates.
    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Whether `TCB_VERSION` carries an FMC SPL (byte 0; Turin only).
    pub fn has_fmc(self) -> bool {
        matches!(self, Product::Turin)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Product {
    type Err = ParseError;

    /// Accepts the KDS name in any ASCII case (`"milan"`, `"Genoa"`, `"TURIN"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Product::Milan, Product::Genoa, Product::Turin]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseError::UnknownProduct(s.chars().take(32).collect()))
    }
}

/// A raw `TCB_VERSION` (the `u64` of its 8 little-endian bytes in the report).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TcbVersion(pub u64);

/// The security patch levels (SPLs) of a `TCB_VERSION`, decoded for one product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TcbParts {
    /// FMC SPL: `Some` on Turin, `None` on Milan and Genoa.
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl TcbVersion {
    /// The 8 bytes as they appear in the report.
    pub fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// The SPLs under `product`'s layout.
    pub fn decode(self, product: Product) -> TcbParts {
        match (product, self.to_le_bytes()) {
            (Product::Milan | Product::Genoa, [bl, tee, _, _, _, _, snp, ucode]) => TcbParts {
                fmc: None,
                bootloader: bl,
                tee,
                snp,
                microcode: ucode,
            },
            (Product::Turin, [fmc, bl, tee, snp, _, _, _, ucode]) => TcbParts {
                fmc: Some(fmc),
                bootloader: bl,
                tee,
                snp,
                microcode: ucode,
            },
        }
    }

    /// Whether the bytes `product`'s layout reserves are all zero.
    pub fn reserved_bits_zero(self, product: Product) -> bool {
        match (product, self.to_le_bytes()) {
            (Product::Milan | Product::Genoa, [_, _, r2, r3, r4, r5, _, _]) => {
                [r2, r3, r4, r5] == [0; 4]
            }
            (Product::Turin, [_, _, _, _, r4, r5, r6, _]) => [r4, r5, r6] == [0; 3],
        }
    }
}

impl TcbParts {
    /// The `TCB_VERSION` with these SPLs under `product`'s layout, reserved bytes zero.
    /// `fmc` is ignored on Milan and Genoa; `None` encodes as 0 on Turin.
    pub fn encode(self, product: Product) -> TcbVersion {
        let bytes = match product {
            Product::Milan | Product::Genoa => [
                self.bootloader,
                self.tee,
                0,
                0,
                0,
                0,
                self.snp,
                self.microcode,
            ],
            Product::Turin => [
                self.fmc.unwrap_or(0),
                self.bootloader,
                self.tee,
                self.snp,
                0,
                0,
                0,
                self.microcode,
            ],
        };
        TcbVersion(u64::from_le_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layouts() {
        // Genoa report from the vectors: bl 10, tee 0, snp 23, ucode 84.
        let genoa = TcbVersion(u64::from_le_bytes([10, 0, 0, 0, 0, 0, 23, 84]));
        let parts = genoa.decode(Product::Genoa);
        assert_eq!(
            parts,
            TcbParts {
                fmc: None,
                bootloader: 10,
                tee: 0,
                snp: 23,
                microcode: 84
            }
        );
        assert!(genoa.reserved_bits_zero(Product::Genoa));
        assert!(!genoa.reserved_bits_zero(Product::Turin));

        let turin = TcbVersion(u64::from_le_bytes([1, 2, 3, 4, 0, 0, 0, 5]));
        let parts = turin.decode(Product::Turin);
        assert_eq!(
            parts,
            TcbParts {
                fmc: Some(1),
                bootloader: 2,
                tee: 3,
                snp: 4,
                microcode: 5
            }
        );
        assert!(turin.reserved_bits_zero(Product::Turin));
        assert!(!turin.reserved_bits_zero(Product::Milan));
        assert_eq!(turin.to_le_bytes(), [1, 2, 3, 4, 0, 0, 0, 5]);
        let no_fmc = TcbParts { fmc: None, ..parts };
        assert_eq!(
            no_fmc.encode(Product::Turin).decode(Product::Turin).fmc,
            Some(0)
        );
    }

    #[test]
    fn product_from_cpuid() {
        let c = |family, model| Cpuid {
            family,
            model,
            stepping: 1,
        };
        assert_eq!(Product::from_cpuid(c(0x19, 0x01)), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(c(0x19, 0x0F)), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(c(0x19, 0x11)), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(c(0x19, 0xA0)), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(c(0x19, 0xAF)), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(c(0x1A, 0x02)), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(c(0x1A, 0x11)), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(c(0x19, 0x20)), None);
        assert_eq!(Product::from_cpuid(c(0x19, 0xB0)), None);
        assert_eq!(Product::from_cpuid(c(0x1A, 0x12)), None);
        assert_eq!(Product::from_cpuid(c(0x17, 0x31)), None);
        assert_eq!(Product::from_cpuid(c(0, 0)), None);
    }

    #[test]
    fn product_names() {
        assert_eq!(
            Product::from_vcek_product_name("Milan-B0"),
            Some(Product::Milan)
        );
        assert_eq!(
            Product::from_vcek_product_name("Genoa"),
            Some(Product::Genoa)
        );
        assert_eq!(
            Product::from_vcek_product_name("Turin-B0"),
            Some(Product::Turin)
        );
        assert_eq!(Product::from_vcek_product_name("Rome-B0"), None);
        assert_eq!(Product::from_vcek_product_name(""), None);
        assert_eq!("milan".parse::<Product>(), Ok(Product::Milan));
        assert_eq!("Genoa".parse::<Product>(), Ok(Product::Genoa));
        assert_eq!("TURIN".parse::<Product>(), Ok(Product::Turin));
        assert!(matches!(
            "venice".parse::<Product>(),
            Err(ParseError::UnknownProduct(_))
        ));
        for p in [Product::Milan, Product::Genoa, Product::Turin] {
            assert_eq!(p.to_string().parse::<Product>(), Ok(p));
            assert_eq!(p.has_fmc(), p == Product::Turin);
        }
    }

    fn arb_product() -> impl Strategy<Value = Product> {
        prop_oneof![
            Just(Product::Milan),
            Just(Product::Genoa),
            Just(Product::Turin)
        ]
    }

    proptest! {
        #[test]
        fn parts_round_trip(product in arb_product(), fmc: u8, bl: u8, tee: u8, snp: u8, ucode: u8) {
            let parts = TcbParts {
                fmc: product.has_fmc().then_some(fmc),
                bootloader: bl,
                tee,
                snp,
                microcode: ucode,
            };
            let tcb = parts.encode(product);
            prop_assert!(tcb.reserved_bits_zero(product));
            prop_assert_eq!(tcb.decode(product), parts);
        }

        #[test]
        fn raw_round_trip_when_reserved_zero(product in arb_product(), raw: u64) {
            let tcb = TcbVersion(raw);
            let again = tcb.decode(product).encode(product);
            prop_assert_eq!(again == tcb, tcb.reserved_bits_zero(product));
        }
    }
}
