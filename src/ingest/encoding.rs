//! `Content-Encoding` of ingest bodies: gzip and zstd decompressed with a cap on the output,
//! so a small bomb cannot become a large allocation.

use std::io::Read;

use bytes::Bytes;

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EncodingError {
    #[error("unsupported Content-Encoding \"{0}\"; use zstd, gzip or none")]
    Unsupported(String),
    #[error("cannot decompress body ({encoding}): {reason}")]
    Corrupt { encoding: String, reason: String },
    #[error("decompressed body exceeds {max} bytes")]
    TooLarge { max: usize },
}

/// Decompresses `body` by its `Content-Encoding` (any case; empty means none), refusing an
/// output larger than `max`.
pub fn decompress(encoding: &str, body: Bytes, max: usize) -> Result<Bytes, EncodingError> {
    let encoding = encoding.trim().to_ascii_lowercase();
    let corrupt = |e: std::io::Error| EncodingError::Corrupt {
        encoding: encoding.clone(),
        reason: e.to_string(),
    };
    let read_capped = |r: &mut dyn Read| -> Result<Bytes, EncodingError> {
        let mut out = Vec::new();
        r.take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(corrupt)?;
        if out.len() > max {
            return Err(EncodingError::TooLarge { max });
        }
        Ok(Bytes::from(out))
    };
    match encoding.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => read_capped(&mut flate2::read::MultiGzDecoder::new(&body[..])),
        "zstd" => {
            let mut dec = zstd::stream::read::Decoder::new(&body[..]).map_err(corrupt)?;
            read_capped(&mut dec)
        }
        other => Err(EncodingError::Unsupported(other.to_string())),
    }
}
