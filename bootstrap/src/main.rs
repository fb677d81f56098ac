//! `tappaas-bootstrap`: the first-boot agent. Not built yet; see issue "First boot".

fn main() {
    eprintln!("tappaas-bootstrap: the first-boot agent is not implemented yet");
    std::process::exit(2);
}
