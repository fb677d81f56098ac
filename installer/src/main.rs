//! `tappaas-installer`: thin dispatcher into the library.

fn main() {
    println!("tappaas-installer");
}
