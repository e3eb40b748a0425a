//! Model files: round trips, the layout other tools read, one test per load error, atomic
//! writes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rbm::model_file::{parse_model, serialize_model};
use rbm::{Error, ModelFile, ModelFileError, Rbm, load_model, save_model};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

// ---------------------------------------------------------------------------------------
// Helpers

/// A fresh folder under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "rbm-test-model-file-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the entries of the folder, sorted.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A 13–7 model with random weights and biases that include awkward finite values.
fn model() -> Rbm {
    let mut rbm = Rbm::new(13, 7, 2024).unwrap();
    for (i, b) in rbm.v_bias_mut().iter_mut().enumerate() {
        *b = (i as f32 * 0.37).sin() * 3.0;
    }
    for (j, c) in rbm.h_bias_mut().iter_mut().enumerate() {
        *c = -(j as f32 * 0.61).cos();
    }
    rbm.v_bias_mut()[0] = -0.0;
    rbm.v_bias_mut()[1] = f32::MIN_POSITIVE / 4.0; // subnormal
    rbm.h_bias_mut()[0] = f32::MAX;
    rbm.weights_mut()[0] = f32::MIN;
    rbm
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One tensor of a hand-built file.
struct Tensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn f32_tensor(name: &str, shape: &[usize], values: &[f32]) -> Tensor {
    Tensor {
        name: name.into(),
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        data: le_bytes(values),
    }
}

/// The three tensors of a valid `v`–`h` model (values are small distinct numbers).
fn valid_tensors(v: usize, h: usize) -> Vec<Tensor> {
    let w: Vec<f32> = (0..h * v).map(|i| i as f32 / 100.0).collect();
    let b: Vec<f32> = (0..v).map(|i| -(i as f32)).collect();
    let c: Vec<f32> = (0..h).map(|j| j as f32 / 2.0).collect();
    vec![
        f32_tensor("W", &[h, v], &w),
        f32_tensor("v_bias", &[v], &b),
        f32_tensor("h_bias", &[h], &c),
    ]
}

/// `tensors` with `name` replaced by `replacement`.
fn replace(mut tensors: Vec<Tensor>, name: &str, replacement: Tensor) -> Vec<Tensor> {
    let slot = tensors.iter_mut().find(|t| t.name == name).unwrap();
    *slot = replacement;
    tensors
}

fn meta(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// A safetensors file of `tensors` and `metadata`, serialized by the safetensors crate.
fn file_bytes(tensors: &[Tensor], metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            let view = TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap();
            (t.name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, metadata).unwrap()
}

/// Writes `bytes` to a file in a fresh folder, loads it and returns the load error, checking
/// that it is `Error::ModelFile` naming the file and that its message contains the path.
fn load_error(bytes: &[u8]) -> ModelFileError {
    let dir = TempDir::new("bad");
    let path = dir.path("bad.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let err = load_model(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "message lacks the path: {err}"
    );
    let Error::ModelFile { path: p, kind } = err else {
        panic!("expected Error::ModelFile, got {err:?}")
    };
    assert_eq!(p, path);
    // The pure parser agrees with the file loader.
    assert_eq!(parse_model(bytes).unwrap_err(), kind);
    kind
}

fn assert_bits_eq(a: &[f32], b: &[f32]) {
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a), bits(b));
}

fn assert_same_model(a: &Rbm, b: &Rbm) {
    assert_eq!((a.n_visible(), a.n_hidden()), (b.n_visible(), b.n_hidden()));
    assert_bits_eq(a.weights(), b.weights());
    assert_bits_eq(a.v_bias(), b.v_bias());
    assert_bits_eq(a.h_bias(), b.h_bias());
}

// ---------------------------------------------------------------------------------------
// Round trips and layout

#[test]
fn round_trip_is_bit_identical() {
    let dir = TempDir::new("round-trip");
    let path = dir.path("model.safetensors");
    let rbm = model();
    save_model(&path, &rbm, None).unwrap();
    let loaded = load_model(&path).unwrap();
    assert_same_model(&loaded.model, &rbm);
    assert_eq!(loaded.config(), None);
    assert_eq!(
        loaded.metadata.get("format").map(String::as_str),
        Some("rbm")
    );
    assert_eq!(loaded.rbm_version(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(dir.entries(), ["model.safetensors"]);
}

#[test]
fn config_round_trips() {
    let dir = TempDir::new("config");
    let path = dir.path("model.safetensors");
    let config = r#"{"k": 3, "lr": 0.01, "batch_size": 64, "note": "ünïcode \" quoted"}"#;
    save_model(&path, &model(), Some(config)).unwrap();
    let loaded = load_model(&path).unwrap();
    assert_eq!(loaded.config(), Some(config));
    assert_eq!(
        loaded.metadata.keys().collect::<Vec<_>>(),
        ["config", "format", "rbm_version"]
    );
}

#[test]
fn parse_of_serialize_is_identity() {
    let rbm = model();
    let bytes = serialize_model(&rbm, Some("[1, 2]")).unwrap();
    let ModelFile {
        model: back,
        metadata,
    } = parse_model(&bytes).unwrap();
    assert_same_model(&back, &rbm);
    assert_eq!(metadata["config"], "[1, 2]");
}

#[test]
fn saved_file_is_plain_safetensors_with_the_notebook_layout() {
    let dir = TempDir::new("layout");
    let path = dir.path("model.safetensors");
    let rbm = model();
    save_model(&path, &rbm, Some(r#"{"epochs": 15}"#)).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().as_ref().unwrap();
    assert_eq!(metadata["format"], "rbm");
    assert_eq!(metadata["rbm_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(metadata["config"], r#"{"epochs": 15}"#);
    assert_eq!(metadata.len(), 3);

    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["W", "h_bias", "v_bias"]);
    for (name, shape, values) in [
        ("W", vec![7, 13], rbm.weights()),
        ("v_bias", vec![13], rbm.v_bias()),
        ("h_bias", vec![7], rbm.h_bias()),
    ] {
        let t = file.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        assert_eq!(t.shape(), shape, "{name}");
        assert_eq!(t.data(), le_bytes(values), "{name}");
    }
}

#[test]
fn files_written_by_the_safetensors_crate_load() {
    // As `safetensors.torch.save_file(module.state_dict())` writes: no metadata at all.
    let tensors = valid_tensors(4, 3);
    let loaded = parse_model(&file_bytes(&tensors, None)).unwrap();
    assert_eq!((loaded.model.n_visible(), loaded.model.n_hidden()), (4, 3));
    assert_eq!(loaded.model.weights()[5], 0.05);
    assert_eq!(loaded.model.v_bias(), [0.0, -1.0, -2.0, -3.0]);
    assert_eq!(loaded.model.h_bias(), [0.0, 0.5, 1.0]);
    assert!(loaded.metadata.is_empty());

    // Other metadata keys are kept.
    let loaded = parse_model(&file_bytes(&tensors, meta(&[("author", "me")]))).unwrap();
    assert_eq!(loaded.metadata["author"], "me");
}

// ---------------------------------------------------------------------------------------
// Not safetensors

#[test]
fn garbage_is_a_format_error() {
    let kind = load_error(b"this is not a safetensors file at all");
    assert!(matches!(kind, ModelFileError::Format(_)), "{kind:?}");
}

#[test]
fn empty_file_is_a_format_error() {
    let kind = load_error(b"");
    assert!(matches!(kind, ModelFileError::Format(_)), "{kind:?}");
}

#[test]
fn truncated_file_is_a_format_error() {
    let bytes = serialize_model(&model(), Some("{}")).unwrap();
    // Cut short in the body (the last tensor), in the header, and in the length prefix.
    let kind = load_error(&bytes[..bytes.len() - 1]);
    assert!(matches!(kind, ModelFileError::Format(_)), "{kind:?}");
    for len in 0..bytes.len() {
        let err = parse_model(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, ModelFileError::Format(_)),
            "len {len}: {err:?}"
        );
    }
}

#[test]
fn trailing_bytes_are_a_format_error() {
    let mut bytes = serialize_model(&model(), None).unwrap();
    bytes.push(0);
    let kind = load_error(&bytes);
    assert!(matches!(kind, ModelFileError::Format(_)), "{kind:?}");
}

#[test]
fn corrupted_bytes_never_panic() {
    let bytes = serialize_model(&Rbm::new(3, 2, 1).unwrap(), Some(r#"{"a":1}"#)).unwrap();
    for i in 0..bytes.len() {
        for value in [0x00, 0x01, 0x22, 0x2c, 0x39, 0x5b, 0x7d, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] = value;
            let _ = parse_model(&bad);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Wrong tensors

#[test]
fn missing_tensors() {
    for name in ["W", "v_bias", "h_bias"] {
        let tensors: Vec<Tensor> = valid_tensors(5, 4)
            .into_iter()
            .filter(|t| t.name != name)
            .collect();
        let kind = load_error(&file_bytes(&tensors, None));
        assert_eq!(kind, ModelFileError::MissingTensor(name));
    }
    let kind = load_error(&file_bytes(&[], None));
    assert_eq!(kind, ModelFileError::MissingTensor("W"));
}

#[test]
fn unexpected_tensor() {
    let mut tensors = valid_tensors(5, 4);
    tensors.push(f32_tensor("momentum", &[4, 5], &[0.0; 20]));
    let kind = load_error(&file_bytes(&tensors, None));
    assert_eq!(kind, ModelFileError::UnexpectedTensor("momentum".into()));
}

#[test]
fn wrong_dtypes() {
    let w_f64 = Tensor {
        name: "W".into(),
        dtype: Dtype::F64,
        shape: vec![4, 5],
        data: vec![0; 20 * 8],
    };
    let kind = load_error(&file_bytes(&replace(valid_tensors(5, 4), "W", w_f64), None));
    assert_eq!(
        kind,
        ModelFileError::WrongDtype {
            name: "W",
            dtype: "F64".into()
        }
    );

    let w_i32 = Tensor {
        name: "W".into(),
        dtype: Dtype::I32,
        shape: vec![4, 5],
        data: vec![0; 20 * 4],
    };
    let kind = load_error(&file_bytes(&replace(valid_tensors(5, 4), "W", w_i32), None));
    assert_eq!(
        kind,
        ModelFileError::WrongDtype {
            name: "W",
            dtype: "I32".into()
        }
    );

    let h_f16 = Tensor {
        name: "h_bias".into(),
        dtype: Dtype::F16,
        shape: vec![4],
        data: vec![0; 4 * 2],
    };
    let kind = load_error(&file_bytes(
        &replace(valid_tensors(5, 4), "h_bias", h_f16),
        None,
    ));
    assert_eq!(
        kind,
        ModelFileError::WrongDtype {
            name: "h_bias",
            dtype: "F16".into()
        }
    );
}

/// Loads `tensors` and checks the error is `WrongShape` for `name` with shape `found`.
fn assert_wrong_shape(tensors: Vec<Tensor>, name: &str, found: &[usize]) -> String {
    match load_error(&file_bytes(&tensors, None)) {
        ModelFileError::WrongShape {
            name: n,
            found: f,
            expected,
        } => {
            assert_eq!((n, f.as_slice()), (name, found));
            expected
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
}

#[test]
fn w_must_be_two_dimensional() {
    let w = f32_tensor("W", &[20], &[0.0; 20]);
    assert_wrong_shape(replace(valid_tensors(5, 4), "W", w), "W", &[20]);
    let w = f32_tensor("W", &[2, 2, 5], &[0.0; 20]);
    assert_wrong_shape(replace(valid_tensors(5, 4), "W", w), "W", &[2, 2, 5]);
    let w = f32_tensor("W", &[], &[0.0]);
    assert_wrong_shape(replace(valid_tensors(5, 4), "W", w), "W", &[]);
}

#[test]
fn zero_sized_layers_are_rejected() {
    let tensors = vec![
        f32_tensor("W", &[0, 5], &[]),
        f32_tensor("v_bias", &[5], &[0.0; 5]),
        f32_tensor("h_bias", &[0], &[]),
    ];
    assert_wrong_shape(tensors, "W", &[0, 5]);
    let tensors = vec![
        f32_tensor("W", &[4, 0], &[]),
        f32_tensor("v_bias", &[0], &[]),
        f32_tensor("h_bias", &[4], &[0.0; 4]),
    ];
    assert_wrong_shape(tensors, "W", &[4, 0]);
}

#[test]
fn v_bias_must_match_w() {
    let b = f32_tensor("v_bias", &[6], &[0.0; 6]);
    let expected = assert_wrong_shape(replace(valid_tensors(5, 4), "v_bias", b), "v_bias", &[6]);
    assert_eq!(expected, "[V] = [5] to match W");
    let b = f32_tensor("v_bias", &[1, 5], &[0.0; 5]);
    assert_wrong_shape(replace(valid_tensors(5, 4), "v_bias", b), "v_bias", &[1, 5]);
}

#[test]
fn h_bias_must_match_w() {
    let c = f32_tensor("h_bias", &[5], &[0.0; 5]);
    let expected = assert_wrong_shape(replace(valid_tensors(5, 4), "h_bias", c), "h_bias", &[5]);
    assert_eq!(expected, "[H] = [4] to match W");
}

#[test]
fn non_finite_values_are_rejected_with_their_index() {
    for (name, index) in [("W", 13), ("v_bias", 2), ("h_bias", 3)] {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut tensors = valid_tensors(5, 4);
            let t = tensors.iter_mut().find(|t| t.name == name).unwrap();
            t.data[index * 4..][..4].copy_from_slice(&bad.to_le_bytes());
            let kind = load_error(&file_bytes(&tensors, None));
            assert_eq!(kind, ModelFileError::NonFinite { name, index }, "{bad}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Metadata

#[test]
fn foreign_format_is_rejected() {
    let kind = load_error(&file_bytes(&valid_tensors(5, 4), meta(&[("format", "tf")])));
    assert!(
        matches!(kind, ModelFileError::Metadata(ref m) if m.contains("tf")),
        "{kind:?}"
    );
}

#[test]
fn config_must_be_json() {
    let bytes = file_bytes(
        &valid_tensors(5, 4),
        meta(&[("format", "rbm"), ("config", "{\"k\": 3,")]),
    );
    let kind = load_error(&bytes);
    assert!(
        matches!(kind, ModelFileError::Metadata(ref m) if m.contains("config")),
        "{kind:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Paths

#[test]
fn directory_is_not_a_model_file() {
    let dir = TempDir::new("is-dir");
    let err = load_model(&dir.0).unwrap_err();
    assert!(
        err.to_string().contains(&dir.0.display().to_string()),
        "{err}"
    );
    assert!(
        matches!(err, Error::ModelFile { ref path, kind: ModelFileError::IsDirectory } if path == &dir.0),
        "{err:?}"
    );
}

#[test]
fn nonexistent_file_is_an_io_error() {
    let dir = TempDir::new("missing");
    let path = dir.path("no-such-model.safetensors");
    let err = load_model(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    match err {
        Error::Io { path: p, source } => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Atomic writes

#[test]
fn saving_over_an_existing_file_replaces_it() {
    let dir = TempDir::new("replace");
    let path = dir.path("model.safetensors");
    std::fs::write(&path, b"an older, longer file that is not a model at all").unwrap();
    let first = Rbm::new(4, 3, 1).unwrap();
    save_model(&path, &first, Some(r#"{"run": 1}"#)).unwrap();
    assert_same_model(&load_model(&path).unwrap().model, &first);

    let second = model();
    save_model(&path, &second, Some(r#"{"run": 2}"#)).unwrap();
    let loaded = load_model(&path).unwrap();
    assert_same_model(&loaded.model, &second);
    assert_eq!(loaded.config(), Some(r#"{"run": 2}"#));
    assert_eq!(dir.entries(), ["model.safetensors"]);
}

#[test]
fn failed_save_of_a_non_finite_model_writes_nothing() {
    let dir = TempDir::new("non-finite");
    let path = dir.path("model.safetensors");
    let good = model();
    save_model(&path, &good, None).unwrap();
    let before = std::fs::read(&path).unwrap();

    for (name, index) in [("W", 17), ("v_bias", 4), ("h_bias", 6)] {
        let mut bad = good.clone();
        let (w, b, c) = bad.params_mut();
        let buf = match name {
            "W" => w,
            "v_bias" => b,
            _ => c,
        };
        buf[index] = f32::NAN;
        let err = save_model(&path, &bad, None).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert!(
            matches!(&err, Error::ModelFile { kind: ModelFileError::NonFinite { name: n, index: i }, .. } if *n == name && *i == index),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_same_model(&load_model(&path).unwrap().model, &good);
        assert_eq!(dir.entries(), ["model.safetensors"]);
    }

    // Nothing at all is created when there was no file.
    let fresh = dir.path("fresh.safetensors");
    let mut bad = good.clone();
    bad.h_bias_mut()[0] = f32::INFINITY;
    save_model(&fresh, &bad, None).unwrap_err();
    assert_eq!(dir.entries(), ["model.safetensors"]);
}

#[test]
fn invalid_config_json_is_refused_before_writing() {
    let dir = TempDir::new("bad-config");
    let path = dir.path("model.safetensors");
    let err = save_model(&path, &model(), Some("{oops")).unwrap_err();
    assert!(
        matches!(&err, Error::ModelFile { kind: ModelFileError::Metadata(_), path: p } if p == &path),
        "{err:?}"
    );
    assert!(dir.entries().is_empty());
}

#[test]
fn failed_rename_removes_the_temporary_file() {
    // The target is a non-empty folder: the temporary file is written, the rename fails.
    let dir = TempDir::new("rename-fails");
    let target = dir.path("model.safetensors");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let err = save_model(&target, &model(), None).unwrap_err();
    assert!(
        err.to_string().contains(&target.display().to_string()),
        "{err}"
    );
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &target),
        "{err:?}"
    );
    assert_eq!(dir.entries(), ["model.safetensors"]);
    assert!(target.join("keep").is_file());
}

#[test]
fn missing_folder_is_an_io_error() {
    let dir = TempDir::new("no-folder");
    let path = dir.path("absent").join("model.safetensors");
    let err = save_model(&path, &model(), None).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&dir.path("absent").display().to_string()),
        "{err}"
    );
    assert!(dir.entries().is_empty());
}

#[test]
fn concurrent_saves_to_one_path_leave_one_valid_file() {
    let dir = TempDir::new("concurrent");
    let path = dir.path("model.safetensors");
    let models: Vec<Rbm> = (0..4).map(|s| Rbm::new(9, 5, s).unwrap()).collect();
    std::thread::scope(|scope| {
        for m in &models {
            let path = &path;
            scope.spawn(move || {
                for _ in 0..10 {
                    save_model(path, m, None).unwrap();
                }
            });
        }
    });
    let loaded = load_model(&path).unwrap().model;
    assert!(models.contains(&loaded));
    assert_eq!(dir.entries(), ["model.safetensors"]);
}
