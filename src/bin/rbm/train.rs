pub fn run(_a: &crate::args::TrainArgs) -> rbm::Result<()> {
    Err(rbm::Error::Config("train: not yet wired".into()))
}
