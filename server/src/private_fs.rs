//! Folders and files that only the server's own user may read, whatever the
//! umask it was started with: outside systemd (whose unit sets `UMask=0027`)
//! a default umask would leave the database and screenshots readable by
//! every local user.

use std::path::Path;

/// Create `dir` and its missing parents; the folders created here are
/// `0700`. Folders that already exist are left as they are: an admin may
/// have chosen who else reads them.
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Create `file` empty with mode `0600` if it does not exist yet, so that
/// what opens it next (SQLite, which gives its journal files the database's
/// mode) never makes it readable by others.
pub fn create_file(file: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn what_is_created_is_private_and_what_exists_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir_all(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("wfh.db");
        create_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(&file, b"data").unwrap();
        create_file(&file).unwrap();
        assert_eq!(mode(&file), 0o640);
        assert_eq!(std::fs::read(&file).unwrap(), b"data");
    }
}
