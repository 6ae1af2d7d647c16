//! Unit tests on synthetic PE images built here, byte by byte.

use super::pe::{PeError, PeImage};
use super::stub::StubError;
use super::*;
use crate::codec::CodecError;

const SDMAGIC: &[u8] = b"#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####\0";

/// A section to put in a synthetic image: name, content, VirtualSize (None = content length).
struct S<'a>(&'a str, &'a [u8], Option<u32>);

/// A minimal PE32+ image: DOS header, `PE\0\0`, COFF header, a 240-byte optional header, the
/// section table, then each section's raw data at 0x200-aligned offsets and 0x1000-aligned
/// virtual addresses.
fn build(sections: &[S<'_>]) -> Vec<u8> {
    let lfanew = 0x40usize;
    let opt_len = 240usize;
    let table_at = lfanew + 24 + opt_len;
    let mut data_at = (table_at + 40 * sections.len()).next_multiple_of(0x200);
    let mut va = 0x1000u32;
    let mut out = vec![0u8; data_at];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&(lfanew as u32).to_le_bytes());
    out[lfanew..lfanew + 4].copy_from_slice(b"PE\0\0");
    out[lfanew + 4..lfanew + 6].copy_from_slice(&0x8664u16.to_le_bytes());
    out[lfanew + 6..lfanew + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    out[lfanew + 20..lfanew + 22].copy_from_slice(&(opt_len as u16).to_le_bytes());
    let opt = lfanew + 24;
    out[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    let mut raw = Vec::new();
    for (i, S(name, content, vsize)) in sections.iter().enumerate() {
        let h = table_at + 40 * i;
        out[h..h + name.len()].copy_from_slice(name.as_bytes());
        let vsize = vsize.unwrap_or(content.len() as u32);
        let raw_len = content.len().next_multiple_of(0x200);
        out[h + 8..h + 12].copy_from_slice(&vsize.to_le_bytes());
        out[h + 12..h + 16].copy_from_slice(&va.to_le_bytes());
        out[h + 16..h + 20].copy_from_slice(&(raw_len as u32).to_le_bytes());
        out[h + 20..h + 24].copy_from_slice(&(data_at as u32).to_le_bytes());
        let mut c = content.to_vec();
        c.resize(raw_len, 0);
        raw.extend_from_slice(&c);
        data_at += raw_len;
        va += (vsize.max(1)).next_multiple_of(0x1000);
    }
    out[opt + 56..opt + 60].copy_from_slice(&va.to_le_bytes());
    out.extend_from_slice(&raw);
    out
}

fn basic() -> Vec<u8> {
    build(&[
        S(".text", b"code", None),
        S(".sbat", b"sbat,1,SBAT Version\n", None),
        S(".sdmagic", SDMAGIC, None),
        S(".osrel", b"ID=test\n", None),
        S(".cmdline", b"quiet", None),
        S(".linux", &[7u8; 3000], None),
        S(".initrd", &[9u8; 1000], None),
    ])
}

/// PCR 11 computed by hand from the section list, independent of `Uki`.
fn by_hand(alg: HashAlg, sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut pcr = alg.zero();
    for (name, content) in sections {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        alg.extend(&mut pcr, &alg.hash(&n));
        alg.extend(&mut pcr, &alg.hash(content));
    }
    pcr
}

#[test]
fn measures_known_sections_in_stub_order_and_skips_sbat() {
    let file = basic();
    let uki = Uki::parse(&file).unwrap();
    assert_eq!(uki.stub.as_ref().unwrap().major, 252);
    let names: Vec<_> = uki.measured().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, [".linux", ".osrel", ".cmdline", ".initrd"]);
    let expected = by_hand(
        HashAlg::Sha256,
        &[
            (".linux", &[7u8; 3000]),
            (".osrel", b"ID=test\n"),
            (".cmdline", b"quiet"),
            (".initrd", &[9u8; 1000]),
        ],
    );
    assert_eq!(uki.pcr11_after_stub(HashAlg::Sha256).unwrap(), expected);

    let p = uki
        .predict(&[HashAlg::Sha256], &normalize_phases(&[]))
        .unwrap();
    let v = &p.0["sha256"];
    assert_eq!(v.len(), 4);
    let mut pcr = expected;
    for (i, word) in ["enter-initrd", "leave-initrd", "sysinit", "ready"]
        .iter()
        .enumerate()
    {
        HashAlg::Sha256.extend(&mut pcr, &HashAlg::Sha256.hash(word.as_bytes()));
        assert_eq!(v[i].hash, pcr);
        assert_eq!(v[i].pcr, 11);
    }
}

#[test]
fn zero_fill_beyond_raw_data_is_measured() {
    // VirtualSize larger than the (0x200-rounded) raw data: the loader zero-fills, the stub
    // measures the zeros too.
    let file = build(&[
        S(".sdmagic", SDMAGIC, None),
        S(".linux", &[5u8; 100], Some(0x3000)),
    ]);
    let uki = Uki::parse(&file).unwrap();
    let mut content = vec![5u8; 100];
    content.resize(0x3000, 0);
    let expected = by_hand(HashAlg::Sha384, &[(".linux", &content)]);
    assert_eq!(uki.pcr11_after_stub(HashAlg::Sha384).unwrap(), expected);
    assert_eq!(uki.measured_sections()[0].zero_fill, 0x3000 - 0x200);
}

#[test]
fn virtual_size_smaller_than_raw_data_truncates() {
    let file = build(&[
        S(".sdmagic", SDMAGIC, None),
        S(".linux", b"abcdef", Some(3)),
    ]);
    let uki = Uki::parse(&file).unwrap();
    let expected = by_hand(HashAlg::Sha256, &[(".linux", b"abc")]);
    assert_eq!(uki.pcr11_after_stub(HashAlg::Sha256).unwrap(), expected);
}

#[test]
fn pcrsig_and_unknown_sections_do_not_change_pcr11() {
    let plain = build(&[S(".sdmagic", SDMAGIC, None), S(".linux", b"k", None)]);
    let signed = build(&[
        S(".sdmagic", SDMAGIC, None),
        S(".linux", b"k", None),
        S(".pcrsig", b"{\"sha256\":[]}", None),
        S(".uname", b"6.1.0", None), // unknown to a 252 stub
    ]);
    let a = Uki::parse(&plain).unwrap();
    let b = Uki::parse(&signed).unwrap();
    assert_eq!(
        a.pcr11_after_stub(HashAlg::Sha256).unwrap(),
        b.pcr11_after_stub(HashAlg::Sha256).unwrap()
    );
    // A 254 stub measures .uname.
    let c = Uki::parse_assuming(&signed, Some(254)).unwrap();
    assert_ne!(
        a.pcr11_after_stub(HashAlg::Sha256).unwrap(),
        c.pcr11_after_stub(HashAlg::Sha256).unwrap()
    );
}

#[test]
fn empty_sections_are_skipped() {
    let file = build(&[
        S(".sdmagic", SDMAGIC, None),
        S(".linux", b"k", None),
        S(".cmdline", b"", None),
    ]);
    let uki = Uki::parse(&file).unwrap();
    assert_eq!(uki.measured().len(), 1);
}

#[test]
fn phases_normalize_like_systemd_measure() {
    let got = normalize_phases(&[
        "sysinit".into(),
        "enter-initrd::".into(),
        ":".into(),
        "sysinit".into(),
    ]);
    assert_eq!(got, ["", "enter-initrd", "sysinit"]);
    let file = basic();
    let p = Uki::parse(&file)
        .unwrap()
        .predict(&[HashAlg::Sha256], &got)
        .unwrap();
    let json = serde_json::to_value(&p).unwrap();
    assert!(json["sha256"][0].get("phase").is_none());
    assert_eq!(json["sha256"][1]["phase"], "enter-initrd");
}

#[test]
fn sm3_is_refused() {
    let file = basic();
    let uki = Uki::parse(&file).unwrap();
    assert_eq!(
        uki.pcr11_after_stub(HashAlg::Sm3_256),
        Err(UkiError::UnsupportedBank {
            alg: HashAlg::Sm3_256
        })
    );
}

#[test]
fn missing_or_odd_stubs() {
    let no_magic = build(&[S(".linux", b"k", None)]);
    assert_eq!(
        Uki::parse(&no_magic).unwrap_err(),
        UkiError::Stub(StubError::NoSdmagic)
    );
    // With an assumed release it works.
    assert!(Uki::parse_assuming(&no_magic, Some(252)).is_ok());

    let old = build(&[
        S(
            ".sdmagic",
            b"#### LoaderInfo: systemd-stub 251.3 ####\0",
            None,
        ),
        S(".linux", b"k", None),
    ]);
    assert!(matches!(
        Uki::parse(&old),
        Err(UkiError::Stub(StubError::TooOld { .. }))
    ));
    let new = build(&[
        S(
            ".sdmagic",
            b"#### LoaderInfo: systemd-stub 999 ####\0",
            None,
        ),
        S(".linux", b"k", None),
    ]);
    assert!(matches!(
        Uki::parse(&new),
        Err(UkiError::Stub(StubError::TooNew { .. }))
    ));
    let profiles = build(&[
        S(
            ".sdmagic",
            b"#### LoaderInfo: systemd-stub 257.1 ####\0",
            None,
        ),
        S(".linux", b"k", None),
        S(".profile", b"ID=a", None),
    ]);
    assert!(matches!(
        Uki::parse(&profiles),
        Err(UkiError::Stub(StubError::Unpredicted { .. }))
    ));
    // The same image on a 252 stub: .profile is unknown to it, hence ignored.
    assert!(Uki::parse_assuming(&profiles, Some(252)).is_ok());
}

#[test]
fn no_linux_and_duplicates() {
    let f = build(&[S(".sdmagic", SDMAGIC, None), S(".osrel", b"x", None)]);
    assert_eq!(Uki::parse(&f).unwrap_err(), UkiError::NoLinux);
    let f = build(&[
        S(".sdmagic", SDMAGIC, None),
        S(".linux", b"a", None),
        S(".linux", b"b", None),
    ]);
    assert_eq!(
        Uki::parse(&f).unwrap_err(),
        UkiError::DuplicateSection {
            name: ".linux".into(),
            count: 2
        }
    );
}

#[test]
fn bad_headers_are_typed_errors() {
    let good = basic();

    let mut f = good.clone();
    f[0] = b'X';
    assert_eq!(
        PeImage::parse(&f),
        Err(PeError::BadDosMagic { found: *b"XZ" })
    );

    let mut f = good.clone();
    f[0x41] = b'X';
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::BadPeSignature { offset: 0x40, .. })
    ));

    let mut f = good.clone();
    f[0x3c..0x40].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::Codec(CodecError::Truncated { .. }))
    ));

    let mut f = good.clone();
    f[0x58] = 0x07; // optional header magic
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::BadOptionalMagic { .. })
    ));

    // NumberOfSections huge: the table would run past the end of the file.
    let mut f = good.clone();
    f[0x46..0x48].copy_from_slice(&0xffffu16.to_le_bytes());
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::Codec(CodecError::Truncated {
            what: "section table",
            ..
        }))
    ));

    // Optional header too short to hold SizeOfImage.
    let mut f = good.clone();
    f[0x54..0x56].copy_from_slice(&8u16.to_le_bytes());
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::OptionalHeaderTooShort { .. })
    ));
}

/// Offset of section header `i` in images from `build`.
fn header(i: usize) -> usize {
    0x40 + 24 + 240 + 40 * i
}

#[test]
fn bad_sections_are_typed_errors() {
    let good = basic();
    let linux = header(5);

    // Raw data beyond the end of the file.
    let mut f = good.clone();
    f[linux + 20..linux + 24].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::SectionOutOfFile { .. })
    ));

    // Huge VirtualSize: outside SizeOfImage, refused before anything is hashed.
    let mut f = good.clone();
    f[linux + 8..linux + 12].copy_from_slice(&0xffff_ff00u32.to_le_bytes());
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::SectionOutsideImage { .. })
    ));

    // Overlap: .initrd moved onto .linux's address.
    let mut f = good.clone();
    let va_linux: [u8; 4] = f[linux + 12..linux + 16].try_into().unwrap();
    let initrd = header(6);
    f[initrd + 12..initrd + 16].copy_from_slice(&va_linux);
    assert!(matches!(
        PeImage::parse(&f),
        Err(PeError::OverlappingSections { .. })
    ));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let good = basic();
    for len in 0..good.len() {
        let _ = Uki::parse(&good[..len]);
    }
    // Truncated inside the headers is always an error.
    for len in 0..header(7) {
        assert!(PeImage::parse(&good[..len]).is_err(), "len {len}");
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let good = basic();
    for i in 0..header(7) {
        for v in [0x00u8, 0xff, 0x80] {
            let mut f = good.clone();
            f[i] = v;
            let _ = Uki::parse(&f);
        }
    }
}
