//! The file-system effects of [`super::RealHost`] beyond `write_file`: directories, links,
//! removal, look-ups and root-image extraction.

use super::{ExtractProgress, ExtractReport, HostError};
use crate::rootfs::{self, ExtractOptions};
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where programs are looked up when `PATH` is unset (Debian's default for root).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> HostError + 'a {
    move |source| HostError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn sync_parent(path: &Path) -> Result<(), HostError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing directory", dir))?;
    }
    Ok(())
}

pub(super) fn create_dir(path: &Path, mode: u32) -> Result<(), HostError> {
    tracing::info!(path = %path.display(), mode = format!("{mode:o}"), "creating directory");
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(io_err("creating directory", path))?;
    let md = fs::symlink_metadata(path).map_err(io_err("looking up", path))?;
    if !md.is_dir() {
        // chmod would follow a link, possibly out of a target root onto the live system.
        return Err(HostError::Io {
            action: "setting the mode of",
            path: path.to_path_buf(),
            source: io::Error::other("it is a symbolic link, not a directory"),
        });
    }
    // The umask narrowed the mode of what DirBuilder made; set it exactly.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err("setting the mode of", path))
}

pub(super) fn symlink(target: &Path, link: &Path) -> Result<(), HostError> {
    tracing::info!(link = %link.display(), target = %target.display(), "creating symlink");
    if fs::symlink_metadata(link).is_ok_and(|m| m.is_dir()) {
        return Err(HostError::Io {
            action: "replacing",
            path: link.to_path_buf(),
            source: io::Error::other("a directory is there, not a file or link"),
        });
    }
    let name = link
        .file_name()
        .ok_or_else(|| io_err("linking", link)(io::ErrorKind::InvalidInput.into()))?;
    let tmp = link.with_file_name(format!(".{}.tappaas-new", name.to_string_lossy()));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", &tmp)(e)),
    }
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err("creating link", &tmp))?;
    fs::rename(&tmp, link).map_err(io_err("renaming a new link to", link))?;
    sync_parent(link)
}

pub(super) fn remove_file(path: &Path) -> Result<(), HostError> {
    match fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "removed");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", path)(e)),
    }
}

pub(super) fn path_exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

pub(super) fn extract_image(
    image: &Path,
    dest: &Path,
    progress: &mut dyn ExtractProgress,
) -> Result<ExtractReport, HostError> {
    tracing::info!(image = %image.display(), dest = %dest.display(), "extracting root image");
    let opts = ExtractOptions {
        // A rerun after a crash extracts over what the interrupted run left (unsquashfs -f).
        replace_existing: true,
        ..ExtractOptions::default()
    };
    rootfs::extract(image, dest, &opts, &mut |p| progress.report(p)).map_err(|e| {
        HostError::Extract {
            image: image.to_path_buf(),
            dest: dest.to_path_buf(),
            source: e.into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_links_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b/c");
        create_dir(&d, 0o700).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        assert!(dir.path().join("a/b").is_dir());
        create_dir(&d, 0o755).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
            0o755
        );

        let link = dir.path().join("a/localtime");
        fs::write(&link, b"old file").unwrap();
        symlink(Path::new("/usr/share/zoneinfo/UTC"), &link).unwrap();
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from("/usr/share/zoneinfo/UTC")
        );
        // A dangling absolute link exists for path_exists, and is replaced, not followed.
        assert!(path_exists(&link));
        symlink(Path::new("/etc/machine-id"), &link).unwrap();
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from("/etc/machine-id")
        );
        assert!(
            symlink(Path::new("x"), &d).is_err(),
            "a directory is never replaced"
        );

        let through = dir.path().join("through");
        std::os::unix::fs::symlink(&d, &through).unwrap();
        assert!(
            create_dir(&through, 0o700).is_err(),
            "never chmod through a link"
        );

        remove_file(&link).unwrap();
        assert!(!path_exists(&link));
        remove_file(&link).unwrap();
    }

    #[test]
    fn programs_are_found_on_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("tappaas-no-such-tool").is_none());
    }
}
