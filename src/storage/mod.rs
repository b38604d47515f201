//! Where Timberline's files live and how they are written durably: the segment layout
//! ([`layout`]), the store segment files are read through ([`SegmentFiles`]), and whole-file
//! replacement (temporary file, fsync, rename, then the directory fsynced), so a crash leaves
//! the old file or the new one, never a part.

mod files;
pub mod layout;

use std::path::Path;

pub use files::SegmentFiles;

/// Replaces `path` with `bytes` whole: written to `<path>.<tmp_ext>`, fsynced, then renamed
/// over `path`, so a reader sees the old file or the new one, never a part. The caller fsyncs
/// the directory (once, after all its renames) to make the rename itself durable.
pub fn replace_file(path: &Path, tmp_ext: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(tmp_ext);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// fsyncs a directory so that a create, rename or delete inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
