//! Reading and writing 1-D little-endian uint16 NumPy `.npy` files, the token-shard format of
//! the seed (build-nanogpt / fineweb) loaders.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Largest input data file read whole (a shard or a text corpus): far above any real shard,
/// low enough that a runaway size is refused by name instead of aborting the allocator.
pub const MAX_DATA_FILE_BYTES: u64 = 1 << 40;

/// The six bytes every `.npy` file starts with.
pub(crate) const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Writes tokens as a 1-D little-endian uint16 `.npy` (v1.0), atomically via `path.tmp`,
/// so shards are readable by NumPy and by the seed's loaders.
pub fn write_npy_u16(path: &Path, tokens: &[u16]) -> Result<()> {
    let dict = format!(
        "{{'descr': '<u2', 'fortran_order': False, 'shape': ({},), }}",
        tokens.len()
    );
    // magic(6) + version(2) + header_len(2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = NPY_MAGIC.len() + 2 + 2 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let header_len_u16 = u16::try_from(header_len)
        .with_context(|| format!("npy header for {} is too long", path.display()))?;
    let mut buf = Vec::with_capacity(unpadded + pad + tokens.len() * 2);
    buf.extend_from_slice(NPY_MAGIC);
    buf.extend_from_slice(&[1, 0]);
    buf.extend_from_slice(&header_len_u16.to_le_bytes());
    buf.extend_from_slice(dict.as_bytes());
    buf.extend(std::iter::repeat_n(b' ', pad));
    buf.push(b'\n');
    for t in tokens {
        buf.extend_from_slice(&t.to_le_bytes());
    }
    crate::store::fsio::write_atomic(path, &buf).with_context(|| {
        format!(
            "cannot write shard {} (is there free space?)",
            path.display()
        )
    })
}

/// Reads a 1-D little-endian uint16 `.npy` (header v1/v2/v3), validating it fully so a
/// corrupt or foreign shard fails loudly instead of training on garbage.
pub fn read_npy_u16(path: &Path) -> Result<Vec<u16>> {
    let shown = path.display();
    let bytes = crate::store::fsio::read_bounded(path, MAX_DATA_FILE_BYTES)
        .with_context(|| format!("cannot read shard {shown}"))?;
    let (header, data_start) = parse_header(&bytes).map_err(|why| {
        anyhow::anyhow!("shard {shown} is not a valid .npy file ({why}): regenerate it with `prepare` or numpy.save of a uint16 array")
    })?;
    let n = parse_dict(&header).map_err(|why| {
        anyhow::anyhow!("shard {shown} has an unsupported .npy header ({why}): expected a 1-D '<u2' (uint16) array, convert it with arr.astype(np.uint16)")
    })?;
    let data = &bytes[data_start..];
    let expected = n.saturating_mul(2);
    if data.len() != expected {
        bail!(
            "shard {shown} is truncated or padded: header says {n} tokens = {expected} data bytes but the file holds {} data bytes; regenerate it",
            data.len()
        );
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

/// Number of tokens in a uint16 `.npy` shard, reading only its header (and checking the file
/// size), so loaders can plan batches without loading every shard.
pub fn npy_u16_len(path: &Path) -> Result<usize> {
    use std::io::Read;
    let shown = path.display();
    let open_err =
        || format!("cannot read shard {shown}: check that the file exists and is readable");
    // Refuses FIFOs and devices before anything blocks on them.
    let mut f = crate::store::fsio::open_regular(path).with_context(open_err)?;
    let file_len = f.metadata().with_context(open_err)?.len();
    let mut head = Vec::new();
    (&mut f)
        .take(12)
        .read_to_end(&mut head)
        .with_context(open_err)?;
    let header_end = match head.get(6) {
        Some(1) if head.len() >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as u64,
        Some(2 | 3) if head.len() >= 12 => {
            12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64
        }
        _ => 12,
    };
    let want = header_end.min(file_len).saturating_sub(head.len() as u64);
    (&mut f)
        .take(want)
        .read_to_end(&mut head)
        .with_context(open_err)?;
    let (header, data_start) = parse_header(&head).map_err(|why| {
        anyhow::anyhow!("shard {shown} is not a valid .npy file ({why}): regenerate it with `prepare` or numpy.save of a uint16 array")
    })?;
    let n = parse_dict(&header).map_err(|why| {
        anyhow::anyhow!("shard {shown} has an unsupported .npy header ({why}): expected a 1-D '<u2' (uint16) array, convert it with arr.astype(np.uint16)")
    })?;
    let data_len = file_len - data_start as u64;
    let expected = (n as u64).saturating_mul(2);
    if data_len != expected {
        bail!(
            "shard {shown} is truncated or padded: header says {n} tokens = {expected} data bytes but the file holds {data_len} data bytes; regenerate it"
        );
    }
    Ok(n)
}

/// Returns (header dict text, offset of the data) or a short reason.
fn parse_header(bytes: &[u8]) -> std::result::Result<(String, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err("missing \\x93NUMPY magic".into());
    }
    let major = bytes[6];
    let (len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("file ends inside the header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unknown format version {v}")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| "file ends inside the header".to_string())?;
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| "header is not text".to_string())?
        .to_string();
    Ok((header, end))
}

/// Checks dtype/order/shape in a header dict and returns the element count.
fn parse_dict(h: &str) -> std::result::Result<usize, String> {
    let descr = dict_value(h, "descr").ok_or("no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if !matches!(descr, "<u2" | "=u2") {
        return Err(format!("dtype {descr:?} is not little-endian uint16"));
    }
    let fortran = dict_value(h, "fortran_order").ok_or("no 'fortran_order'")?;
    if fortran != "False" {
        return Err(format!("fortran_order is {fortran}"));
    }
    let shape = dict_value(h, "shape").ok_or("no 'shape'")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape {shape}"))?;
    let dims: Vec<&str> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if dims.len() != 1 {
        return Err(format!("shape {shape} is not 1-D"));
    }
    dims[0]
        .trim_end_matches('L')
        .parse::<usize>()
        .map_err(|_| format!("bad shape {shape}"))
}

/// Value text for `key` in a Python dict literal (strings keep their quotes, tuples their
/// parentheses).
fn dict_value<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let pos = h
        .find(&format!("'{key}'"))
        .or_else(|| h.find(&format!("\"{key}\"")))?;
    let rest = &h[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        rest[1..].find(q)? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}
