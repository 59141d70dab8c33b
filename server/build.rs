//! `sqlx::migrate!` embeds the migrations at compile time, but cargo does not
//! know the server reads those folders: without this, a new migration would
//! not be in a binary built from a warm target directory.

fn main() {
    println!("cargo:rerun-if-changed=../migrations/postgres");
    println!("cargo:rerun-if-changed=../migrations/sqlite");
}
