//! `Content-Encoding` of ingest bodies: gzip and zstd decompressed with a cap on the output,
//! so a small bomb cannot become a large allocation; the output can be paid for chunk by chunk
//! as it grows ([`decompress_charged`]).

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
    decompress_charged(encoding, body, max, |_| Ok::<(), EncodingError>(()))
}

/// Bytes decompressed at a time, each charged before it is kept.
const CHUNK: usize = 64 << 10;

/// [`decompress`], calling `charge` with each chunk's size before the chunk is kept, so the
/// output is paid for as it grows (a refusal from `charge` stops the decompression).
pub fn decompress_charged<E: From<EncodingError>>(
    encoding: &str,
    body: Bytes,
    max: usize,
    mut charge: impl FnMut(usize) -> Result<(), E>,
) -> Result<Bytes, E> {
    let encoding = encoding.trim().to_ascii_lowercase();
    let corrupt = |e: std::io::Error| EncodingError::Corrupt {
        encoding: encoding.clone(),
        reason: e.to_string(),
    };
    // The size the body claims (within the cap) is paid for and reserved at once, so the output
    // is not copied as it grows; a body that claims less grows past it, paying as it goes.
    let claimed = claimed_len(&encoding, &body).min(max);
    let mut read_capped = |r: &mut dyn Read| -> Result<Bytes, E> {
        charge(claimed)?;
        let mut paid = claimed;
        let mut out = Vec::with_capacity(claimed);
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = r.read(&mut chunk).map_err(corrupt)?;
            if n == 0 {
                return Ok(Bytes::from(out));
            }
            let len = out.len() + n;
            if len > max {
                return Err(EncodingError::TooLarge { max }.into());
            }
            if len > paid {
                charge(len - paid)?;
                paid = len;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    };
    match encoding.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => read_capped(&mut flate2::read::MultiGzDecoder::new(&body[..])),
        "zstd" => {
            let mut dec = zstd::stream::read::Decoder::new(&body[..]).map_err(corrupt)?;
            read_capped(&mut dec)
        }
        other => Err(EncodingError::Unsupported(other.to_string()).into()),
    }
}

/// The decompressed size a body says it has: gzip's trailer (of its last member), a zstd
/// frame's header; 0 when it says nothing.
fn claimed_len(encoding: &str, body: &[u8]) -> usize {
    let claimed = match encoding {
        "gzip" | "x-gzip" if body.len() >= 18 && body.starts_with(&[0x1f, 0x8b]) => body
            .last_chunk::<4>()
            .map(|t| u64::from(u32::from_le_bytes(*t))),
        "zstd" => zstd::zstd_safe::get_frame_content_size(body).ok().flatten(),
        _ => None,
    };
    claimed.and_then(|n| usize::try_from(n).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn output_is_charged_as_it_grows_and_capped() {
        let raw = vec![b'a'; 1 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&raw);
        let body = Bytes::from(gz.finish().unwrap_or_default());
        let mut charged = 0;
        let out = decompress_charged(
            "gzip",
            body.clone(),
            2 << 20,
            |n| -> Result<(), EncodingError> {
                charged += n;
                Ok(())
            },
        );
        assert_eq!(out.map(|b| b.len()), Ok(1 << 20));
        assert_eq!(charged, 1 << 20, "the claimed size, paid once");
        assert_eq!(
            claimed_len("zstd", &zstd::bulk::compress(&raw, 1).unwrap_or_default()),
            1 << 20
        );
        assert_eq!(
            decompress("gzip", body.clone(), 1000),
            Err(EncodingError::TooLarge { max: 1000 })
        );
        let mut charged = 0;
        let refused = decompress_charged("gzip", body.clone(), 2 << 20, |n| {
            charged += n;
            if charged > 200_000 {
                return Err(EncodingError::TooLarge { max: 200_000 });
            }
            Ok(())
        });
        assert!(
            refused.is_err(),
            "the claimed 1 MiB is over what may be paid"
        );
        assert!(charged <= 1 << 20);
        // A body claiming more than it holds pays at most the cap.
        let mut lying = body.to_vec();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut charged = 0;
        let _ = decompress_charged(
            "gzip",
            Bytes::from(lying),
            2 << 20,
            |n| -> Result<(), EncodingError> {
                charged += n;
                Ok(())
            },
        );
        assert_eq!(charged, 2 << 20);
    }
}
