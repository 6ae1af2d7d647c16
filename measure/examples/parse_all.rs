fn main() {
    for p in std::env::args().skip(1) {
        let b = std::fs::read(&p).unwrap();
        match measure::eventlog::EventLog::parse(&b) {
            Ok(l) => println!("{p}: {:?} {} events pad {}", l.format, l.events.len(), l.padding),
            Err(e) => println!("{p}: ERR {e}"),
        }
    }
}
