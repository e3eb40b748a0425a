//! The reference notebook's experiments, and the ones it should have made: the logic gates
//! ([`gates`]: truth tables, training, success rates), their bit traces and SVD-against-PCA
//! cosines ([`gates_analysis`]; the cosines need the `linalg` feature), and generation from
//! noise ([`generation`]). Their figures are drawn by [`crate::figures`].

pub mod gates;
pub mod gates_analysis;
pub mod generation;
