//! Reading and writing 1-D little-endian uint16 / uint32 NumPy `.npy` files, the token-shard
//! format of the seed (build-nanogpt / fineweb) loaders. Hand-written: the format is a short
//! text header plus raw little-endian integers, and the crates that read it either pull in
//! ndarray or do not refuse a truncated file by name.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Largest input data file read whole (a shard or a text corpus): far above any real shard,
/// low enough that a runaway size is refused by name instead of aborting the allocator.
pub const MAX_DATA_FILE_BYTES: u64 = 1 << 40;

/// The six bytes every `.npy` file starts with.
pub(crate) const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Element type of a token shard: uint16 while every id fits (half the bytes), uint32 for
/// vocabularies over 65,536 (Llama 3's 128,256, for one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDtype {
    /// `<u2`
    U16,
    /// `<u4`
    U32,
}

impl TokenDtype {
    /// The narrowest dtype that holds every id of a `vocab_size` vocabulary.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 {
            TokenDtype::U16
        } else {
            TokenDtype::U32
        }
    }

    /// The NumPy `descr` string.
    pub fn descr(self) -> &'static str {
        match self {
            TokenDtype::U16 => "<u2",
            TokenDtype::U32 => "<u4",
        }
    }

    /// Bytes per token.
    pub fn width(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::U32 => 4,
        }
    }

    /// The NumPy name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            TokenDtype::U16 => "uint16",
            TokenDtype::U32 => "uint32",
        }
    }

    fn from_descr(descr: &str) -> Option<Self> {
        match descr {
            "<u2" | "=u2" => Some(TokenDtype::U16),
            "<u4" | "=u4" => Some(TokenDtype::U32),
            _ => None,
        }
    }
}

impl std::fmt::Display for TokenDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An integer type a shard can hold, so one writer serves both widths.
pub trait TokenInt: Copy + Into<u32> {
    /// The dtype a slice of these is written as.
    const DTYPE: TokenDtype;
    /// Append the little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
}

impl TokenInt for u16 {
    const DTYPE: TokenDtype = TokenDtype::U16;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl TokenInt for u32 {
    const DTYPE: TokenDtype = TokenDtype::U32;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// The tokens of one shard in their stored width: a uint16 shard stays half the size in
/// memory, which is what the loader holds while training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardTokens {
    /// From a `<u2` file.
    U16(Vec<u16>),
    /// From a `<u4` file.
    U32(Vec<u32>),
}

impl ShardTokens {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        match self {
            ShardTokens::U16(v) => v.len(),
            ShardTokens::U32(v) => v.len(),
        }
    }

    /// Whether the shard holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dtype the tokens were stored as.
    pub fn dtype(&self) -> TokenDtype {
        match self {
            ShardTokens::U16(_) => TokenDtype::U16,
            ShardTokens::U32(_) => TokenDtype::U32,
        }
    }

    /// Append tokens `start..start + n` widened to u32 (panics past the end, like slicing).
    pub fn extend_window(&self, start: usize, n: usize, out: &mut Vec<u32>) {
        match self {
            ShardTokens::U16(v) => out.extend(v[start..start + n].iter().map(|&t| t as u32)),
            ShardTokens::U32(v) => out.extend_from_slice(&v[start..start + n]),
        }
    }

    /// Every token widened to u32, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            ShardTokens::U16(v) => Box::new(v.iter().map(|&t| t as u32)),
            ShardTokens::U32(v) => Box::new(v.iter().copied()),
        }
    }
}

/// What a shard's header says: its length and dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpyInfo {
    /// Number of tokens.
    pub len: usize,
    /// Element type.
    pub dtype: TokenDtype,
}

/// Writes tokens as a 1-D little-endian `.npy` (v1.0) of `T`'s width, atomically, so shards
/// are readable by NumPy and by the seed's loaders.
pub fn write_npy<T: TokenInt>(path: &Path, tokens: &[T]) -> Result<()> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({},), }}",
        T::DTYPE.descr(),
        tokens.len()
    );
    // magic(6) + version(2) + header_len(2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = NPY_MAGIC.len() + 2 + 2 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let header_len_u16 = u16::try_from(header_len)
        .with_context(|| format!("npy header for {} is too long", path.display()))?;
    let mut buf = Vec::with_capacity(unpadded + pad + tokens.len() * T::DTYPE.width());
    buf.extend_from_slice(NPY_MAGIC);
    buf.extend_from_slice(&[1, 0]);
    buf.extend_from_slice(&header_len_u16.to_le_bytes());
    buf.extend_from_slice(dict.as_bytes());
    buf.extend(std::iter::repeat_n(b' ', pad));
    buf.push(b'\n');
    for &t in tokens {
        t.put_le(&mut buf);
    }
    crate::store::fsio::write_atomic(path, &buf).with_context(|| {
        format!(
            "cannot write shard {} (is there free space?)",
            path.display()
        )
    })
}

/// [`write_npy`] for uint16 tokens (`<u2`).
pub fn write_npy_u16(path: &Path, tokens: &[u16]) -> Result<()> {
    write_npy(path, tokens)
}

/// Reads a 1-D little-endian uint16 or uint32 `.npy` (header v1/v2/v3), validating it fully
/// so a corrupt or foreign shard fails loudly instead of training on garbage.
pub fn read_npy_tokens(path: &Path) -> Result<ShardTokens> {
    let shown = path.display();
    let bytes = crate::store::fsio::read_bounded(path, MAX_DATA_FILE_BYTES)
        .with_context(|| format!("cannot read shard {shown}"))?;
    let (header, data_start) = parse_header(&bytes).map_err(|why| not_npy(path, &why))?;
    let info = parse_dict(&header).map_err(|why| bad_header(path, &why))?;
    let data = &bytes[data_start..];
    check_data_len(path, info, data.len() as u64)?;
    Ok(match info.dtype {
        TokenDtype::U16 => ShardTokens::U16(
            data.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        TokenDtype::U32 => ShardTokens::U32(
            data.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    })
}

/// Reads a uint16 shard; a uint32 one is refused by name (for callers that only handle the
/// narrow form).
pub fn read_npy_u16(path: &Path) -> Result<Vec<u16>> {
    match read_npy_tokens(path)? {
        ShardTokens::U16(v) => Ok(v),
        ShardTokens::U32(_) => bail!(
            "shard {} is uint32; this reader expects uint16",
            path.display()
        ),
    }
}

/// Length and dtype of a `.npy` shard, reading only its header (and checking the file size),
/// so loaders can plan batches without loading every shard.
pub fn npy_info(path: &Path) -> Result<NpyInfo> {
    Ok(npy_layout(path)?.info)
}

/// A shard's header facts plus where its tokens start, so the loader can read any window with
/// one positioned read instead of holding the shard in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpyLayout {
    /// Length and dtype.
    pub info: NpyInfo,
    /// Byte offset of the first token (the header's length).
    pub data_start: u64,
}

impl NpyLayout {
    /// The file size this layout implies: a shard of another size was changed since.
    pub fn file_len(&self) -> u64 {
        self.data_start + self.info.len as u64 * self.info.dtype.width() as u64
    }
}

/// [`npy_info`] with the data offset (see [`NpyLayout`]).
pub fn npy_layout(path: &Path) -> Result<NpyLayout> {
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
    let (header, data_start) = parse_header(&head).map_err(|why| not_npy(path, &why))?;
    let info = parse_dict(&header).map_err(|why| bad_header(path, &why))?;
    check_data_len(path, info, file_len - data_start as u64)?;
    Ok(NpyLayout {
        info,
        data_start: data_start as u64,
    })
}

fn not_npy(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!("shard {} is not a valid .npy file ({why}): regenerate it with `prepare` or numpy.save of a uint16/uint32 array", path.display())
}

fn bad_header(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!("shard {} has an unsupported .npy header ({why}): expected a 1-D '<u2' (uint16) or '<u4' (uint32) array, convert it with arr.astype(np.uint16) or np.uint32", path.display())
}

fn check_data_len(path: &Path, info: NpyInfo, data_len: u64) -> Result<()> {
    let expected = (info.len as u64).saturating_mul(info.dtype.width() as u64);
    if data_len != expected {
        bail!(
            "shard {} is truncated or padded: header says {} {} tokens = {expected} data bytes but the file holds {data_len} data bytes; regenerate it",
            path.display(),
            info.len,
            info.dtype
        );
    }
    Ok(())
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

/// Checks dtype/order/shape in a header dict and returns the element count and dtype.
fn parse_dict(h: &str) -> std::result::Result<NpyInfo, String> {
    let descr = dict_value(h, "descr").ok_or("no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = TokenDtype::from_descr(descr)
        .ok_or_else(|| format!("dtype {descr:?} is not little-endian uint16 or uint32"))?;
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
    let len = dims[0]
        .trim_end_matches('L')
        .parse::<usize>()
        .map_err(|_| format!("bad shape {shape}"))?;
    Ok(NpyInfo { len, dtype })
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

#[cfg(test)]
#[path = "npy_tests.rs"]
mod tests;
