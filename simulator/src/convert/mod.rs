//! Converters from other trace and manifest formats to the native trace format, so the
//! simulator has one input format (`phalanx trace convert --from KIND PATH > trace.jsonl`).
//! Each module reads one source and returns [`Record`]s plus warnings about anything it could
//! not carry over; nothing is dropped silently.

use crate::trace::Record;

/// What a converter produced.
#[derive(Debug, Clone, Default)]
pub struct Converted {
    /// The records, in a valid order (queues and nodes first).
    pub records: Vec<Record>,
    /// Things not converted, or converted by approximation, for the user to read.
    pub warnings: Vec<String>,
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A row or document is malformed.
    #[error("{file}:{line}: {message}")]
    Bad {
        /// The file.
        file: String,
        /// Line (CSV row, counting the header as 1) or document number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Objects that cannot be read, each with its file, document, object and field; nothing
    /// was converted (pass `--skip-invalid` to leave them out with a warning each instead).
    #[error("{} object(s) cannot be read (pass --skip-invalid to leave them out with a warning):\n{}", .0.len(), .0.join("\n"))]
    Invalid(Vec<String>),
}

pub mod alibaba_batch;
pub mod alibaba_gpu;
pub mod helios;
pub mod k8s;
