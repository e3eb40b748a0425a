//! IDX datasets: parsing, memory-mapped and gzip'd files, MNIST-style datasets, minibatches.
