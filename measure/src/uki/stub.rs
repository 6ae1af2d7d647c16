//! Which systemd-stub built a UKI, and which sections that stub measures into PCR 11.
//!
//! systemd-stub carries a `.sdmagic` section holding `#### LoaderInfo: systemd-stub <version> ####`
//! (systemd `src/boot/efi/stub.c`, `DECLARE_NOALLOC_SECTION(".sdmagic", ...)`). The stub measures
//! the UKI sections it knows, in the order of its `unified_sections[]` table
//! (`src/fundamental/tpm-pcr.c` in v252–v253, `src/fundamental/uki.c` later), skipping `.pcrsig`
//! (which carries the signature of the result and so cannot be part of it) and sections that are
//! absent or empty. Sections a stub does not know — such as the stub's own `.sbat` for a v252
//! stub — are not measured at all.

use serde::Serialize;
use thiserror::Error;

/// The marker systemd-stub puts in `.sdmagic`.
const LOADER_INFO_PREFIX: &str = "#### LoaderInfo: systemd-stub ";
const LOADER_INFO_SUFFIX: &str = " ####";

/// The oldest stub that measures UKI sections into PCR 11 (systemd v252 introduced it together
/// with systemd-measure and systemd-pcrphase).
pub const OLDEST_KNOWN: u32 = 252;
/// The newest stub whose section table Warrant knows.
pub const NEWEST_KNOWN: u32 = 258;

/// v252–v253: `unified_sections[]` = .linux .osrel .cmdline .initrd .splash .dtb .pcrsig .pcrpkey.
const SECTIONS_252: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey",
];
/// v254–v255 add `.uname` and `.sbat` (after `.dtb`, before `.pcrsig`).
const SECTIONS_254: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey",
];
/// v256 adds `.ucode` after `.initrd`.
const SECTIONS_256: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrpkey",
];
/// v257+ add `.profile` (multi-profile UKIs), `.dtbauto` and `.hwids`; v258 `.efifw`.
const SECTIONS_257: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrpkey",
];

/// Sections that change what newer stubs measure in ways Warrant does not predict (profile
/// selection, device-tree/hardware-ID matching, firmware): an image that has one of them, for a
/// stub that knows it, is refused rather than mispredicted.
const UNPREDICTED_257: &[&str] = &[".profile", ".dtbauto", ".hwids", ".efifw"];

/// A problem with the stub of a UKI.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StubError {
    /// `.sdmagic` is missing.
    #[error("no .sdmagic section: not built on systemd-stub (or the stub is too old)")]
    NoSdmagic,
    /// `.sdmagic` does not hold a systemd-stub LoaderInfo string.
    #[error("the .sdmagic section is not a systemd-stub LoaderInfo string")]
    BadSdmagic,
    /// The stub predates PCR 11 measurements.
    #[error("systemd-stub {version} does not measure UKI sections into PCR 11 (needs v{min}+)")]
    TooOld { version: String, min: u32 },
    /// The stub is newer than any Warrant knows.
    #[error(
        "systemd-stub {version} is newer than v{newest}, whose measurements Warrant knows; \
         check its section table and pass the version to assume"
    )]
    TooNew { version: String, newest: u32 },
    /// The image has a section whose effect on PCR 11 Warrant does not model for this stub.
    #[error("section {section} (systemd-stub v{major}) is not supported by the prediction")]
    Unpredicted { section: String, major: u32 },
}

/// The version of the systemd-stub a UKI was built on, from its `.sdmagic` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StubVersion {
    /// As written, e.g. `252.39-1~deb12u2`.
    pub version: String,
    /// The systemd release it comes from, e.g. 252.
    pub major: u32,
}

impl StubVersion {
    /// Parses the content of `.sdmagic` (`#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####`
    /// followed by NUL padding).
    pub fn from_sdmagic(content: &[u8]) -> Result<Self, StubError> {
        let end = content
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(content.len());
        let text = content
            .get(..end)
            .and_then(|t| std::str::from_utf8(t).ok())
            .ok_or(StubError::BadSdmagic)?;
        let version = text
            .strip_prefix(LOADER_INFO_PREFIX)
            .and_then(|t| t.strip_suffix(LOADER_INFO_SUFFIX))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or(StubError::BadSdmagic)?;
        let digits: &str = version
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or_default();
        let major = digits.parse::<u32>().map_err(|_| StubError::BadSdmagic)?;
        Ok(StubVersion {
            version: version.to_string(),
            major,
        })
    }
}

/// What a stub of a given systemd release measures into PCR 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StubProfile {
    /// The release whose table this is.
    pub major: u32,
    /// Sections measured, in measurement order.
    pub measured: &'static [&'static str],
    /// Sections this stub knows but Warrant cannot predict.
    #[serde(skip)]
    pub unpredicted: &'static [&'static str],
}

impl StubProfile {
    /// The measurement table of systemd-stub release `major`.
    pub fn for_release(major: u32, version: &str) -> Result<Self, StubError> {
        let (measured, unpredicted): (&'static [&'static str], &'static [&'static str]) =
            match major {
                0..=251 => {
                    return Err(StubError::TooOld {
                        version: version.to_string(),
                        min: OLDEST_KNOWN,
                    })
                }
                252..=253 => (SECTIONS_252, &[]),
                254..=255 => (SECTIONS_254, &[]),
                256 => (SECTIONS_256, &[]),
                257..=NEWEST_KNOWN => (SECTIONS_257, UNPREDICTED_257),
                _ => {
                    return Err(StubError::TooNew {
                        version: version.to_string(),
                        newest: NEWEST_KNOWN,
                    })
                }
            };
        Ok(StubProfile {
            major,
            measured,
            unpredicted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_bookworm_sdmagic() {
        let v = StubVersion::from_sdmagic(b"#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####\0")
            .unwrap();
        assert_eq!(v.major, 252);
        assert_eq!(v.version, "252.39-1~deb12u2");
        let p = StubProfile::for_release(v.major, &v.version).unwrap();
        assert!(!p.measured.contains(&".sbat"));
        assert_eq!(p.measured.first(), Some(&".linux"));
    }

    #[test]
    fn bad_sdmagic() {
        for bad in [
            &b""[..],
            b"#### LoaderInfo: systemd-boot 252 ####",
            b"#### LoaderInfo: systemd-stub  ####",
            b"#### LoaderInfo: systemd-stub x252 ####",
            b"#### LoaderInfo: systemd-stub 252",
            b"#### LoaderInfo: systemd-stub \xff252 ####",
        ] {
            assert_eq!(StubVersion::from_sdmagic(bad), Err(StubError::BadSdmagic));
        }
    }

    #[test]
    fn version_ranges() {
        assert!(matches!(
            StubProfile::for_release(251, "251"),
            Err(StubError::TooOld { .. })
        ));
        assert!(matches!(
            StubProfile::for_release(NEWEST_KNOWN + 1, "x"),
            Err(StubError::TooNew { .. })
        ));
        assert!(StubProfile::for_release(254, "254")
            .unwrap()
            .measured
            .contains(&".sbat"));
        assert!(StubProfile::for_release(256, "256")
            .unwrap()
            .measured
            .contains(&".ucode"));
    }
}
