//! Tests of the `.npy` shard format: layout, header versions, both widths, refusals.

use super::*;

#[test]
fn npy_round_trip_and_header_layout() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    let toks: Vec<u16> = (0..1000u32).map(|i| (i * 77 % 65536) as u16).collect();
    write_npy_u16(&p, &toks).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0);
    assert_eq!(bytes[10 + hl - 1], b'\n');
    assert!(std::str::from_utf8(&bytes[10..10 + hl])
        .unwrap()
        .starts_with("{'descr': '<u2', 'fortran_order': False, 'shape': (1000,), }"));
    assert_eq!(read_npy_u16(&p).unwrap(), toks);
    assert_eq!(
        npy_info(&p).unwrap(),
        NpyInfo {
            len: 1000,
            dtype: TokenDtype::U16
        }
    );
    assert!(!dir.path().join("a.npy.tmp").exists());
    write_npy_u16(&p, &[]).unwrap();
    assert!(read_npy_u16(&p).unwrap().is_empty());
}

#[test]
fn npy_v2_header_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v2.npy");
    let dict = b"{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }          \n";
    let mut b = NPY_MAGIC.to_vec();
    b.extend_from_slice(&[2, 0]);
    b.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    b.extend_from_slice(dict);
    b.extend_from_slice(&[1, 0, 2, 0, 0xff, 0xff]);
    std::fs::write(&p, b).unwrap();
    assert_eq!(read_npy_u16(&p).unwrap(), [1, 2, 65535]);
}

#[test]
fn bad_npy_files_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.npy");
    write_npy_u16(&p, &[1, 2, 3, 4]).unwrap();
    let full = std::fs::read(&p).unwrap();
    std::fs::write(&p, &full[..full.len() - 3]).unwrap();
    let m = format!("{:#}", read_npy_u16(&p).unwrap_err());
    assert!(
        m.contains("t.npy")
            && m.contains("8 data bytes")
            && m.contains("5 data bytes")
            && !m.contains('\n'),
        "{m}"
    );
    let m = format!("{:#}", npy_info(&p).unwrap_err());
    assert!(m.contains("t.npy") && m.contains("5 data bytes"), "{m}");
    std::fs::write(&p, b"not numpy").unwrap();
    let m = format!("{:#}", read_npy_u16(&p).unwrap_err());
    assert!(m.contains("magic"), "{m}");
    for (dict, why) in [
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            "uint16",
        ),
        (
            "{'descr': '>u2', 'fortran_order': False, 'shape': (2,), }",
            "uint16",
        ),
        (
            "{'descr': '<u2', 'fortran_order': True, 'shape': (2,), }",
            "fortran",
        ),
        (
            "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 2), }",
            "1-D",
        ),
    ] {
        let mut b = NPY_MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(dict.len() as u16 + 1).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(&[0; 4]);
        std::fs::write(&p, b).unwrap();
        let m = format!("{:#}", read_npy_u16(&p).unwrap_err());
        assert!(m.contains(why) && m.contains("t.npy"), "{m}");
    }
}

/// `<u4` shards: header, round trip through both readers, the header-only length, and
/// truncation measured in 4-byte tokens; other wide dtypes are refused.
#[test]
fn uint32_shards_round_trip_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.npy");
    let toks: Vec<u32> = vec![0, 65535, 65536, 128_255, u32::MAX];
    write_npy(&p, &toks).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0);
    assert!(std::str::from_utf8(&bytes[10..10 + hl])
        .unwrap()
        .starts_with("{'descr': '<u4', 'fortran_order': False, 'shape': (5,), }"));
    assert_eq!(bytes.len(), 10 + hl + 20);
    let read = read_npy_tokens(&p).unwrap();
    assert_eq!(read, ShardTokens::U32(toks.clone()));
    assert_eq!(read.iter().collect::<Vec<_>>(), toks);
    let mut window = Vec::new();
    read.extend_window(1, 3, &mut window);
    assert_eq!(window, [65535, 65536, 128_255]);
    assert_eq!(
        npy_info(&p).unwrap(),
        NpyInfo {
            len: 5,
            dtype: TokenDtype::U32
        }
    );
    std::fs::write(&p, &bytes[..bytes.len() - 2]).unwrap();
    let m = format!("{:#}", npy_info(&p).unwrap_err());
    assert!(
        m.contains("w.npy") && m.contains("5 uint32 tokens = 20 data bytes") && m.contains("18"),
        "{m}"
    );
    for descr in ["<u8", ">u4", "<i4"] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
        let mut b = NPY_MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(dict.len() as u16 + 1).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(&[0; 8]);
        std::fs::write(&p, b).unwrap();
        let m = format!("{:#}", read_npy_tokens(&p).unwrap_err());
        assert!(m.contains(descr) && m.contains("uint32"), "{descr}: {m}");
    }
    assert_eq!(TokenDtype::for_vocab(65_536), TokenDtype::U16);
    assert_eq!(TokenDtype::for_vocab(65_537), TokenDtype::U32);
}
